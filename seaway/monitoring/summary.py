"""Window summaries: what drift needs from a window of rows, in a size that does not grow with it.

A summary holds, per feature of the reference profile that the window has: counts on the
profile's bins (numeric: the fine histogram's, from which the deciles follow; categorical: counts
by ``category_label``), missing values, and the moments behind the effect sizes; and, for the
multivariate check, the count, the sum of the rows' reconstruction errors, and the sum and sum of
outer products of the standardised numeric rows.
Summaries of consecutive windows merge into the summary of their union, so drift over a day is
computed from the prediction log's per-file summaries without reading a row again.

Values are converted exactly as the profile converted the reference (``numeric_values``,
``category_counts``), so a window drawn from the reference data summarizes to its counts.
Categorical labels the reference never had are kept apart in ``new`` (the ``MAX_NEW_LABELS``
most frequent, the rest counted in ``other``) when the reference listed every category (its
``other`` is 0); otherwise a label outside the reference's top list may be new or from its tail,
and is counted in ``other`` like the reference's own tail.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd

from seaway.errors import InvalidInputError
from seaway.packaging.profile import (
    CategoricalFeature,
    NumericFeature,
    ReferenceProfile,
    category_counts,
    numeric_values,
)
from seaway.packaging.profile_multivariate import CHUNK_ROWS, Multivariate

FORMAT = 1
MAX_NEW_LABELS = 50
_DIGESTS: dict[int, tuple[weakref.ref[ReferenceProfile], str]] = {}
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class NumericSummary:
    """A numeric feature in a window; moments over the finite values (Chan's merge)."""

    counts: tuple[int, ...]  # on the profile's bins (``NumericFeature.bins``), infinities too
    missing: int = 0
    infinite: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from ``mean``
    min: float | None = None
    max: float | None = None
    below: int = 0  # finite values under the reference's minimum
    above: int = 0  # and over its maximum

    @property
    def count(self) -> int:
        """Non-missing values."""
        return sum(self.counts)

    @property
    def finite(self) -> int:
        return self.count - self.infinite

    @property
    def std(self) -> float | None:
        """Population std of the finite values."""
        return float(np.sqrt(max(self.m2, 0.0) / self.finite)) if self.finite else None

    def merge(self, other: NumericSummary) -> NumericSummary:
        if len(self.counts) != len(other.counts):
            raise InvalidInputError("numeric summaries on different bins cannot be merged")
        a, b = self.finite, other.finite
        total = a + b
        delta = other.mean - self.mean
        return NumericSummary(
            counts=tuple(x + y for x, y in zip(self.counts, other.counts, strict=True)),
            missing=self.missing + other.missing,
            infinite=self.infinite + other.infinite,
            mean=self.mean + delta * b / total if total else 0.0,
            m2=self.m2 + other.m2 + (delta * delta * a * b / total if total else 0.0),
            min=_pick(min, self.min, other.min),
            max=_pick(max, self.max, other.max),
            below=self.below + other.below,
            above=self.above + other.above,
        )


@dataclass(frozen=True)
class CategoricalSummary:
    """A categorical or boolean feature in a window: counts by label."""

    counts: Mapping[str, int]  # labels among the reference's top ones
    new: Mapping[str, int] = field(default_factory=dict)  # labels the reference never had
    other: int = 0  # the rest: the reference's tail, or new labels beyond the cap
    missing: int = 0

    @property
    def count(self) -> int:
        """Non-missing values."""
        return sum(self.counts.values()) + sum(self.new.values()) + self.other

    def merge(self, other: CategoricalSummary) -> CategoricalSummary:
        new = _added(self.new, other.new)
        ranked = sorted(new.items(), key=lambda item: (-item[1], item[0]))
        return CategoricalSummary(
            counts=_added(self.counts, other.counts),
            new=dict(ranked[:MAX_NEW_LABELS]),
            other=self.other + other.other + sum(n for _, n in ranked[MAX_NEW_LABELS:]),
            missing=self.missing + other.missing,
        )


@dataclass(frozen=True)
class MultivariateSummary:
    """Sufficient statistics of the standardised numeric rows (``Multivariate.standardise``)."""

    rows: int
    error: float  # sum of the rows' reconstruction errors
    total: tuple[float, ...]  # sum of z
    outer: tuple[tuple[float, ...], ...]  # sum of z z^T

    def outer_matrix(self) -> FloatArray:
        return np.asarray(self.outer, dtype=np.float64).reshape(len(self.total), len(self.total))

    def merge(self, other: MultivariateSummary) -> MultivariateSummary:
        return MultivariateSummary(
            rows=self.rows + other.rows,
            error=self.error + other.error,
            total=tuple((np.add(self.total, other.total)).tolist()),
            outer=_rows(self.outer_matrix() + other.outer_matrix()),
        )


@dataclass(frozen=True)
class WindowSummary:
    """A window of rows summarized against one reference profile (named by its digest)."""

    profile: str  # ``profile_digest`` of the profile the window was measured against
    n_rows: int
    start: datetime | None = None
    end: datetime | None = None
    numeric: Mapping[str, NumericSummary] = field(default_factory=dict)
    categorical: Mapping[str, CategoricalSummary] = field(default_factory=dict)
    multivariate: MultivariateSummary | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)

    def merge(self, other: WindowSummary) -> WindowSummary:
        """The summary of both windows: that of their rows together (new categorical labels
        beyond ``MAX_NEW_LABELS`` aside). A feature only one of them has keeps its counts; the
        multivariate statistics need both."""
        if other.profile != self.profile:
            raise InvalidInputError(
                "these window summaries were measured against different reference profiles "
                f"({self.profile} and {other.profile}); summarize both with the same profile"
            )
        numeric = dict(self.numeric)
        for name, part in other.numeric.items():
            numeric[name] = numeric[name].merge(part) if name in numeric else part
        categorical = dict(self.categorical)
        for name, cpart in other.categorical.items():
            categorical[name] = categorical[name].merge(cpart) if name in categorical else cpart
        mine, theirs = self.multivariate, other.multivariate
        return WindowSummary(
            profile=self.profile,
            n_rows=self.n_rows + other.n_rows,
            start=_pick(min, self.start, other.start),
            end=_pick(max, self.end, other.end),
            numeric=numeric,
            categorical=categorical,
            multivariate=mine.merge(theirs) if mine is not None and theirs is not None else None,
        )

    @classmethod
    def merge_all(cls, summaries: Iterable[WindowSummary]) -> WindowSummary:
        """The summary of all the windows (at least one): equal to merging them one by one, but
        the numeric bins and the multivariate sums are added at once (a week of a log holds
        thousands of parts; adding their bins a tuple at a time took seconds)."""
        parts = list(summaries)
        if not parts:
            raise InvalidInputError("there are no window summaries to merge (the window is empty)")
        bins: dict[str, list[tuple[int, ...]]] = {}
        light = []
        for part in parts:  # each feature's bins folded to one count: the moments need no more
            numeric = {}
            for name, feature in part.numeric.items():
                bins.setdefault(name, []).append(feature.counts)
                numeric[name] = replace(feature, counts=(feature.count,))
            light.append(replace(part, numeric=numeric, multivariate=None))
        result = light[0]
        for summary in light[1:]:
            result = result.merge(summary)
        joint = [part.multivariate for part in parts]
        return replace(
            result,
            numeric={n: replace(f, counts=_sum_bins(bins[n])) for n, f in result.numeric.items()},
            multivariate=_sum_multivariate(joint) if all(joint) else None,
        )

    def to_json(self) -> str:
        """Compact JSON; ``from_json`` reads it back equal."""
        return json.dumps(_to_dict(self), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> WindowSummary:
        try:
            return _from_dict(orjson.loads(text))  # several times json's speed on floats
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"this is not a window summary's JSON: {exc}") from exc


def _sum_bins(counts: list[tuple[int, ...]]) -> tuple[int, ...]:
    if len({len(c) for c in counts}) > 1:
        raise InvalidInputError("numeric summaries on different bins cannot be merged")
    if len(counts) == 1:
        return counts[0]
    return tuple(np.sum(np.asarray(counts, dtype=np.int64), axis=0).tolist())


def _sum_multivariate(parts: list[MultivariateSummary | None]) -> MultivariateSummary:
    found = [p for p in parts if p is not None]
    if len(found) == 1:
        return found[0]
    total, outer = np.asarray(found[0].total, dtype=np.float64), found[0].outer_matrix()
    for part in found[1:]:  # in order, as the one-by-one merge adds them
        total = total + np.asarray(part.total, dtype=np.float64)
        outer = outer + part.outer_matrix()
    return MultivariateSummary(
        rows=sum(p.rows for p in found),
        error=sum(p.error for p in found),
        total=tuple(total.tolist()),
        outer=_rows(outer),
    )


def merge_all(summaries: Iterable[WindowSummary]) -> WindowSummary:
    """The summary of all the windows (at least one); see ``WindowSummary.merge``."""
    return WindowSummary.merge_all(summaries)


def profile_digest(profile: ReferenceProfile) -> str:
    """A short fingerprint of the profile: summaries name the profile they were measured with.
    Remembered per profile object (profiles are frozen): a log summarizes every part with one."""
    key = id(profile)
    known = _DIGESTS.get(key)
    if known is not None and known[0]() is profile:
        return known[1]
    text = json.dumps(profile.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    _DIGESTS[key] = (weakref.ref(profile, lambda _: _DIGESTS.pop(key, None)), digest)
    return digest


def summarize(
    frame: pd.DataFrame,
    profile: ReferenceProfile,
    *,
    times: Any = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> WindowSummary:
    """Summarize the rows of ``frame`` (columns named as the profile's features; others are
    ignored, missing ones left out) against ``profile``. ``start`` and ``end`` default to the
    earliest and latest of ``times`` (the rows' timestamps), when given."""
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(
            f"summarize takes a pandas DataFrame of feature columns, not {type(frame).__name__}"
        )
    columns = {str(column): column for column in frame.columns}
    if len(columns) != len(frame.columns):
        raise InvalidInputError("the frame has duplicated column names; name each feature once")
    present = [name for name in profile.features if name in columns]
    if not present and len(frame.columns):
        known = ", ".join(list(profile.features)[:10])
        raise InvalidInputError(
            "none of the frame's columns is a feature of the reference profile (its features "
            f"are: {known}); name the columns as the features (strip an 'input.' prefix)"
        )
    numeric: dict[str, NumericSummary] = {}
    categorical: dict[str, CategoricalSummary] = {}
    values: dict[str, FloatArray] = {}
    for name in present:
        feature = profile.features[name]
        if isinstance(feature, NumericFeature):
            values[name] = numeric_values(frame[columns[name]])
            numeric[name] = _numeric(values[name], feature)
        else:
            counts, missing = category_counts(frame[columns[name]])
            categorical[name] = _categorical(counts, missing, feature)
    block = profile.multivariate
    multivariate = None
    if block is not None and all(name in values for name in block.features):
        multivariate = _multivariate([values[name] for name in block.features], block)
    if times is not None:
        stamps = pd.to_datetime(pd.Series(times), utc=True).dropna()
        if len(stamps):
            start = start or stamps.min().to_pydatetime()
            end = end or stamps.max().to_pydatetime()
    return WindowSummary(
        profile=profile_digest(profile),
        n_rows=len(frame),
        start=_utc(start),
        end=_utc(end),
        numeric=numeric,
        categorical=categorical,
        multivariate=multivariate,
    )


def _numeric(values: FloatArray, feature: NumericFeature) -> NumericSummary:
    # sorted once (numpy's vectorised sort beats a binary search per value several times over):
    # every count below is then a binary search per edge
    ordered = np.sort(values)  # NaN last
    present = ordered[: np.searchsorted(ordered, np.inf, side="right")]
    at_or_below = np.searchsorted(present, feature.bins.edges, side="right")
    counts = np.diff(np.concatenate(([0], at_or_below, [present.size])))
    start = int(np.searchsorted(present, -np.inf, side="right"))
    finite = present[start : np.searchsorted(present, np.inf, side="left")]
    missing = values.size - present.size
    if not finite.size:
        return NumericSummary(counts=tuple(counts.tolist()), missing=missing, infinite=present.size)
    mean = float(finite.mean())
    below = above = 0
    if feature.min is not None and feature.max is not None:
        below = int(np.searchsorted(finite, feature.min, side="left"))
        above = finite.size - int(np.searchsorted(finite, feature.max, side="right"))
    return NumericSummary(
        counts=tuple(counts.tolist()),
        missing=missing,
        infinite=present.size - finite.size,
        mean=mean,
        m2=float(np.square(finite - mean).sum()),
        min=float(finite[0]),
        max=float(finite[-1]),
        below=below,
        above=above,
    )


def _categorical(
    counts: Mapping[str, int], missing: int, feature: CategoricalFeature
) -> CategoricalSummary:
    """Known labels kept; unknown ones kept apart up to ``MAX_NEW_LABELS`` when the reference
    listed every category, folded into ``other`` otherwise."""
    known = {label: n for label, n in counts.items() if label in feature.top}
    unknown = sorted(
        ((label, n) for label, n in counts.items() if label not in feature.top),
        key=lambda item: (-item[1], item[0]),
    )
    keep = MAX_NEW_LABELS if feature.other == 0 else 0
    return CategoricalSummary(
        counts=known,
        new=dict(unknown[:keep]),
        other=sum(n for _, n in unknown[keep:]),
        missing=missing,
    )


def _added(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    total = dict(a)
    for label, n in b.items():
        total[label] = total.get(label, 0) + n
    return total


def _multivariate(columns: list[FloatArray], block: Multivariate) -> MultivariateSummary:
    d = len(columns)
    total = np.zeros(d)
    outer = np.zeros((d, d))
    error = 0.0
    rows = columns[0].size
    for i in range(0, rows, CHUNK_ROWS):
        z = block.standardise([c[i : i + CHUNK_ROWS] for c in columns])
        total += z.sum(axis=1)
        outer += z @ z.T
        error += float(block.errors(z).sum())
    return MultivariateSummary(
        rows=rows, error=error, total=tuple(total.tolist()), outer=_rows(outer)
    )


def _rows(matrix: FloatArray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(row) for row in matrix.tolist())


def _pick(choose: Any, a: Any, b: Any) -> Any:
    return a if b is None else b if a is None else choose(a, b)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        raise InvalidInputError(f"start and end are datetimes, not {type(moment).__name__}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _to_dict(summary: WindowSummary) -> dict[str, Any]:
    data: dict[str, Any] = {
        "format": FORMAT,
        "profile": summary.profile,
        "n_rows": summary.n_rows,
        "start": summary.start.isoformat() if summary.start else None,
        "end": summary.end.isoformat() if summary.end else None,
        "numeric": {n: s.__dict__ for n, s in summary.numeric.items()},
        "categorical": {n: s.__dict__ for n, s in summary.categorical.items()},
        "multivariate": summary.multivariate.__dict__ if summary.multivariate else None,
    }
    return data


def _from_dict(data: Any) -> WindowSummary:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("it has no 'format': 1 member")
    mv = data["multivariate"]
    return WindowSummary(
        profile=str(data["profile"]),
        n_rows=int(data["n_rows"]),
        start=_utc(datetime.fromisoformat(data["start"])) if data["start"] else None,
        end=_utc(datetime.fromisoformat(data["end"])) if data["end"] else None,
        numeric={
            n: NumericSummary(**{**s, "counts": tuple(s["counts"])})
            for n, s in data["numeric"].items()
        },
        categorical={n: CategoricalSummary(**s) for n, s in data["categorical"].items()},
        multivariate=MultivariateSummary(
            rows=int(mv["rows"]),
            error=float(mv["error"]),
            total=tuple(mv["total"]),
            outer=tuple(tuple(row) for row in mv["outer"]),
        )
        if mv
        else None,
    )
