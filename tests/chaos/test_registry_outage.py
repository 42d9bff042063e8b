"""Chaos: the registry's SQLite file is moved away under a loaded server, then put back.
Serving goes on with no failure; the server logs one warning (naming the registry and why, no
traceback) however many polls fail, and one line when the registry is back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from _fraud import TwoVersions
from _traffic import Outcome, Traffic, figures, running, wait_for_log

UNREACHABLE = "is unreachable"
BACK = "is reachable again"
STEP = 30  # answers to see in each phase


def test_serving_goes_on_while_the_registry_is_away(
    seaway_home: Path, tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]
) -> None:
    fraud = TwoVersions(*tabular)
    database = seaway_home / "registry.db"
    aside = tmp_path / "registry-aside.db"
    assert database.exists()
    args = ["models:/fraud@production", "--poll-interval", "0.1"]
    with running(args, seaway_home, tmp_path / "server.log") as server:
        url = f"{server.url}/v2/models/fraud/infer"
        with Traffic(url, fraud.body, fraud.check) as traffic:

            def more(count: int) -> None:
                goal = len(traffic.outcomes) + count
                traffic.wait_for(lambda seen: len(seen) >= goal, f"{count} more answers")

            more(STEP)
            database.rename(aside)
            wait_for_log(server, UNREACHABLE)
            noticed = traffic.outcomes[-1].done
            # keep the load on for ten poll intervals or more: every poll fails, still one warning
            traffic.wait_for(lambda seen: seen[-1].done - noticed >= 1.0, "ten polls")
            more(STEP)
            aside.rename(database)
            wait_for_log(server, BACK)
            more(STEP)
        print(figures(traffic, "registry outage"))
    log = server.output()
    outcomes: list[Outcome] = traffic.outcomes
    assert not [o for o in outcomes if o.status != 200 or not o.correct], outcomes[:5]
    warnings = [line for line in log.splitlines() if UNREACHABLE in line]
    assert len(warnings) == 1, warnings
    assert " WARNING " in warnings[0] and str(database) in warnings[0], warnings[0]
    assert "missing" in warnings[0]
    assert log.count(BACK) == 1
    assert "Traceback" not in log, log[-3000:]
