"""``read_log(columns=...)``: only the columns asked are read (prefixes too), the window still
applies when ``time`` is not among them, and parts without a column are aligned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from seaway.monitoring import logstore
from seaway.monitoring.predlog import LogConfig, PredictionLog

START = datetime(2026, 1, 1, tzinfo=UTC)


def write(root: Path) -> None:
    """Two parts an hour apart, 3 rows each; the second has one more output column."""
    clock = [START.timestamp()]
    log = PredictionLog(
        LogConfig(str(root), retention=None), source="batch", start=False, clock=lambda: clock[0]
    )
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None
    for hour, outputs in ((0, {"predict": np.array([0, 1, 0])}),
                          (1, {"predict": np.array([1, 1, 0]), "score": np.array([.1, .2, .3])})):  # fmt: skip
        when = START + timedelta(hours=hour)
        clock[0] = when.timestamp()
        inputs = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "z"]})
        handle.write_rows(inputs, outputs, request_ids=["r"] * 3, rows=[0, 1, 2], when=when)


def test_only_the_columns_asked_prefixes_included(tmp_path: Path) -> None:
    write(tmp_path)
    frame = logstore.read_log("m", root=str(tmp_path), columns=["row", "output.*"])
    assert list(frame.columns) == ["model", "version", "row", "output.predict", "output.score"]
    assert frame["output.predict"].tolist() == [0, 1, 0, 1, 1, 0]
    assert frame["output.score"].isna().tolist() == [True] * 3 + [False] * 3


def test_the_window_applies_without_reading_time(tmp_path: Path) -> None:
    write(tmp_path)
    since = START + timedelta(minutes=30)
    frame = logstore.read_log("m", root=str(tmp_path), since=since, columns=["input.a"])
    assert list(frame.columns) == ["model", "version", "input.a"]
    assert len(frame) == 3
    until = logstore.read_log("m", root=str(tmp_path), until=since, columns=["time", "input.b"])
    assert until["input.b"].tolist() == ["x", "y", "z"]
    assert (until["time"] < since).all()


def test_all_columns_by_default(tmp_path: Path) -> None:
    write(tmp_path)
    frame = logstore.read_log("m", root=str(tmp_path))
    assert {"request_id", "row", "time", "input.a", "input.b", "output.predict"} <= set(
        frame.columns
    )
    assert len(frame) == 6
