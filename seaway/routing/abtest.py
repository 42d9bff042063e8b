"""A/B test verdicts that stay valid however often they are looked at.

A fixed-horizon test (a t-test at a sample size chosen up front) is wrong the moment someone checks
it early and stops when it says "significant": with daily looks its false positive rate is several
times its nominal level. `seaway deploy results` is meant to be looked at whenever, so this uses the
mixture sequential probability ratio test (mSPRT, Johari, Pekelis and Walsh, "Always valid
inference", 2017/2022) for the difference of two means:

* the estimate is ``d = mean_t - mean_c`` with variance ``V = s_c^2/n_c + s_t^2/n_t``;
* against the null ``theta = theta0`` it uses a normal mixture ``theta ~ N(theta0, tau2)``, whose
  likelihood ratio is ``Lambda = sqrt(V / (V + tau2)) * exp(tau2 (d - theta0)^2 / (2 V (V + tau2)))``;
* ``Lambda`` is a martingale under the null, so by Ville's inequality it ever crosses ``1/alpha``
  with probability at most alpha: the p-value ``min(1, 1/Lambda)`` read at *any* look (any
  stopping time) is valid, and so is the confidence interval ``{theta0 : Lambda(theta0) < 1/alpha}``
  (the always-valid confidence sequence) which excludes 0 exactly when ``p <= alpha``.

Outcomes are the arms' counters ``outcome_n``, ``outcome_sum`` and ``outcome_sumsq``, so conversions
(0/1) and continuous outcomes (revenue, time on page) go through the same test; the variances are
the arms' sample variances (a plug-in, the usual practice, accurate once ``min_samples`` is met).
Higher outcome values count as better.

The default ``tau2`` is ``(0.1 * s)^2`` with ``s`` the pooled within-arm standard deviation: a prior
on the effect of a tenth of a standard deviation, the size of typical A/B effects (a 10% -> 13%
conversion lift is 0.1 s). The rejection boundary ``z^2 = (1 + V/tau2)(2 ln(1/alpha) +
ln(1 + tau2/V))`` is lowest when ``tau2`` is about ten times ``V`` (a few thousand outcomes per arm
with this default) and within a few percent of that best from several hundred to tens of thousands
per arm, where such effects become detectable; a ``tau2`` far from that costs power, never validity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from seaway.errors import InvalidInputError
from seaway.routing.stats import ArmStats

#: the default mixture's standard deviation, in pooled standard deviations of the outcome
DEFAULT_EFFECT_SCALE = 0.1


@dataclass(frozen=True)
class ArmResult:
    """One arm's outcomes: the mean with its always-valid confidence interval (None until n >= 2)."""

    version: str
    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class ABResult:
    """The comparison; ``difference`` is treatment minus control (None until there is enough data)."""

    control: ArmResult
    treatment: ArmResult
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    significant: bool
    enough_data: bool
    message: str


@dataclass(frozen=True)
class _Moments:
    n: int
    mean: float
    var: float  # unbiased sample variance, >= 0


def _moments(stats: ArmStats) -> _Moments:
    n = int(stats.outcome_n)
    if n <= 0:
        return _Moments(0, math.nan, math.nan)
    mean = stats.outcome_sum / n
    if n < 2:
        return _Moments(n, mean, math.nan)
    var = max(0.0, (stats.outcome_sumsq - n * mean * mean) / (n - 1))
    return _Moments(n, mean, var)


def log_lambda(d: float, v: float, tau2: float) -> float:
    """ln of the mixture likelihood ratio of an estimate ``d`` (variance ``v``) against 0."""
    return 0.5 * math.log(v / (v + tau2)) + tau2 * d * d / (2.0 * v * (v + tau2))


def half_width(v: float, tau2: float, alpha: float) -> float:
    """Half the width of the always-valid (1 - alpha) confidence interval around the estimate."""
    return math.sqrt(v * (v + tau2) / tau2 * (2.0 * math.log(1.0 / alpha) + math.log1p(tau2 / v)))


def default_tau2(control: ArmStats, treatment: ArmStats) -> float | None:
    """``(0.1 * pooled within-arm sd)^2``; None while neither arm has two outcomes."""
    return _default_tau2(_moments(control), _moments(treatment))


def _default_tau2(c: _Moments, t: _Moments) -> float | None:
    arms = [m for m in (c, t) if m.n >= 2]
    dof = sum(m.n - 1 for m in arms)
    if dof <= 0:
        return None
    pooled = sum((m.n - 1) * m.var for m in arms) / dof
    if pooled <= 0.0 and len(arms) == 2:
        # each arm constant so far: the spread between them is the only scale there is
        n = c.n + t.n
        mean = (c.n * c.mean + t.n * t.mean) / n
        pooled = (c.n * (c.mean - mean) ** 2 + t.n * (t.mean - mean) ** 2) / (n - 1)
    return (DEFAULT_EFFECT_SCALE**2) * pooled


def compare(
    control: ArmStats,
    treatment: ArmStats,
    *,
    alpha: float,
    min_samples: int,
    tau2: float | None = None,
    control_version: str = "control",
    treatment_version: str = "treatment",
) -> ABResult:
    """Compare the arms' outcomes with the mSPRT (see the module's docstring)."""
    if not 0.0 < alpha < 0.5:
        raise InvalidInputError(f"A/B test: alpha must be between 0 and 0.5 (got {alpha})")
    if min_samples < 2:
        raise InvalidInputError(f"A/B test: min_samples must be at least 2 (got {min_samples})")
    if tau2 is not None and not (tau2 > 0.0 and math.isfinite(tau2)):
        raise InvalidInputError(f"A/B test: tau2 must be a positive number (got {tau2})")
    c, t = _moments(control), _moments(treatment)
    scale = tau2 if tau2 is not None else _default_tau2(c, t)
    arms = (_arm(control_version, c, scale, alpha), _arm(treatment_version, t, scale, alpha))
    short = [(version, m.n) for version, m in ((control_version, c), (treatment_version, t))]
    short = [(version, n) for version, n in short if n < min_samples]
    if short:
        parts = [f"{n} of {min_samples} outcomes for version {v}" for v, n in reversed(short)]
        return ABResult(
            *arms, None, None, None, None, False, False, "not enough data yet: " + ", ".join(parts)
        )
    d = t.mean - c.mean
    v = c.var / c.n + t.var / t.n
    if not scale:  # every outcome so far is the same value: nothing differs
        return ABResult(*arms, d, d, d, 1.0, False, True, "no significant difference yet")
    if v <= 0.0:  # each arm constant but different: overwhelming evidence, an interval of width 0
        p_value, low, high = 0.0, d, d
    else:
        p_value = math.exp(-max(0.0, log_lambda(d, v, scale)))
        h = half_width(v, scale, alpha)
        low, high = d - h, d + h
    significant = p_value <= alpha
    message = _message(
        d,
        low,
        high,
        significant,
        alpha,
        _is_binary(control, treatment),
        control_version,
        treatment_version,
    )
    return ABResult(*arms, d, low, high, p_value, significant, True, message)


def _arm(version: str, m: _Moments, scale: float | None, alpha: float) -> ArmResult:
    mean = None if m.n == 0 else m.mean
    if m.n < 2:
        return ArmResult(version, m.n, mean, None, None)
    v = m.var / m.n
    if not scale or v <= 0.0:
        return ArmResult(version, m.n, mean, m.mean, m.mean)
    h = half_width(v, scale, alpha)
    return ArmResult(version, m.n, mean, m.mean - h, m.mean + h)


def _is_binary(*arms: ArmStats) -> bool:
    """Conversions: every outcome 0 or 1 (then sum == sum of squares and the mean is in [0, 1])."""
    return all(a.outcome_sum == a.outcome_sumsq and 0 <= a.outcome_sum <= a.outcome_n for a in arms)


def _message(
    d: float,
    low: float,
    high: float,
    significant: bool,
    alpha: float,
    binary: bool,
    control_version: str,
    treatment_version: str,
) -> str:
    if not significant:
        return "no significant difference yet"

    def fmt(x: float) -> str:
        return f"{100 * x:+.1f}" if binary else f"{x:+.4g}"

    unit = " points" if binary else ""
    ci = f"({100 * (1 - alpha):g}% CI {fmt(low)} to {fmt(high)})"
    if d > 0:
        return f"version {treatment_version} is better: {fmt(d)}{unit} {ci}"
    return (
        f"version {control_version} is better: version {treatment_version} is {fmt(d)}{unit} {ci}"
    )
