"""Rollout analysis gates: compare the candidate with the stable version over one step's window.

Each gate the spec sets gives one `GateResult` recording the value compared and the threshold, so
the decision log can say exactly why a step advanced, held or rolled back. The gates are honest on
low traffic: below ``gates.min_samples`` requests on either arm every gate is ``insufficient``
(which holds a rollout; it neither promotes nor reverts), and so is a gate whose data is missing
(no latencies, no predictions to compare, no labels, no drift score).

The thresholds are plain limits on observed values, not statistical tests: a noisy excess fails
the gate, which rolls back (the safe side); ``min_samples`` is what keeps the noise small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seaway.routing.spec import Gates
from seaway.routing.stats import ArmStats, divergence
from seaway.types import GateVerdict

#: the order gates are evaluated and reported in (the spec's field names)
GATE_NAMES = (
    "max_error_rate_increase",
    "max_p99_ratio",
    "max_p99_ms",
    "max_divergence",
    "max_drift",
    "max_accuracy_drop",
)


@dataclass(frozen=True)
class GateResult:
    """One gate: its spec field name, verdict, the value compared and the limit."""

    name: str
    verdict: GateVerdict
    value: float | None
    threshold: float | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> GateResult:
        return cls(
            name=str(doc["name"]),
            verdict=GateVerdict(doc["verdict"]),
            value=None if doc.get("value") is None else float(doc["value"]),
            threshold=None if doc.get("threshold") is None else float(doc["threshold"]),
            message=str(doc.get("message", "")),
        )


def evaluate(
    gates: Gates, stable: ArmStats, candidate: ArmStats, *, drift: float | None = None
) -> list[GateResult]:
    """One result per gate that ``gates`` sets, in `GATE_NAMES` order."""
    limits = {name: getattr(gates, name) for name in GATE_NAMES}
    limits = {name: float(limit) for name, limit in limits.items() if limit is not None}
    if not limits:
        return []
    short = _short_of_samples(gates.min_samples, stable, candidate)
    if short is not None:
        return [GateResult(n, GateVerdict.INSUFFICIENT, None, t, short) for n, t in limits.items()]
    checks = {
        "max_error_rate_increase": _error_rate,
        "max_p99_ratio": _p99_ratio,
        "max_p99_ms": _p99_ms,
        "max_divergence": _divergence,
        "max_accuracy_drop": _accuracy,
    }
    results = []
    for name, limit in limits.items():
        if name == "max_drift":
            results.append(_drift(drift, limit))
        else:
            results.append(checks[name](name, limit, stable, candidate, gates.min_samples))
    return results


def _short_of_samples(min_samples: int, stable: ArmStats, candidate: ArmStats) -> str | None:
    missing = [
        f"{arm.requests} of {min_samples} requests on the {label}"
        for label, arm in (("candidate", candidate), ("stable version", stable))
        if arm.requests < min_samples
    ]
    if not missing:
        return None
    return "insufficient data: " + ", ".join(missing) + " (gates.min_samples)"


def _insufficient(name: str, limit: float, why: str) -> GateResult:
    return GateResult(name, GateVerdict.INSUFFICIENT, None, limit, f"insufficient data: {why}")


def _verdict(name: str, value: float, limit: float, passed: str, failed: str) -> GateResult:
    if value <= limit:
        return GateResult(name, GateVerdict.PASS, value, limit, passed)
    return GateResult(name, GateVerdict.FAIL, value, limit, failed)


def _error_rate(
    name: str, limit: float, stable: ArmStats, candidate: ArmStats, _: int
) -> GateResult:
    s, c = stable.error_rate, candidate.error_rate
    if s is None or c is None:
        return _insufficient(name, limit, "no requests to compare")
    increase = c - s
    what = (
        f"candidate error rate {c:.2%} against stable {s:.2%} "
        f"({candidate.errors} of {candidate.requests} against {stable.errors} of {stable.requests})"
    )
    return _verdict(
        name,
        increase,
        limit,
        f"{what}: within the allowed increase of {limit:.2%}",
        f"{what}: an increase of {increase:.2%}, over the allowed {limit:.2%}",
    )


def _p99_ratio(
    name: str, limit: float, stable: ArmStats, candidate: ArmStats, _: int
) -> GateResult:
    s, c = stable.quantile_ms(0.99), candidate.quantile_ms(0.99)
    if s is None or c is None or s <= 0.0:
        return _insufficient(name, limit, "no latencies to compare")
    ratio = c / s
    what = f"candidate p99 {c:.3g} ms against stable {s:.3g} ms ({ratio:.2f}x)"
    return _verdict(
        name,
        ratio,
        limit,
        f"{what}: within {limit:g}x",
        f"{what}: over the allowed {limit:g}x",
    )


def _p99_ms(name: str, limit: float, _: ArmStats, candidate: ArmStats, __: int) -> GateResult:
    c = candidate.quantile_ms(0.99)
    if c is None:
        return _insufficient(name, limit, "no candidate latencies")
    return _verdict(
        name,
        c,
        limit,
        f"candidate p99 {c:.3g} ms: within the budget of {limit:g} ms",
        f"candidate p99 {c:.3g} ms: over the budget of {limit:g} ms",
    )


def _divergence(
    name: str, limit: float, stable: ArmStats, candidate: ArmStats, _: int
) -> GateResult:
    value = divergence(stable, candidate)
    if value is None:
        return _insufficient(name, limit, "no predictions of both versions to compare")
    return _verdict(
        name,
        value,
        limit,
        f"prediction divergence {value:.3g}: within {limit:g}",
        f"prediction divergence {value:.3g}: over the allowed {limit:g}",
    )


def _drift(drift: float | None, limit: float) -> GateResult:
    if drift is None:
        return _insufficient(
            "max_drift",
            limit,
            "drift needs the prediction log (turn logging on for the candidate version, "
            "with a reference profile)",
        )
    return _verdict(
        "max_drift",
        drift,
        limit,
        f"candidate input drift {drift:.3g}: within {limit:g}",
        f"candidate input drift {drift:.3g}: over the allowed {limit:g}",
    )


def _accuracy(
    name: str, limit: float, stable: ArmStats, candidate: ArmStats, min_samples: int
) -> GateResult:
    if not candidate.labelled and candidate.residual_n:
        return _insufficient(
            name,
            limit,
            "the model predicts numbers, which have no accuracy; remove max_accuracy_drop "
            "(its feedback gives errors, see `seaway deploy results`)",
        )
    short = [
        f"{arm.labelled} of {min_samples} labelled predictions on the {label}"
        for label, arm in (("candidate", candidate), ("stable version", stable))
        if arm.labelled < min_samples
    ]
    if short:
        return _insufficient(name, limit, "accuracy needs labels (feedback): " + ", ".join(short))
    s, c = stable.correct / stable.labelled, candidate.correct / candidate.labelled
    drop = s - c
    what = f"candidate accuracy {c:.2%} against stable {s:.2%}"
    return _verdict(
        name,
        drop,
        limit,
        f"{what}: within the allowed drop of {limit:.2%}",
        f"{what}: a drop of {drop:.2%}, over the allowed {limit:.2%}",
    )
