"""The prediction log's writer: sampling, the bounded buffer, flushing, commits, retention, errors.

No thread runs here (``start=False``): the tests call ``poll`` themselves and move an injected
clock, so nothing depends on timing.
"""

from __future__ import annotations

import logging
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from seaway.monitoring import logstore
from seaway.monitoring.predlog import LogConfig, ModelLog, PredictionLog
from seaway.packaging.profile import build_profile

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def make_log(root: Path | str, clock: Clock | None = None, **config: Any) -> PredictionLog:
    settings = {"flush_rows": 1000, "flush_seconds": 60.0, **config}
    return PredictionLog(
        LogConfig(str(root), **settings), clock=clock or Clock(), rng=random.Random(0), start=False
    )


def send(handle: ModelLog, n: int = 1, rows: int = 1, rid: str = "r") -> None:
    for i in range(n):
        inputs = np.arange(rows * 3, dtype=np.float64).reshape(rows, 3) + i
        handle.record(inputs, {"predict": np.zeros(rows)}, rows, 0.002, f"{rid}{i}")


def parts(root: Path) -> list[Path]:
    return sorted(root.rglob("part-*.parquet"))


def test_a_request_becomes_one_row_per_input_row_with_the_contract_columns(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    handle = log.model("fraud", "3", sample=1.0, classes=["no", "yes"])
    assert handle is not None
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])
    frame = pd.DataFrame({"amount": [1.5, 2.5], "country": ["fr", "de"]})
    handle.record(
        frame, {"predict": np.array(["no", "yes"]), "predict_proba": proba}, 2, 0.004, "abc"
    )
    assert log.poll(force=True) == 2

    read = logstore.read_log("fraud", root=str(tmp_path))
    assert list(read["request_id"]) == ["abc", "abc"]
    assert list(read["row"]) == [0, 1]
    assert list(read["version"]) == ["3"] * 2
    assert list(read["input.amount"]) == [1.5, 2.5]
    assert list(read["input.country"]) == ["fr", "de"]
    assert list(read["output.predict"]) == ["no", "yes"]
    assert list(read["output.predict_proba.yes"]) == [0.1, 0.8]
    assert read["latency_ms"].tolist() == pytest.approx([4.0, 4.0])
    assert set(read["source"]) == {"serve"}
    assert read["job_id"].isna().all() and read["key"].isna().all()
    assert read["time"].iloc[0] == pd.Timestamp(T0, unit="s", tz="UTC")
    (part,) = parts(tmp_path)
    assert part.parent.name == "date=2025-03-10"
    assert part.parent.parent.name == "version=3"


def test_arrays_are_named_as_the_reference_profile_names_them(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None
    data = np.arange(6.0).reshape(2, 3)
    handle.record(data, {"predict": np.zeros(2), "scores": np.ones((2, 2))}, 2, 0.0, "x")
    log.poll(force=True)
    read = logstore.read_log("m", root=str(tmp_path))
    inputs = [c for c in read.columns if c.startswith("input.")]
    assert inputs == [f"input.{name}" for name in build_profile(data).features]
    assert {"output.scores.0", "output.scores.1"} <= set(read.columns)  # no classes: indices


def test_excluded_inputs_are_never_written(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    handle = log.model("m", "1", sample=1.0, exclude=["email", "ssn"])
    assert handle is not None
    inputs = {
        "amount": np.array([1.0]),
        "email": np.array(["a@b.c"], dtype=object),
        "ssn": np.array(["123"], dtype=object),
    }
    handle.record(inputs, {"predict": np.zeros(1)}, 1, 0.0, "x")
    log.poll(force=True)
    (part,) = parts(tmp_path)
    assert b"a@b.c" not in part.read_bytes()
    columns = logstore.read_log("m", root=str(tmp_path)).columns
    assert "input.amount" in columns
    assert "input.email" not in columns and "input.ssn" not in columns


def test_parts_are_written_when_flush_rows_wait(tmp_path: Path) -> None:
    log = make_log(tmp_path, flush_rows=5)
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None
    send(handle, 2, rows=2)
    assert log.poll() == 0 and not parts(tmp_path)  # 4 rows wait: not yet
    assert not log.wake.is_set()
    send(handle, 1, rows=2, rid="s")
    assert log.wake.is_set()  # the writer thread is woken as the threshold is crossed
    assert log.poll() == 6
    assert len(parts(tmp_path)) == 1
    assert log.buffered_rows == 0


def test_parts_are_written_when_the_oldest_row_has_waited_flush_seconds(tmp_path: Path) -> None:
    clock = Clock()
    log = make_log(tmp_path, clock, flush_seconds=30)
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None
    send(handle, 1)
    clock.now += 20
    send(handle, 1, rid="s")
    assert log.poll() == 0
    clock.now += 9.9  # the oldest has waited 29.9 s
    assert log.poll() == 0
    clock.now += 0.1
    assert log.poll() == 2
    assert len(parts(tmp_path)) == 1
    clock.now += 1000
    assert log.poll() == 0  # nothing waits: no empty part
    assert len(parts(tmp_path)) == 1


def test_a_full_buffer_drops_requests_and_counts_exactly_what_it_dropped(tmp_path: Path) -> None:
    log = make_log(tmp_path, buffer_rows=5, flush_rows=100)
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None
    send(handle, 8)  # 5 fit
    handle.record(np.zeros((6, 3)), {"predict": np.zeros(6)}, 6, 0.0, "big")  # never fits
    assert (handle.accepted, handle.dropped) == (5, 4)
    assert log.poll(force=True) == 5
    send(handle, 2, rid="later")  # room again
    assert (handle.accepted, handle.dropped) == (7, 4)
    log.close()
    read = logstore.read_log("m", root=str(tmp_path))
    assert len(read) == handle.rows == 7
    assert handle.requests == handle.accepted == 7
    assert log.stats()["dropped"] == 4


def test_requests_recorded_after_close_count_as_dropped(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None
    send(handle, 3)
    log.close()
    send(handle, 2, rid="late")
    assert (handle.rows, handle.dropped) == (3, 2)


def test_close_writes_everything_buffered_from_the_writer_thread(tmp_path: Path) -> None:
    log = PredictionLog(LogConfig(str(tmp_path), flush_rows=10**6, flush_seconds=3600))
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None and log._thread is not None and log._thread.is_alive()
    send(handle, 50)
    log.close()
    assert not log._thread.is_alive()
    assert len(logstore.read_log("m", root=str(tmp_path))) == 50 == handle.rows


def test_sampling_keeps_the_requests_the_injected_random_picks(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    handle = log.model("m", "1", sample=0.3)
    assert handle is not None
    send(handle, 200)
    draws = random.Random(0)
    expected = sum(draws.random() < 0.3 for _ in range(200))
    assert handle.accepted == expected
    assert 30 < expected < 90
    assert log.model("other", "1", sample=0.0) is None  # rate 0: not logged at all
    with pytest.raises(ValueError, match="between 0 and 1"):
        log.model("bad", "1", sample=1.5)


def test_a_reader_never_sees_a_part_being_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, list[str]]] = []
    real_replace = Path.replace

    def watching_replace(self: Path, target: Any) -> Any:
        # the part is complete on disk under a hidden name; readers see nothing yet
        visible = ds.dataset(str(tmp_path), format="parquet", partitioning="hive").count_rows()
        hidden = [p.name for p in Path(self).parent.iterdir() if p.name.startswith(".")]
        seen.append((visible, hidden))
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", watching_replace)
    log = make_log(tmp_path)
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None
    send(handle, 4)
    log.poll(force=True)
    assert seen[0][0] == 0 and len(seen[0][1]) == 1
    assert ds.dataset(str(tmp_path), format="parquet", partitioning="hive").count_rows() == 4


def test_a_write_that_fails_midway_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_replace(self: Path, target: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", failing_replace)
    log = make_log(tmp_path)
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None
    send(handle, 3)
    assert log.poll(force=True) == 0
    assert (handle.write_errors, handle.failed_rows, handle.rows) == (1, 3, 0)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and "part" in p.name]


def test_write_errors_are_counted_said_once_and_survived(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "store"
    blocker.write_text("a file where the log's folder should be")
    log = make_log(blocker)
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None
    with caplog.at_level(logging.INFO, logger="seaway.monitoring.predlog"):
        for _ in range(3):
            send(handle, 2)
            assert log.poll(force=True) == 0
        assert (handle.write_errors, handle.failed_rows) == (3, 6)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "cannot write" in warnings[0].getMessage() and warnings[0].exc_info is None
        blocker.unlink()  # the store comes back
        send(handle, 2)
        assert log.poll(force=True) == 2
        assert any("again" in r.getMessage() for r in caplog.records)
    assert handle.rows == 2


def test_retention_deletes_what_is_older_with_an_injected_clock(tmp_path: Path) -> None:
    clock = Clock()
    log = make_log(tmp_path, clock, retention=timedelta(days=2), sweep_seconds=3600)
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None
    send(handle, 1, rid="day0-")
    log.poll(force=True)  # the first sweep runs too, deleting nothing
    clock.now += 86400 + 3600  # day 1, 13:00
    send(handle, 1, rid="day1-early-")
    log.poll(force=True)
    clock.now += 6 * 3600  # day 1, 19:00
    send(handle, 1, rid="day1-late-")
    log.poll(force=True)
    assert len(parts(tmp_path)) == 3
    clock.now += 86400 - 3 * 3600  # day 2, 16:00: the cutoff is day 0, 16:00
    log.poll()
    assert len(parts(tmp_path)) == 2  # day 0's part (12:00) went; its folder stays that day
    clock.now += 86400 + 2 * 3600  # day 3, 18:00: the cutoff is day 1, 18:00
    log.poll()
    kept = logstore.read_log("m", root=str(tmp_path))
    assert list(kept["request_id"]) == ["day1-late-0"]
    assert not (tmp_path / "model=m" / "version=1" / "date=2025-03-10").exists()


def test_rows_of_two_days_go_to_two_date_partitions(tmp_path: Path) -> None:
    clock = Clock(datetime(2025, 3, 10, 23, 59, 59, tzinfo=UTC).timestamp())
    log = make_log(tmp_path, clock)
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None
    send(handle, 1)
    clock.now += 2
    send(handle, 1, rid="s")
    log.poll(force=True)
    assert [p.parent.name for p in parts(tmp_path)] == ["date=2025-03-10", "date=2025-03-11"]
    day = datetime(2025, 3, 11, tzinfo=UTC)
    assert list(logstore.read_log("m", since=day, root=str(tmp_path))["request_id"]) == ["s0"]
    assert list(logstore.read_log("m", until=day, root=str(tmp_path))["request_id"]) == ["r0"]


def test_a_model_with_a_profile_gets_a_window_summary_beside_each_part(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"a": rng.normal(size=500), "c": rng.choice(["x", "y"], 500)})
    profile = build_profile(reference)
    log = make_log(tmp_path)
    handle = log.model("m", "1", sample=1.0, profile=lambda: profile)
    plain = log.model("plain", "1", sample=1.0)
    assert handle is not None and plain is not None
    for h in (handle, plain):
        h.record(reference.head(40), {"predict": np.zeros(40)}, 40, 0.0, "x")
    log.poll(force=True)
    (part,) = parts(tmp_path / "model=m")
    summary = part.parent / logstore.summary_name(part.name)
    assert summary.exists()
    merged = logstore.merged_summary("m", root=str(tmp_path))
    assert merged is not None and merged.n_rows == 40
    assert set(merged.features) == {"a", "c"}
    assert logstore.merged_summary("plain", root=str(tmp_path)) is None
    # readers of rows skip the summaries (underscore) and the writer's counters
    assert ds.dataset(str(tmp_path / "model=m"), format="parquet").count_rows() == 40


def test_the_memory_filesystem_works_like_a_folder() -> None:
    root = f"memory://predlog-{uuid.uuid4().hex}"
    log = make_log(root, flush_rows=3)
    handle = log.model("fraud model", "1", sample=1.0)  # quoted in the path
    assert handle is not None
    send(handle, 4)
    assert log.poll() == 4
    log.close()
    read = logstore.read_log("fraud model", root=root)
    assert len(read) == 4 and set(read["model"]) == {"fraud model"}
    assert logstore.versions("fraud model", root=root) == ["1"]
    assert logstore.writer_stats("fraud model", root=root)["rows"] == 4


def test_third_party_readers_see_the_hive_partitions(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    for name in ("a/b c", "plain"):
        handle = log.model(name, "2", sample=1.0)
        assert handle is not None
        send(handle, 2)
    log.close()
    table = ds.dataset(str(tmp_path), format="parquet", partitioning="hive").to_table()
    assert table.num_rows == 4
    assert set(table.column("model").to_pylist()) == {"a/b c", "plain"}


def test_parts_with_different_features_are_read_together(tmp_path: Path) -> None:
    clock = Clock()
    log = make_log(tmp_path, clock)
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None
    handle.record({"a": np.array([1.0])}, {"predict": np.zeros(1)}, 1, 0.0, "one")
    log.poll(force=True)
    clock.now += 1
    handle.record(
        {"a": np.array([2]), "b": np.array(["x"], dtype=object)},
        {"predict": np.zeros(1)},
        1,
        0.0,
        "two",
    )
    log.poll(force=True)
    read = logstore.read_log("m", root=str(tmp_path))
    assert list(read["request_id"]) == ["one", "two"]
    assert read["input.a"].tolist() == [1.0, 2.0]
    assert pd.isna(read["input.b"].iloc[0]) and read["input.b"].iloc[1] == "x"


def test_the_writer_counters_are_left_beside_the_parts(tmp_path: Path) -> None:
    log = make_log(tmp_path, buffer_rows=2)
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None
    send(handle, 3)
    log.close()
    stats = logstore.writer_stats("m", root=str(tmp_path))
    assert (stats["writers"], stats["rows"], stats["dropped"]) == (1, 2, 1)
    assert log.stats()["models"][0]["dropped"] == 1


def test_without_pyarrow_a_model_is_served_unlogged_and_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("seaway.monitoring.predlog.arrow_available", lambda: False)
    log = make_log(tmp_path)
    with caplog.at_level(logging.ERROR, logger="seaway.monitoring.predlog"):
        assert log.model("a", "1", sample=1.0) is None
        assert log.model("b", "1", sample=0.5) is None
    (said,) = caplog.records
    assert "pip install 'seaway[monitor]'" in said.getMessage()


def test_a_failing_summary_costs_the_summary_not_the_part(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> Any:
        return build_profile(pd.DataFrame({"other": [1.0, 2.0]}))  # no feature in common

    log = make_log(tmp_path)
    handle = log.model("m", "1", sample=1.0, profile=broken)
    assert handle is not None
    with caplog.at_level(logging.WARNING, logger="seaway.monitoring.predlog"):
        for _ in range(2):
            send(handle, 2)
            assert log.poll(force=True) == 2
    assert (handle.rows, handle.write_errors) == (4, 0)
    assert len(parts(tmp_path)) == 2 and not list(tmp_path.rglob("_summary-*"))
    assert len([r for r in caplog.records if "no window summary" in r.getMessage()]) == 1


def test_requests_asking_for_other_outputs_are_written_apart_and_read_together(
    tmp_path: Path,
) -> None:
    log = make_log(tmp_path)
    handle = log.model("m", "1", sample=1.0, classes=["a", "b"])
    other = log.model("n", "1", sample=1.0)
    assert handle is not None and other is not None
    inputs = np.zeros((1, 2))
    handle.record(inputs, {"predict": np.array(["a"])}, 1, 0.0, "plain")
    other.record(inputs, {"predict": np.array([1.0])}, 1, 0.0, "other model")
    proba = {"predict": np.array(["b"]), "predict_proba": np.array([[0.4, 0.6]])}
    handle.record(inputs, proba, 1, 0.0, "with proba")
    assert log.poll(force=True) == 3
    read = logstore.read_log("m", root=str(tmp_path)).sort_values("request_id")
    assert list(read["request_id"]) == ["plain", "with proba"]
    assert pd.isna(read["output.predict_proba.b"].iloc[0])
    assert read["output.predict_proba.b"].iloc[1] == 0.6
    assert list(logstore.read_log("n", root=str(tmp_path))["request_id"]) == ["other model"]


def test_dict_inputs_of_one_flush_are_aligned_by_name(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    handle = log.model("m", "1", sample=1.0)
    assert handle is not None
    outputs = {"predict": np.zeros(1)}
    handle.record({"a": np.array([1.0]), "b": np.array([2.0])}, outputs, 1, 0.0, "ab")
    handle.record({"b": np.array([3.0]), "a": np.array([4.0])}, outputs, 1, 0.0, "ba")
    handle.record({"a": np.array([5.0])}, outputs, 1, 0.0, "a")
    assert log.buffer[0][2] == {"a": np.array([1.0]), "b": np.array([2.0])}
    assert log.poll(force=True) == 3
    read = logstore.read_log("m", root=str(tmp_path)).set_index("request_id")
    assert read.loc["ba", "input.a"] == 4.0 and read.loc["ba", "input.b"] == 3.0
    assert read.loc["a", "input.a"] == 5.0 and pd.isna(read.loc["a", "input.b"])
