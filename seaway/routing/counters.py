"""The mechanics of counters that add up: a latency histogram with fixed bounds, bounded label
counts, and merge, subtract and JSON for a dataclass of them (``stats`` builds on this).

Fixed bounds make histograms from any server and any window add bucket by bucket, and a
quantile of the sum is exact to a bucket, which an average of each server's percentile is not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

import numpy as np

from seaway.errors import InvalidInputError

#: histogram bounds in milliseconds, 8 per doubling from 0.05 ms to past 120 s; a bucket ``i``
#: counts latencies in ``(bounds[i-1], bounds[i]]``, the last one those above the last bound
LATENCY_BOUNDS_MS: tuple[float, ...] = tuple(
    round(0.05 * 2 ** (i / 8), 6) for i in range(math.ceil(8 * math.log2(120_000 / 0.05)) + 1)
)
BUCKETS = len(LATENCY_BOUNDS_MS) + 1
#: distinct predicted labels kept per arm; the rest are counted together under OTHER_LABEL
MAX_LABELS = 100
OTHER_LABEL = "(other)"


def empty_histogram() -> list[int]:
    return [0] * BUCKETS


@dataclass
class Counters:
    """Merge, subtract and JSON for a dataclass of counts, sums, a histogram and label counts."""

    #: (count field, the sums that are zero when it is): a window with no observations left
    #: keeps no rounding residue in its sums
    _GROUPS: ClassVar[tuple[tuple[str, tuple[str, ...]], ...]] = ()

    def merge(self, other: Self) -> Self:
        """The sum of two (two servers, or two windows): a new object."""
        return self._combine(other, 1)

    def minus(self, other: Self) -> Self:
        """What was added since ``other`` (a snapshot of the same counters): a new object."""
        result = self._combine(other, -1)
        for count, sums in self._GROUPS:
            if getattr(result, count) == 0:
                for name in sums:
                    setattr(result, name, 0.0)
        return result

    def _combine(self, other: Self, sign: int) -> Self:
        values: dict[str, Any] = {}
        for item in fields(self):
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            if isinstance(mine, list):
                values[item.name] = [
                    max(0, a + sign * b) for a, b in zip(mine, theirs, strict=True)
                ]
            elif isinstance(mine, dict):
                values[item.name] = combine_labels(mine, theirs, sign)
            elif isinstance(mine, int):
                values[item.name] = max(0, mine + sign * theirs)
            else:
                values[item.name] = mine + sign * theirs
        return type(self)(**values)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: numbers, the label counts, the histogram as ``{bucket index: count}``."""
        doc: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, list):
                value = {str(i): count for i, count in enumerate(value) if count}
            elif isinstance(value, dict):
                value = dict(value)
            doc[item.name] = value
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Self:
        """Read :meth:`to_json`'s output; keys it does not know are ignored, missing ones are 0."""
        if not isinstance(doc, Mapping):
            raise InvalidInputError(f"{cls.__name__} must be a JSON object, not {doc!r:.80}")
        values: dict[str, Any] = {}
        try:
            for item in fields(cls):
                if item.name not in doc:
                    continue
                raw = doc[item.name]
                if item.name == "latency":
                    values[item.name] = histogram_from_json(raw)
                elif item.name == "labels":
                    values[item.name] = {str(k): int(v) for k, v in dict(raw).items()}
                elif item.type == "int":
                    values[item.name] = int(raw)
                else:
                    values[item.name] = float(raw)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{cls.__name__} JSON is not valid: {exc}") from None
        return cls(**values)


def histogram_quantile(counts: list[int], q: float) -> float | None:
    """The ``q`` quantile of a latency histogram, interpolated within its bucket; a quantile in
    the overflow bucket is reported as the last bound."""
    if not 0 <= q <= 1:
        raise InvalidInputError(f"a quantile must be from 0 to 1, not {q}")
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    running = 0
    for i, count in enumerate(counts):
        if count and running + count >= rank:
            if i == len(LATENCY_BOUNDS_MS):
                return LATENCY_BOUNDS_MS[-1]
            low = 0.0 if i == 0 else LATENCY_BOUNDS_MS[i - 1]
            return low + (LATENCY_BOUNDS_MS[i] - low) * ((rank - running) / count)
        running += count
    return LATENCY_BOUNDS_MS[-1]  # pragma: no cover - the loop returns by the last count


def label_text(value: Any) -> str:
    """A label as counted and compared: bytes decoded, whole floats without ``.0`` (a truth of
    ``1.0`` matches a predicted ``1``)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def first_column(values: Any) -> np.ndarray[Any, Any]:
    array = np.asarray(values)
    if array.ndim == 0:
        return array.reshape(1)
    if array.ndim > 1:
        return array.reshape(array.shape[0], -1)[:, 0]
    return array


def add_label(labels: dict[str, int], key: str, count: int) -> None:
    if key not in labels and len(labels) >= MAX_LABELS:
        key = OTHER_LABEL
    labels[key] = labels.get(key, 0) + count


def combine_labels(mine: dict[str, int], theirs: dict[str, int], sign: int) -> dict[str, int]:
    result = dict(mine)
    if sign > 0:
        for key, count in theirs.items():
            add_label(result, key, count)
        return result
    for key, count in theirs.items():
        if key in result:
            result[key] -= count
    return {key: count for key, count in result.items() if count > 0}


def histogram_from_json(raw: Any) -> list[int]:
    counts = empty_histogram()
    items = enumerate(raw) if isinstance(raw, list) else dict(raw).items()
    for index, count in items:
        i = int(index)
        if not 0 <= i < BUCKETS:
            raise ValueError(f"latency bucket {index} is outside 0..{BUCKETS - 1}")
        counts[i] = int(count)
    return counts
