"""A prediction log with broken files (a part cut short, an empty one, a summary that is not JSON):
readers leave each broken file out and name it once, instead of failing every monitoring command
(``seaway monitor log``, ``performance``, ``export``, ``drift``, ``report``) and every alert signal
of the model until someone deletes it by hand."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seaway.monitoring import logstore
from seaway.monitoring.predlog import LogConfig, PredictionLog
from seaway.packaging.profile import build_profile

START = datetime(2026, 1, 1, tzinfo=UTC)


def write_parts(root: Path, count: int) -> list[Path]:
    """``count`` parts of 4 rows each, a minute apart, each with its window summary."""
    rng = np.random.default_rng(0)
    profile = build_profile(pd.DataFrame({"a": rng.normal(size=300)}))
    clock = [START.timestamp()]
    log = PredictionLog(
        LogConfig(str(root), retention=None), source="batch", start=False, clock=lambda: clock[0]
    )
    handle = log.model("m", "1", sample=1.0, profile=lambda: profile)
    assert handle is not None
    for n in range(count):
        clock[0] = START.timestamp() + 60 * n
        inputs = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
        handle.record(inputs, {"predict": np.zeros(4)}, 4, 0.0, f"r{n}")
        log.poll(force=True)
    log.close()
    found = sorted(root.rglob("part-*.parquet"))
    assert len(found) == count
    return found


def test_a_truncated_or_empty_part_is_left_out_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _good, cut, empty = write_parts(tmp_path, 3)
    cut.write_bytes(cut.read_bytes()[:200])  # a copy cut short
    empty.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="seaway.monitoring.logstore"):
        frame = logstore.read_log("m", root=str(tmp_path))
        assert frame["request_id"].tolist() == ["r0"] * 4  # the good part's rows
        logstore.read_log("m", root=str(tmp_path))  # said once per file, not per read
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2
    assert any(cut.name in line for line in said) and any(empty.name in line for line in said)


def test_a_corrupt_window_summary_is_left_out_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _first, second = write_parts(tmp_path, 2)
    broken = second.parent / logstore.summary_name(second.name)
    broken.write_text(broken.read_text()[:50])
    with caplog.at_level(logging.WARNING, logger="seaway.monitoring.logstore"):
        merged = logstore.merged_summary("m", root=str(tmp_path))
    assert merged is not None and merged.n_rows == 4  # the first part's summary
    assert [broken.name in r.getMessage() for r in caplog.records] == [True]


def test_a_truncated_feedback_part_is_left_out_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from seaway.monitoring.feedback import FeedbackItem, read_feedback, record_feedback

    root = str(tmp_path / "feedback")
    record_feedback("m", [FeedbackItem("r0", "yes")], root=root, now=START)
    record_feedback("m", [FeedbackItem("r1", "no")], root=root, now=START.replace(minute=1))
    cut = sorted((tmp_path / "feedback").rglob("part-*.parquet"))[1]
    cut.write_bytes(cut.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="seaway.monitoring.logstore"):
        labels = read_feedback("m", root=root)
    assert labels["request_id"].tolist() == ["r0"]
    assert [cut.name in r.getMessage() for r in caplog.records] == [True]
