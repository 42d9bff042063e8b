"""API keys for the inference server: their format, hashing, scopes and record. Pure stdlib.

A key reads ``sw_<key id>_<secret>``: ``sw_`` marks it as Seaway's (secret scanners can match it),
the key id is 8 lowercase letters and digits that name the key in listings and logs, and the secret
is ``secrets.token_urlsafe(32)`` (43 characters, 256 bits). The registry stores only
:func:`hash_api_key` of the whole key, never the key, so a server checks a presented key by parsing
its id, looking the record up, and comparing hashes (:meth:`ApiKey.matches`, constant time).

This module sits below the registry so that the serving layer (whose data plane never imports the
registry or SQLAlchemy) can check keys with it. The registry stores and lists keys
(``seaway/registry/keys.py``); the CLI is ``seaway keys``. See docs/security.md.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from seaway.errors import InvalidInputError

KEY_PREFIX = "sw_"
KEY_ID_LENGTH = 8
KEY_ID_ALPHABET = string.ascii_lowercase + string.digits
SECRET_BYTES = 32
MAX_NAME_LENGTH = 200

_KEY_PATTERN = re.compile(
    rf"{KEY_PREFIX}([{KEY_ID_ALPHABET}]{{{KEY_ID_LENGTH}}})_[A-Za-z0-9_-]{{43}}", re.ASCII
)


class Scope(StrEnum):
    """What a key may do. ``admin`` includes everything ``predict`` may do."""

    PREDICT = "predict"
    ADMIN = "admin"

    def allows(self, needed: Scope) -> bool:
        """Whether a key with this scope may make a call that needs ``needed``."""
        return self is Scope.ADMIN or self is needed


SCOPES: tuple[str, ...] = tuple(scope.value for scope in Scope)


@dataclass(frozen=True)
class ApiKey:
    """One stored key. It never holds the key itself; ``key_hash`` stays out of repr and JSON."""

    key_id: str
    scope: Scope
    key_hash: str = field(repr=False)
    created_at: datetime
    name: str | None = None
    rate_limit: float | None = None  # requests per second; None: the server's default
    created_by: str | None = None
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def matches(self, key: str) -> bool:
        """Whether ``key`` is this key's plaintext (constant-time comparison of hashes)."""
        return hmac.compare_digest(hash_api_key(key), self.key_hash)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as ``--json`` prints it: no key, no hash."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scope": self.scope.value,
            "rate_limit": self.rate_limit,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "revoked": self.revoked,
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
        }


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest of the whole key string, as the registry stores it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_api_key(key: str) -> str | None:
    """The key id of a well-formed key, or ``None`` when ``key`` is not one (no exception)."""
    match = _KEY_PATTERN.fullmatch(key) if isinstance(key, str) else None
    return None if match is None else match.group(1)


def new_api_key() -> tuple[str, str]:
    """A fresh random ``(key_id, key)`` pair."""
    key_id = "".join(secrets.choice(KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"


def parse_scope(value: Scope | str) -> Scope:
    """A scope from its name, or an error that lists the allowed ones."""
    try:
        return Scope(value)
    except ValueError:
        raise InvalidInputError(
            f"unknown API key scope {value!r}; use one of: {', '.join(SCOPES)}"
        ) from None


def validate_rate_limit(value: float | None) -> float | None:
    """``None`` (the server's default) or a positive, finite number of requests per second."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"rate limit {value!r} must be a number of requests per second")
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(
            f"rate limit {value!r} must be a positive number of requests per second "
            "(leave it out to use the server's default)"
        )
    return float(value)


def validate_key_name(value: str | None) -> str | None:
    """``None`` or a non-blank name of at most 200 characters, stripped."""
    if value is None:
        return None
    name = value.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"API key name {value!r} must be 1 to {MAX_NAME_LENGTH} characters (or left out)"
        )
    return name
