"""Compaction as the log's writer runs it between flushes, and as ``seaway monitor compact``."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _compactlog import START, Clock, parts, write_minutes
from typer.testing import CliRunner

from seaway.cli.main import app, main
from seaway.monitoring import logstore
from seaway.monitoring.predlog import LogConfig, PredictionLog


def writer(root: Path, clock: Clock, **config: float) -> PredictionLog:
    settings = {"retention": None, "flush_rows": 100, "compact_seconds": 300.0, **config}
    return PredictionLog(
        LogConfig(str(root), **settings),  # type: ignore[arg-type]
        clock=clock,
        rng=random.Random(0),
        start=False,
    )


def test_the_writer_merges_closed_hours_between_flushes_a_bounded_number_a_round(
    tmp_path: Path,
) -> None:
    clock = Clock()
    log = writer(tmp_path, clock, compact_hours=1)
    handle = log.model("fraud", "1", sample=1.0)
    assert handle is not None
    for minute in range(190):  # a part a minute, 09:00 to 12:09
        clock.at(START + timedelta(minutes=minute))
        handle.record(np.ones((2, 3)), {"predict": np.zeros(2)}, 2, 0.001, f"r{minute}")
        log.poll(force=True)  # a forced flush (a stop) never compacts
    assert len(parts(str(tmp_path))) == 190
    rows = logstore.read_log("fraud", root=str(tmp_path))

    log.poll()  # over 600 s since the log began (its first round): one hour merged, the oldest
    assert len(parts(str(tmp_path))) == 131
    log.poll()  # not again before another 300 s
    assert len(parts(str(tmp_path))) == 131
    clock.at(START + timedelta(hours=3, minutes=15))
    log.poll()
    assert len(parts(str(tmp_path))) == 72
    pd.testing.assert_frame_equal(logstore.read_log("fraud", root=str(tmp_path)), rows)


def test_the_writer_stops_merging_when_a_flush_is_due(tmp_path: Path) -> None:
    clock = Clock()
    log = writer(tmp_path, clock)
    handle = log.model("fraud", "1", sample=1.0)
    assert handle is not None
    for minute in range(70):
        clock.at(START + timedelta(minutes=minute))
        handle.record(np.ones((1, 3)), {"predict": np.zeros(1)}, 1, 0.001, f"r{minute}")
        log.poll(force=True)
    clock.at(START + timedelta(hours=1, minutes=10))
    handle.record(np.ones((100, 3)), {"predict": np.zeros(100)}, 100, 0.001, "big")
    report = log.compact()
    assert report is not None and report.stopped and report.hours == 0
    log.poll()  # the flush first, then the merge
    assert len(parts(str(tmp_path))) == 10 + 1 + 1


def test_the_command_merges_a_log_earlier_servers_wrote(tmp_path: Path) -> None:
    store = str(tmp_path / "log")
    write_minutes(store, 130)
    write_minutes(store, 30, model="churn")
    rows = logstore.read_log("fraud", root=store)
    result = CliRunner().invoke(app, ["monitor", "compact", "fraud", "--store", store])
    assert result.exit_code == 0, result.output
    assert "Compacted 'fraud'" in result.output
    assert "130 parts of 3 closed hours merged into 3 parts" in result.output
    assert len(parts(store, "fraud")) == 3 + 30  # churn's are not fraud's
    pd.testing.assert_frame_equal(logstore.read_log("fraud", root=store), rows)

    result = CliRunner().invoke(app, ["monitor", "compact", "--store", store, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["model"], data["hours"], data["parts"], data["left"]) == (None, 1, 30, {})

    result = CliRunner().invoke(app, ["monitor", "compact", "--store", store])
    assert result.exit_code == 0, result.output
    assert "Nothing to compact for every model" in result.output


def test_the_command_names_a_model_or_version_the_log_does_not_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "log")
    write_minutes(store, 3)
    assert main(["monitor", "compact", "frad", "--store", store]) == 1
    err = capsys.readouterr().err
    assert "Error: the prediction log in" in err and "holds nothing of model 'frad'" in err
    assert main(["monitor", "compact", "fraud", "--version", "9", "--store", store]) == 1
    err = capsys.readouterr().err
    assert "model 'fraud' version 9" in err and "versions logged: 1" in err
    assert "Traceback" not in err
