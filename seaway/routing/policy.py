"""Which version answers a request: the traffic split, and the picker the data plane calls.

Every request to a deployment goes through :meth:`Picker.pick`, so it is built once per published
split and does as little as it can per call: cumulative weights computed up front and one
``bisect`` (O(log arms)), no lists built. A request with a sticky key (an A/B test's
``X-User-ID``) lands where its bucket falls: the key's blake2b hash as a number in [0, 100),
the same in every process and on every server. Buckets map onto the arms in order, so moving
weight from the first arm to the second (90/10 to 80/20, a rollout's next step) moves only the
keys in the band that changed hands; every other key keeps its version.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import dataclass
from hashlib import blake2b

from seaway.errors import InvalidInputError
from seaway.routing.spec import DeploymentSpec

#: how far from 100 the weights may sum (decimals written by people)
_TOLERANCE = 1e-6
_TWO_TO_MINUS_53 = 2.0**-53
_BELOW_100 = math.nextafter(100.0, 0.0)


@dataclass(frozen=True)
class Split:
    """Versions (as text) and their percent of the traffic, in order; weights sum to 100."""

    arms: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        if not self.arms:
            raise InvalidInputError("a traffic split needs at least one version")
        versions = [version for version, _ in self.arms]
        if len(set(versions)) != len(versions):
            raise InvalidInputError(f"a traffic split names a version twice: {versions}")
        for version, weight in self.arms:
            if not (math.isfinite(weight) and 0 <= weight <= 100):
                raise InvalidInputError(
                    f"version {version}'s weight must be from 0 to 100 (got {weight})"
                )
        total = math.fsum(weight for _, weight in self.arms)
        if abs(total - 100) > _TOLERANCE:
            raise InvalidInputError(f"a traffic split's weights must sum to 100 (got {total:g})")

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(version for version, _ in self.arms)

    def weight(self, version: str) -> float:
        """The version's percent of the traffic (0 for a version not in the split)."""
        return next((weight for name, weight in self.arms if name == version), 0.0)


def effective_split(spec: DeploymentSpec, step_weight: float | None) -> Split:
    """The split to serve now: the spec's routes, or during a rollout the stable version with
    ``100 - step_weight`` and the candidate with ``step_weight`` (stable first, so each step
    moves only the keys that must move)."""
    if step_weight is None:
        return Split(tuple((str(route.version), route.weight) for route in spec.routes))
    if spec.rollout is None:
        raise InvalidInputError(
            f"deployment {spec.name} has no rollout, so no step weight ({step_weight:g}) applies"
        )
    if not (math.isfinite(step_weight) and 0 <= step_weight <= 100):
        raise InvalidInputError(
            f"a rollout step's weight must be from 0 to 100 (got {step_weight})"
        )
    stable = str(spec.routes[0].version)
    candidate = str(spec.rollout.version)
    return Split(((stable, 100.0 - step_weight), (candidate, float(step_weight))))


def sticky_bucket(key: str, salt: str) -> float:
    """``key``'s place in [0, 100): stable across processes and Python versions (not ``hash``).

    ``salt`` (the deployment's name) makes deployments assign the same key independently."""
    return min(_unit(key, _salt(salt)) * 100.0, _BELOW_100)


def _unit(key: str, salt: bytes) -> float:
    """The key's hash as a number in [0, 1): the top 53 bits of a 64-bit blake2b digest."""
    digest = blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8, key=salt).digest()
    return (int.from_bytes(digest, "big") >> 11) * _TWO_TO_MINUS_53


def _salt(salt: str) -> bytes:
    raw = salt.encode("utf-8", "surrogatepass")
    # blake2b takes a key of at most 64 bytes; a longer salt is hashed down to one
    return raw if len(raw) <= 64 else blake2b(raw, digest_size=64).digest()


def take(fraction: float, rng: random.Random) -> bool:
    """Whether this request is in ``fraction`` of the traffic (a shadow's copies)."""
    if fraction >= 1.0:
        return True
    if fraction <= 0.0:
        return False
    return rng.random() < fraction


class Picker:
    """Picks a version per request from a :class:`Split`; arms of weight 0 are never picked."""

    __slots__ = ("_bounds", "_count", "_random", "_salt", "_total", "_versions", "split")

    def __init__(self, split: Split, *, salt: str, rng: random.Random) -> None:
        self.split = split
        live = [(version, weight) for version, weight in split.arms if weight > 0]
        self._versions = tuple(version for version, _ in live)
        bounds: list[float] = []
        running = 0.0
        for _, weight in live:
            running += weight
            bounds.append(running)
        self._bounds = tuple(bounds)
        self._total = running
        self._count = len(live)
        self._salt = _salt(salt)
        self._random = rng.random

    def pick(self, key: str | None = None) -> str:
        """The version for one request: by ``key``'s bucket when given (the same key, the same
        version, for as long as the split stays), else at random by weight."""
        unit = self._random() if key is None else _unit(key, self._salt)
        point = unit * self._total
        index = bisect_right(self._bounds, point)
        # a point can only reach the last bound by rounding: it belongs to the last arm
        return self._versions[index if index < self._count else self._count - 1]
