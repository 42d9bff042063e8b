"""``seaway monitor performance``'s table says why the estimate is missing even when the realised
figure is missing too: a batch-logged classifier without probabilities read "no labelled rows" in
both columns, as if labels were all the estimate lacked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from seaway.cli.monitor.performance import _print
from seaway.monitoring.metrics import Metric
from seaway.monitoring.performance import WindowPerformance

NO_PROBA = "no predicted probabilities were logged (see docs/monitoring.md)"


def test_the_estimate_s_own_reason_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    result = WindowPerformance(
        "m", "1", moment, moment, "classifier", rows=20, labelled=0,
        realised={n: Metric(n, None, "no labelled rows") for n in ("accuracy", "f1")},
        estimated={n: Metric(n, None, NO_PROBA) for n in ("accuracy", "f1")},
    )  # fmt: skip
    _print(result, guessed=False)
    out = capsys.readouterr().out
    assert f"estimated: {NO_PROBA}" in out
    assert out.count("no labelled rows") == 2  # the realised column's reason, per row
