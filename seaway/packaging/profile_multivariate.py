"""The reference profile's multivariate block: how the numeric features move together.

Per-feature tests miss a change in the relations between features (two features that used to
rise together stop doing so while each keeps its distribution). As NannyML does, the reference's
standardised numeric features are compressed with PCA to the components that keep
``EXPLAINED_VARIANCE`` of their variance; a row's **reconstruction error** is the distance
between the row and its projection on those components. When the relations change, rows leave
the reference's subspace and the error grows (or shrinks, when features become more tied).

A window's mean error is a sum over its rows divided by their number, so window summaries merge.
The mean *squared* error also follows from sums that merge, and from the reference's mean and
std: with ``O = sum(z z^T)`` over a window's standardised rows, it is
``(trace(O) - trace(W O W^T)) / rows`` for the component matrix ``W``. Drift judges the distance,
whose mean is close to Gaussian in small windows too; squares of heavy-tailed features are not.

Standardisation: ``z = (x - mean) / std`` with the feature's finite mean and population std, and
a missing or infinite value imputed to the mean (``z = 0``), so a row is always complete. Constant
features have no direction to lose and are left out; at least two features are needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

EXPLAINED_VARIANCE = 0.65  # NannyML's default
MAX_FEATURES = 100  # the first numeric features, to keep the components' size bounded
CHUNK_ROWS = 1 << 17  # rows standardised at a time: bounds the memory of a large frame
FloatArray = np.ndarray[Any, np.dtype[np.float64]]


class Multivariate(BaseModel):
    """PCA of the standardised numeric features and the reference's per-row error statistics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    features: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]  # all positive
    components: tuple[tuple[float, ...], ...]  # orthonormal rows, fewer than the features
    explained: float  # fraction of the standardised variance the components keep
    n: int  # reference rows
    error_mean: float  # mean over the reference rows of the reconstruction error (a distance)
    error_std: float  # its population std

    @model_validator(mode="after")
    def _check(self) -> Multivariate:
        d = len(self.features)
        if (
            d < 2
            or len(self.mean) != d
            or len(self.std) != d
            or not 0 < len(self.components) < d
            or any(len(row) != d for row in self.components)
            or min(self.std) <= 0
        ):
            raise ValueError("multivariate block: features, mean, std and components do not match")
        return self

    def component_matrix(self) -> FloatArray:
        """The components as a (components, features) array."""
        return np.asarray(self.components, dtype=np.float64)

    def standardise(self, columns: Sequence[FloatArray]) -> FloatArray:
        """``z`` feature-major, (features, rows) in ``features`` order (missing, infinite: 0).
        Feature-major: each feature is copied whole and the rows' sums run along memory."""
        if len(columns) != len(self.features):
            raise ValueError(f"expected {len(self.features)} columns, got {len(columns)}")
        return _standardise(columns, self.mean, self.std)

    def errors(self, z: FloatArray) -> FloatArray:
        """Each row's reconstruction error, for ``z`` as ``standardise`` gives it."""
        kept = self.component_matrix() @ z  # orthonormal components: |z|^2 = |kept|^2 + error^2
        squared = np.square(z).sum(axis=0) - np.square(kept).sum(axis=0)
        result: FloatArray = np.sqrt(np.maximum(squared, 0.0))
        return result

    @property
    def squared_error_mean(self) -> float:
        """The reference rows' mean squared reconstruction error."""
        return self.error_std**2 + self.error_mean**2

    def mean_squared_error(self, rows: int, outer: FloatArray) -> float:
        """The mean squared reconstruction error of ``rows`` rows whose ``sum(z z^T)`` is ``outer``."""
        if rows <= 0:
            return float("nan")
        w = self.component_matrix()
        kept = float(np.trace(w @ outer @ w.T))
        return max(float(np.trace(outer)) - kept, 0.0) / rows


def build_multivariate(
    columns: Mapping[str, FloatArray], moments: Mapping[str, tuple[float, float]]
) -> Multivariate | None:
    """The block for the numeric ``columns`` (name to float values) with ``moments`` (name to
    finite mean and std); ``None`` with fewer than two non-constant features."""
    names = [n for n in columns if moments[n][1] > 0][:MAX_FEATURES]
    if len(names) < 2:
        return None
    mean = tuple(moments[n][0] for n in names)
    std = tuple(moments[n][1] for n in names)
    d = len(names)
    z = _standardise([columns[n] for n in names], mean, std)
    # the same rows in an order that depends only on their values, so that the sums below (and
    # the profile's JSON) do not depend on the order of the rows given
    key = (0.5 + np.modf(np.arange(1, d + 1) * 0.6180339887498949)[0]) @ z
    z = z[:, np.argsort(key, kind="stable")]
    rows = z.shape[1]
    covariance = (z @ z.T) / rows
    values, vectors = np.linalg.eigh(covariance)
    values, vectors = np.clip(values[::-1], 0.0, None), vectors[:, ::-1]
    total = float(values.sum())
    if total <= 0:
        return None
    share = np.cumsum(values) / total
    k = min(int(np.searchsorted(share, EXPLAINED_VARIANCE - 1e-12)) + 1, d - 1)
    w = vectors[:, :k].T
    w = w * np.where(w[np.arange(k), np.abs(w).argmax(axis=1)] < 0, -1.0, 1.0)[:, None]
    block = Multivariate(
        features=tuple(names), mean=mean, std=std,
        components=tuple(tuple(row) for row in w.tolist()),
        explained=float(share[k - 1]), n=rows, error_mean=0.0, error_std=0.0,
    )  # fmt: skip
    chunks = [block.errors(z[:, i : i + CHUNK_ROWS]) for i in range(0, rows, CHUNK_ROWS)]
    errors = np.sort(np.concatenate(chunks))  # sorted: sums free of the rows' order
    return block.model_copy(
        update={"error_mean": float(errors.mean()), "error_std": float(errors.std())}
    )


def _standardise(
    columns: Sequence[FloatArray], mean: Sequence[float], std: Sequence[float]
) -> FloatArray:
    z = np.array(columns, dtype=np.float64)  # a copy, one row per feature
    z -= np.asarray(mean)[:, None]
    z /= np.asarray(std)[:, None]
    z[~np.isfinite(z)] = 0.0
    return z
