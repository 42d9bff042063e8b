"""Two-sample statistics over binned counts, and their null distributions.

Pure functions of numpy arrays: a reference's counts ``ref`` and a window's counts ``win`` on the
same bins (the reference profile's). Each statistic comes with the level it reaches by chance when
both samples come from one distribution, for *these* sample sizes ``n`` (reference) and ``m``
(window): under that null the difference of the binned proportions is close to Gaussian with
covariance ``(1/n + 1/m) (diag(p) - p p^T)``, so

- PSI, Jensen-Shannon divergence (times 8) and Pearson's chi-squared distance, divided by
  ``1/n + 1/m``, follow a chi-squared law with ``bins - 1`` degrees of freedom;
- the KS statistic divided by ``sqrt(1/n + 1/m)`` follows Kolmogorov's law (a bound: binning can
  only lower the statistic), and so does the binned Wasserstein distance, whose law depends on the
  bins' widths and is simulated with an injected generator.

A threshold is the statistic's ``1 - alpha`` quantile under that null: a million rows drawn from
the reference distribution stay under it, while a small real shift in a large window crosses it.
Distribution functions come from ``scipy.special`` (the ``seaway[monitor]`` extra).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from seaway.errors import MissingDependencyError

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
PSI_FLOOR = 1e-4  # proportions below this count as this in PSI's logarithm (empty bins)
MIN_EXPECTED = 5.0  # chi-squared pools bins expected to hold fewer rows than this


def _special() -> Any:
    try:
        import scipy.special
    except ImportError as exc:  # pragma: no cover - scipy comes with the monitor extra
        raise MissingDependencyError("scipy", "monitor", "Drift statistics") from exc
    return scipy.special


def proportions(counts: Any) -> FloatArray:
    """``counts`` as proportions (zeros when the counts sum to zero)."""
    values = np.asarray(counts, dtype=np.float64)
    total = values.sum()
    return values / total if total > 0 else np.zeros_like(values)


def scale(n: int, m: int) -> float:
    """``1/n + 1/m``: the variance of a proportion's difference, per unit of ``p(1-p)``."""
    return 1.0 / n + 1.0 / m


def ks(ref: Any, win: Any) -> float:
    """The Kolmogorov-Smirnov statistic of two binned samples: the largest gap between their
    cumulative proportions at the bins' edges."""
    gap = np.cumsum(proportions(ref) - proportions(win))
    return float(np.abs(gap[:-1]).max(initial=0.0))


def ks_threshold(alpha: float, n: int, m: int) -> float:
    """The KS statistic's ``1 - alpha`` quantile for samples of ``n`` and ``m`` rows."""
    return float(_special().kolmogi(alpha)) * math.sqrt(scale(n, m))


def ks_p_value(statistic: float, n: int, m: int) -> float:
    return float(_special().kolmogorov(statistic / math.sqrt(scale(n, m))))


def wasserstein(ref: Any, win: Any, knots: Any) -> float:
    """Wasserstein-1 distance of two binned samples, each spread evenly within the bins.

    ``knots`` are the bins' bounds, one more than the bins: the reference's minimum, the interior
    edges, its maximum (outer bins are closed at the reference's range; values beyond it are
    the range check's business)."""
    gap = np.cumsum(proportions(ref) - proportions(win))[:-1]
    return float(_area(np.concatenate(([0.0], gap, [0.0])), np.diff(np.asarray(knots, float))))


def _area(gap: FloatArray, widths: FloatArray) -> Any:
    """``integral |D|`` for D linear between knots with values ``gap`` (last axis)."""
    a, b = gap[..., :-1], gap[..., 1:]
    same = a * b >= 0
    total = np.abs(a) + np.abs(b)
    crossing = np.divide(a * a + b * b, total, out=np.zeros_like(total), where=total > 0)
    return (widths * np.where(same, total, crossing) / 2).sum(axis=-1)


def wasserstein_null(
    ref: Any, knots: Any, rng: np.random.Generator, draws: int, normals: Any = None
) -> FloatArray:
    """Simulated ``wasserstein / sqrt(1/n + 1/m)`` under the null, sorted: Gaussian bridges on the
    reference's bins. ``normals`` (draws by at least bins, float32) can be shared between
    features. The area between knots is taken as a trapezoid, which a crossing of zero only
    lowers: the simulated law is a slight bound, as Kolmogorov's is for KS."""
    p = proportions(ref).astype(np.float32)
    if normals is None:
        normals = rng.standard_normal((draws, p.size), dtype=np.float32)
    g = normals[:draws, : p.size] * np.sqrt(p)
    g -= np.outer(g.sum(axis=1), p)  # covariance diag(p) - p p^T
    gap = np.abs(np.cumsum(g, axis=1)[:, :-1])
    widths = np.diff(np.asarray(knots, dtype=np.float64))
    weights = ((widths[:-1] + widths[1:]) / 2).astype(np.float32)  # each interior knot's share
    return np.sort((gap @ weights).astype(np.float64))


def psi(ref: Any, win: Any) -> float:
    """Population stability index: ``sum((w - r) ln(w / r))`` over the bins' proportions, each
    floored at ``PSI_FLOOR`` so an empty bin costs a finite amount."""
    r = np.maximum(proportions(ref), PSI_FLOOR)
    w = np.maximum(proportions(win), PSI_FLOOR)
    return float(((w - r) * np.log(w / r)).sum())


def jensen_shannon(ref: Any, win: Any) -> float:
    """Jensen-Shannon distance (the square root of the divergence, natural logarithm), as
    ``scipy.spatial.distance.jensenshannon``."""
    r, w = proportions(ref), proportions(win)
    mid = (r + w) / 2
    divergence = 0.5 * (_kl(r, mid) + _kl(w, mid))
    return math.sqrt(max(divergence, 0.0))


def _kl(p: FloatArray, q: FloatArray) -> float:
    mask = p > 0
    return float((p[mask] * np.log(p[mask] / q[mask])).sum())


def degrees_of_freedom(ref: Any, win: Any) -> int:
    """Bins that either sample uses, less one."""
    used = (np.asarray(ref) > 0) | (np.asarray(win) > 0)
    return max(int(used.sum()) - 1, 0)


def divergence_threshold(alpha: float, df: int, n: int, m: int) -> float:
    """The ``1 - alpha`` quantile of PSI (and of 8 x the JS divergence) for ``df`` degrees of
    freedom; 0 when there are none."""
    return float(_special().chdtri(df, alpha)) * scale(n, m) if df > 0 else 0.0


def divergence_p_value(divergence: float, df: int, n: int, m: int) -> float:
    return float(_special().chdtrc(df, divergence / scale(n, m))) if df > 0 else 1.0


def chi_squared(ref: Any, win: Any) -> tuple[float, int]:
    """Pearson's chi-squared statistic of the 2 x bins contingency table and its degrees of
    freedom, after pooling the bins expected to hold under ``MIN_EXPECTED`` rows in either
    sample (the chi-squared law misleads there); ``chi2_contingency(correction=False)`` of the
    pooled table."""
    r, w = _pooled(np.asarray(ref, dtype=np.float64), np.asarray(win, dtype=np.float64))
    if r.size < 2 or not r.sum() or not w.sum():
        return 0.0, 0
    table = np.vstack((r, w))
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    return float(((table - expected) ** 2 / expected).sum()), r.size - 1


def _pooled(r: FloatArray, w: FloatArray) -> tuple[FloatArray, FloatArray]:
    keep = (r + w) > 0
    r, w = r[keep], w[keep]
    n, m = r.sum(), w.sum()
    if not n or not m:
        return r, w
    combined = r + w
    smallest = np.minimum(combined * n, combined * m) / (n + m)  # the smaller expected count
    rare = smallest < MIN_EXPECTED
    if not rare.any():
        return r, w
    pooled_r, pooled_w = r[~rare], w[~rare]
    extra_r, extra_w = r[rare].sum(), w[rare].sum()
    if (extra_r + extra_w) * min(n, m) / (n + m) < MIN_EXPECTED and pooled_r.size:
        j = int(np.argmin(pooled_r + pooled_w))  # still rare: join the smallest common bin
        pooled_r[j] += extra_r
        pooled_w[j] += extra_w
        return pooled_r, pooled_w
    return np.append(pooled_r, extra_r), np.append(pooled_w, extra_w)


def chi_squared_threshold(alpha: float, df: int) -> float:
    return float(_special().chdtri(df, alpha)) if df > 0 else 0.0


def chi_squared_p_value(statistic: float, df: int) -> float:
    return float(_special().chdtrc(df, statistic)) if df > 0 else 1.0


def rate_p_value(k_ref: int, n: int, k_win: int, m: int, *, two_sided: bool) -> float:
    """Whether an event's rate differs between the samples (``k_ref`` of ``n`` against ``k_win``
    of ``m``): given the ``k_ref + k_win`` events, under the null each falls in the window with
    probability ``m / (n + m)`` (the conditional binomial test of two Poisson rates). Exact for
    rare events, where a Gaussian test raises false alarms. One-sided: the window's rate is higher.
    """
    if n <= 0 or m <= 0:
        return 1.0
    special = _special()
    events = k_ref + k_win
    share = m / (n + m)
    upper = 1.0 if k_win <= 0 else float(special.bdtrc(k_win - 1, events, share))
    if not two_sided:
        return min(upper, 1.0)
    lower = float(special.bdtr(k_win, events, share))
    return min(1.0, 2 * min(upper, lower))


def normal_quantile(level: float) -> float:
    return float(_special().ndtri(level))


def normal_sf(z: float) -> float:
    return float(_special().ndtr(-z))
