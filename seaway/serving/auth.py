"""API-key checks and per-key rate limits, from an in-memory snapshot of the registry's keys.

The data plane never waits on the database: the controller reloads the active keys every poll and
hands them over with :meth:`Authenticator.update`, so a revoked key stops working within one poll
interval, and requests keep being served while the database is down.

Answers are deliberately vague about what was wrong: a missing key, an unknown key and a revoked
key all get the same 401, so probing cannot tell them apart. Only a valid key that lacks the scope
gets a 403, which names the scope needed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

from seaway.apikeys import ApiKey, Scope, hash_api_key
from seaway.errors import AuthenticationError, PermissionDeniedError, RateLimitedError

__all__ = ["Authenticator", "Scope"]

_UNAUTHENTICATED = "missing or invalid API key: send Authorization: Bearer <key>"


class _Bucket:
    """A token bucket holding one second's worth of requests (at least one)."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self.tokens = self.capacity
        self.stamp = now

    def take(self, now: float) -> float:
        """0 when a request may go now, else the seconds until one may."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class Authenticator:
    def __init__(
        self,
        default_rate_limit: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default_rate_limit = default_rate_limit
        self._clock = clock
        self._keys: dict[str, ApiKey] = {}
        self._buckets: dict[str, _Bucket] = {}

    def update(self, keys: Iterable[ApiKey]) -> None:
        """Replace the known keys; buckets of keys that remain keep their state."""
        self._keys = {key.key_hash: key for key in keys if not key.revoked}
        live = {key.key_id for key in self._keys.values()}
        self._buckets = {kid: b for kid, b in self._buckets.items() if kid in live}

    @property
    def key_count(self) -> int:
        return len(self._keys)

    def check(self, authorization: str | None, needs: Scope) -> ApiKey:
        """The key behind an ``Authorization`` value, if it may do ``needs`` now; raises if not.

        Looked up by hash: the hash of a guess reveals nothing, and the dict lookup compares
        hashes, not secrets, so timing tells nothing about a key either.
        """
        token = _bearer(authorization)
        entry = self._keys.get(hash_api_key(token)) if token else None
        if entry is None:
            raise AuthenticationError(_UNAUTHENTICATED)
        if not entry.scope.allows(needs):
            raise PermissionDeniedError(
                f"this API key has scope '{entry.scope.value}'; this call needs an "
                f"'{needs.value}' key"
            )
        rate = entry.rate_limit if entry.rate_limit is not None else self.default_rate_limit
        if rate is not None:
            now = self._clock()
            bucket = self._buckets.get(entry.key_id)
            if bucket is None or bucket.rate != rate:
                bucket = self._buckets[entry.key_id] = _Bucket(rate, now)
            wait = bucket.take(now)
            if wait > 0:
                raise RateLimitedError(
                    f"API key {entry.key_id} is over its rate limit of {rate:g} requests/s; "
                    f"retry in {math.ceil(wait)} s",
                    retry_after=wait,
                )
        return entry


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
