"""What ``drift()`` answers: a row per feature, the multivariate check, the overall verdict.

Frozen dataclasses of plain values; ``DriftResult.to_dict()`` is JSON for the CLI and the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from seaway.errors import InvalidInputError


@dataclass(frozen=True)
class Check:
    """A secondary check of a feature: an event's rate in the window against the reference's."""

    name: str  # "missing", "out of range" or "new categories"
    rate: float | None  # in the window
    reference_rate: float | None
    p_value: float
    drifted: bool


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict: its test against its threshold, its checks, its effect sizes."""

    feature: str
    kind: str  # "numeric", "categorical" or "boolean"
    test: str
    statistic: float | None  # None when either side has no values
    threshold: float | None
    p_value: float | None
    drifted: bool  # the test or a check
    reference_count: int  # non-missing values compared
    window_count: int
    statistics: Mapping[str, float | None] = field(default_factory=dict)  # every statistic
    effects: Mapping[str, Any] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class MultivariateDrift:
    """The window's mean PCA reconstruction error (a distance) against the reference's band."""

    features: tuple[str, ...]
    components: int
    error: float | None  # the window's mean; None for an empty window
    reference_error: float
    reference_std: float  # per-row std of the reference's error
    lower: float | None  # the band: the error's range by chance at this window's size
    upper: float | None
    p_value: float | None
    drifted: bool
    rows: int
    squared_error: float | None = None  # the window's mean squared error
    reference_squared_error: float | None = None


@dataclass(frozen=True)
class DriftResult:
    """The per-feature rows (profile order), the multivariate check and the overall verdict."""

    drifted: bool
    features: tuple[FeatureDrift, ...]
    multivariate: MultivariateDrift | None
    alpha: float
    n_reference: int
    n_window: int
    start: datetime | None
    end: datetime | None
    skipped: tuple[str, ...] = ()  # profile features the window does not have

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(row.feature for row in self.features if row.drifted)

    def feature(self, name: str) -> FeatureDrift:
        for row in self.features:
            if row.feature == name:
                return row
        raise InvalidInputError(f"the drift result has no feature {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: NaN and infinities become None, datetimes ISO strings."""
        result: dict[str, Any] = _clean(asdict(self))
        result["drifted_features"] = list(self.drifted_features)
        return result


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value
