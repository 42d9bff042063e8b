"""The reference profile: a compact JSON summary of the data a model was trained on.

Drift detection compares live traffic with this profile, not with the raw training data, so each
feature keeps what the usual tests need, in a size that does not grow with the data:

- **Missing rate**: ``count`` (non-missing values) and ``missing``; ``count + missing == n_rows``.
  Missing means None, NaN, ``pd.NA`` or NaT. Infinity is *not* missing: the model received it.
- **Numeric** features (KS, Wasserstein, PSI): mean, population std (ddof=0), min, max and the 101
  percentiles 0.00, 0.01, ..., 1.00 (numpy's default linear interpolation), all over the *finite*
  values so they stay finite in JSON; ``infinite`` counts the rest. The percentile grid is a
  quantile sketch: ``np.interp(x, quantiles, quantile_levels)`` is the reference CDF for a KS
  statistic, and the mean gap between two such grids approximates the Wasserstein-1 distance.
- **Histogram** (PSI): interior edges are the training deciles taken as observed values (numpy's
  ``inverted_cdf``), deduplicated and without the maximum. Bins are right-closed and the outer ones
  open: ``(-inf, e0], (e0, e1], ..., (e_last, inf)``. Equal-frequency bins give PSI its usual
  scale; every live value (infinities too) lands in a bin; and no reference bin is empty, so PSI's
  logarithm is finite on the reference side. Low-cardinality data collapses to fewer bins (a 0/1
  column has two, a constant column one). Bin live data with ``np.searchsorted(edges, x)``.
- **Fine histogram** (format 2; KS, Wasserstein and the window summaries): the same rule with up to
  ``FINE_BINS`` equal-frequency bins (percentiles as observed values), with exact reference counts.
  The decile edges are among the fine edges, so a window's decile counts follow from its fine ones.
- **Multivariate** (format 2; ``profile_multivariate``): PCA of the standardised numeric features
  and the reference's per-row reconstruction error, for a change in how features move together.
- **Categorical** and **boolean** features (chi-square, PSI): the number of distinct values, the
  counts of the ``max_categories`` most frequent (ties broken by label), the rest folded into
  ``other``. Values are keyed by ``category_label`` (JSON keys are strings).

Kinds: bool and nullable boolean columns are boolean; numbers, timedeltas (seconds) and datetimes
(epoch seconds, naive taken as UTC: a timestamp drifts by moving in time, while as categories
nearly every value would be distinct) are numeric; the rest is categorical, except object columns
holding only bools or only numbers. Convert live traffic with ``numeric_values`` and
``category_label`` so that it is measured exactly as the reference was.

Format 1 profiles (no fine histogram, no multivariate block) still load; drift then works from the
deciles and skips the multivariate check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from numbers import Number
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as pdt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from seaway.errors import InvalidInputError, PackagingError
from seaway.packaging.profile_multivariate import Multivariate, build_multivariate
from seaway.packaging.signature import to_numpy

PERCENTILES = 100  # quantiles are kept at every percentile, 0.00 to 1.00
HISTOGRAM_BINS = 10  # equal-frequency (decile) bins before deduplication
FINE_BINS = 100  # the fine histogram's bins before deduplication (a multiple of HISTOGRAM_BINS)
FORMAT_VERSION: Literal[2] = 2
MAX_CATEGORIES = 50
_NUMERIC_OBJECTS = frozenset({"integer", "floating", "mixed-integer-float", "decimal"})
_UNMIXED = ("string", "boolean", "empty")  # object columns whose values need no labelling first
_ARRAY_LIKE = (np.ndarray, list, tuple, Number, str, bytes)  # scalars too, for a clear error
_FROZEN = ConfigDict(frozen=True, extra="forbid")
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


class Histogram(BaseModel):
    """Counts of the bins ``(-inf, edges[0]], (edges[0], edges[1]], ..., (edges[-1], inf)``."""

    model_config = _FROZEN

    edges: tuple[float, ...]  # strictly increasing
    counts: tuple[int, ...]  # one more than edges


class _FeatureBase(BaseModel):
    model_config = _FROZEN

    kind: str
    dtype: str  # the source dtype, e.g. "int64", "str", "category", "datetime64[us, UTC]"
    count: int  # non-missing values
    missing: int

    @property
    def missing_rate(self) -> float:
        total = self.count + self.missing
        return self.missing / total if total else 0.0


class NumericFeature(_FeatureBase):
    """A numeric feature; the statistics are ``None`` (and quantiles empty) without finite values."""

    kind: Literal["numeric"] = "numeric"
    infinite: int = 0
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    quantile_levels: tuple[float, ...] = ()
    quantiles: tuple[float, ...] = ()
    histogram: Histogram
    fine: Histogram | None = None  # format 2

    @model_validator(mode="after")
    def _check(self) -> NumericFeature:
        hists = (self.histogram,) if self.fine is None else (self.histogram, self.fine)
        if len(self.quantile_levels) != len(self.quantiles) or any(
            len(h.counts) != len(h.edges) + 1 or sum(h.counts) != self.count for h in hists
        ):
            raise ValueError("quantiles or histogram do not match their levels, edges or count")
        return self

    @property
    def bins(self) -> Histogram:
        """The finest histogram the profile has: the fine one, or the deciles of format 1."""
        return self.histogram if self.fine is None else self.fine

    def quantile(self, level: float) -> float:
        """The reference quantile at ``level``, interpolated between the stored percentiles."""
        if not 0.0 <= level <= 1.0:
            raise InvalidInputError(f"a quantile level is between 0 and 1, got {level}")
        if not self.quantiles:
            return float("nan")
        return float(np.interp(level, self.quantile_levels, self.quantiles))


class CategoricalFeature(_FeatureBase):
    """A categorical or boolean feature: ``sum(top.values()) + other == count``."""

    kind: Literal["categorical", "boolean"] = "categorical"
    distinct: int
    top: dict[str, int]  # most frequent first
    other: int = 0


Feature = Annotated[NumericFeature | CategoricalFeature, Field(discriminator="kind")]


class ReferenceProfile(BaseModel):
    """Per-feature summaries of the reference (training) data, in the data's column order."""

    model_config = _FROZEN

    format_version: Literal[1, 2] = FORMAT_VERSION
    n_rows: int
    features: dict[str, Feature]
    multivariate: Multivariate | None = None  # format 2, when two numeric features vary

    def feature(self, name: str) -> NumericFeature | CategoricalFeature:
        """The named feature; an unknown name is an error that lists the known ones."""
        try:
            return self.features[name]
        except KeyError:
            known = ", ".join(list(self.features)[:20]) + (
                ", ..." if len(self.features) > 20 else ""
            )
            raise InvalidInputError(
                f"the reference profile has no feature {name!r}; its features are: {known}"
            ) from None


def build_profile(
    data: Any,
    *,
    feature_names: Sequence[str] | None = None,
    max_categories: int = MAX_CATEGORIES,
) -> ReferenceProfile:
    """Profile ``data``: a DataFrame, a 1-D or 2-D array, a Series or a dict of 1-D arrays.

    Unnamed columns are called "0", "1", ...; ``feature_names`` renames the columns in order.
    """
    if max_categories < 1:
        raise PackagingError(f"max_categories must be at least 1, got {max_categories}")
    columns = _columns(data, feature_names)
    features: dict[str, NumericFeature | CategoricalFeature] = {}
    numeric: dict[str, FloatArray] = {}
    for name, series in columns:
        kind = _kind(name, series)
        if kind == "numeric":
            numeric[name] = numeric_values(series)
            features[name] = _numeric(numeric[name], str(series.dtype))
        else:
            features[name] = _categorical(series, kind, max_categories)
    moments = {n: _moments(features[n]) for n in numeric}
    return ReferenceProfile(
        n_rows=len(columns[0][1]),
        features=features,
        multivariate=build_multivariate(numeric, moments),
    )


def feature_columns(data: Any) -> list[tuple[str, pd.Series[Any]]]:
    """``data`` as named 1-D columns, named as :func:`build_profile` names features ("0", "1",
    ... for an array's columns; a DataFrame's or a dict's own names): how live traffic (the
    prediction log) is matched with the profile."""
    return _columns(data, None)


def category_label(value: Any) -> str:
    """The string a categorical value is counted under (``str``; bytes decoded as UTF-8)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def numeric_values(values: Any) -> FloatArray:
    """``values`` as float64 the way profiling sees them: missing as NaN, datetimes as seconds."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(to_numpy(values)))
    dtype = series.dtype
    if dtype.kind == "M":
        epoch = pd.Timestamp(0, tz="UTC") if getattr(dtype, "tz", None) else pd.Timestamp(0)
        series = (series - epoch).dt.total_seconds()
    elif dtype.kind == "m":
        series = series.dt.total_seconds()
    elif pdt.is_object_dtype(dtype):
        series = pd.to_numeric(series, errors="coerce")  # live junk counts as missing
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _columns(data: Any, names: Sequence[str] | None) -> list[tuple[str, pd.Series[Any]]]:
    """Split ``data`` into named 1-D columns of equal, non-zero length."""
    data = to_numpy(data)
    columns: list[tuple[str, pd.Series[Any]]]
    if isinstance(data, pd.DataFrame):
        columns = [(str(col), data.iloc[:, i]) for i, col in enumerate(data.columns)]
    elif isinstance(data, pd.Series):
        columns = [("0" if data.name is None else str(data.name), data)]
    elif isinstance(data, Mapping):
        columns = [(str(key), _column(value, key)) for key, value in data.items()]
    elif isinstance(data, _ARRAY_LIKE) or hasattr(data, "__array__"):
        array = _array(data, "reference_data")
        if array.ndim > 2:
            raise PackagingError(
                f"reference_data has shape {list(array.shape)}; pass a 1-D or 2-D array "
                "(rows by features), a DataFrame or a dict of 1-D arrays"
            )
        array = array[:, None] if array.ndim == 1 else array  # a 1-D array is feature "0"
        columns = [(str(j), pd.Series(array[:, j])) for j in range(array.shape[1])]
    else:
        raise PackagingError(
            f"reference_data of type {type(data).__name__} cannot be profiled; pass a pandas "
            "DataFrame or Series, a 1-D or 2-D numpy array, or a dict of 1-D arrays"
        )
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        if len(names) != len(columns):
            raise PackagingError(
                f"feature_names has {len(names)} names but reference_data has {len(columns)} features"
            )
        columns = [(str(name), series) for name, (_, series) in zip(names, columns, strict=True)]
    if not columns:
        raise PackagingError("reference_data has no features (columns); pass the training inputs")
    duplicated = sorted(n for n, times in Counter(n for n, _ in columns).items() if times > 1)
    if duplicated:
        raise PackagingError(f"reference_data has duplicated feature names {duplicated}")
    lengths = {name: len(series) for name, series in columns}
    if len(set(lengths.values())) > 1:
        raise PackagingError(f"reference_data columns have different lengths: {lengths}")
    if not next(iter(lengths.values())):
        raise PackagingError(
            "reference_data is empty (0 rows); pass a sample of the data the model was trained on"
        )
    return columns


def _array(value: Any, what: str) -> np.ndarray[Any, Any]:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise PackagingError(f"{what} cannot be read as an array: {exc}") from exc
    if array.ndim == 0:
        raise PackagingError(
            f"{what} is a scalar ({type(value).__name__}); pass a batch of rows, one value per row"
        )
    return array.astype(object) if array.dtype.kind == "S" else array  # pandas has no bytes dtype


def _column(value: Any, key: Any) -> pd.Series[Any]:
    array = value if isinstance(value, pd.Series) else _array(to_numpy(value), f"feature {key!r}")
    if array.ndim != 1:
        raise PackagingError(f"feature {key!r} has shape {list(array.shape)}; it must be 1-D")
    return pd.Series(array)


def _moments(feature: NumericFeature | CategoricalFeature) -> tuple[float, float]:
    assert isinstance(feature, NumericFeature)
    return (feature.mean or 0.0, feature.std or 0.0)


def _kind(name: str, series: pd.Series[Any]) -> Literal["numeric", "categorical", "boolean"]:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pdt.is_bool_dtype(dtype):
        return "boolean"
    if pdt.is_complex_dtype(dtype):
        raise PackagingError(f"feature {name!r} is complex; split it into real and imaginary parts")
    if pdt.is_numeric_dtype(dtype) or dtype.kind in "mM":
        return "numeric"
    inferred = pdt.infer_dtype(series, skipna=True) if pdt.is_object_dtype(dtype) else ""
    if inferred == "boolean":
        return "boolean"
    return "numeric" if inferred in _NUMERIC_OBJECTS else "categorical"


def _numeric(values: FloatArray, dtype: str) -> NumericFeature:
    missing = int(np.count_nonzero(np.isnan(values)))
    count = values.size - missing
    finite = np.sort(values[np.isfinite(values)])  # sorted once: order-free, exact rank lookups
    if not finite.size:
        return NumericFeature(
            dtype=dtype, count=count, missing=missing, infinite=count,
            histogram=Histogram(edges=(), counts=(count,)),
            fine=Histogram(edges=(), counts=(count,)),
        )  # fmt: skip
    low = int(np.count_nonzero(values == -np.inf))
    high = count - finite.size - low
    steps = np.arange(PERCENTILES + 1)
    return NumericFeature(
        dtype=dtype,
        count=count,
        missing=missing,
        infinite=count - finite.size,
        mean=float(finite.mean()),
        std=float(finite.std()) if finite[-1] > finite[0] else 0.0,  # no rounding noise
        min=float(finite[0]),
        max=float(finite[-1]),
        quantile_levels=tuple((steps / PERCENTILES).tolist()),
        quantiles=tuple(_percentiles(finite, steps).tolist()),
        histogram=_histogram(finite, HISTOGRAM_BINS, low, high),
        fine=_histogram(finite, FINE_BINS, low, high),
    )


def _histogram(finite: FloatArray, bins: int, low: int, high: int) -> Histogram:
    """Equal-frequency bins of the sorted finite values; ``low``/``high`` infinities join the
    outer bins."""
    ranks = -(-finite.size * np.arange(1, bins) // bins)  # ceil(n*k/bins)
    edges = np.unique(finite[ranks - 1])  # quantiles as observed values, in exact integers
    edges = edges[edges < finite[-1]]
    at_or_below = np.searchsorted(finite, edges, side="right")
    counts = np.diff(np.concatenate(([0], at_or_below, [finite.size])))
    counts[0] += low
    counts[-1] += high
    return Histogram(edges=tuple(edges.tolist()), counts=tuple(counts.tolist()))


def _percentiles(ordered: FloatArray, steps: np.ndarray[Any, Any]) -> FloatArray:
    """numpy's linear quantiles at ``steps / PERCENTILES``, positioned in integers so a quantile
    that sits on a value is that value (np.quantile(np.arange(101), 0.07) is 7.000000000000001)."""
    scaled = steps * (ordered.size - 1)
    lower = scaled // PERCENTILES
    upper = np.minimum(lower + 1, ordered.size - 1)
    fraction = (scaled % PERCENTILES) / PERCENTILES
    result: FloatArray = ordered[lower] + (ordered[upper] - ordered[lower]) * fraction
    return result


def _categorical(
    series: pd.Series[Any], kind: Literal["categorical", "boolean"], max_categories: int
) -> CategoricalFeature:
    counts, present = _label_counts(series)
    ranked = counts.sort_index().sort_values(ascending=False, kind="stable")  # ties by label
    return CategoricalFeature(
        kind=kind,
        dtype=str(series.dtype),
        count=present,
        missing=len(series) - present,
        distinct=len(ranked),
        top={str(label): int(n) for label, n in ranked.iloc[:max_categories].items()},
        other=int(ranked.iloc[max_categories:].sum()),
    )


def category_counts(values: Any) -> tuple[dict[str, int], int]:
    """The non-missing values counted by ``category_label``, and how many are missing: a live
    categorical column measured as the profile measured the reference."""
    series = values if isinstance(values, pd.Series) else _column(values, "values")
    counts, present = _label_counts(series)
    labels = [str(label) for label in counts.index]
    return dict(zip(labels, counts.to_numpy().tolist(), strict=True)), len(series) - present


def _label_counts(series: pd.Series[Any]) -> tuple[pd.Series[Any], int]:
    """Counts by label (unordered, none zero) and the number of non-missing values."""
    if pdt.is_object_dtype(series.dtype) and pdt.infer_dtype(series, skipna=True) not in _UNMIXED:
        series = series.dropna().map(category_label)  # mixed types: label first: 1 and "1" agree
    counts = series.value_counts(sort=False, dropna=True)
    if isinstance(series.dtype, pd.CategoricalDtype):
        counts = counts[counts > 0]  # a category dtype lists unused categories too
    if pdt.infer_dtype(counts.index) != "string":  # labels of distinct values may coincide
        labels = [category_label(value) for value in counts.index]
        counts = pd.Series(counts.to_numpy(), index=labels).groupby(level=0).sum()
    return counts, int(counts.sum())
