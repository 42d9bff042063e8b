"""The drift a rollout's ``max_drift`` gate compares: the candidate's inputs since its step
began, against its training profile, from the prediction log.

The score is the largest population stability index (PSI) over the profile's features: one
number on a scale operators know (about 0.1: a moderate shift, 0.25: a large one). It is None,
and the gate then holds as *insufficient data*, while the log has no part of the candidate for
the step yet (parts are written every ``log_flush_seconds``) or the version has no profile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from seaway.errors import MonitoringError, SeawayError
from seaway.monitoring.window import Reference, assess, load_reference
from seaway.registry import Registry

log = logging.getLogger("seaway.serving.deployments")

#: (model, version, since) -> the drift score, or None when it cannot be measured yet
DriftSource = Callable[[str, str, datetime], float | None]


def log_drift(registry: Registry, root: str) -> DriftSource:
    """Drift from the prediction log under ``root`` (blocking: called in a worker thread)."""
    references: dict[tuple[str, str], Reference] = {}

    def measure(model: str, version: str, since: datetime) -> float | None:
        try:
            reference = references.get((model, version))
            if reference is None:
                record = registry.get_version(model, int(version))
                reference = references[(model, version)] = load_reference(registry, record)
            window = assess(
                reference, since=since, until=datetime.now(UTC), root=root, predictions=False
            )
        except MonitoringError:  # no profile, or nothing logged since the step began
            return None
        except SeawayError as exc:
            log.warning("cannot measure the drift of %s version %s: %s", model, version, exc)
            return None
        scores = [
            psi for row in window.result.features if (psi := row.statistics.get("psi")) is not None
        ]
        return max(scores) if scores else None

    return measure
