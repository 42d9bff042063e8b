"""Compaction of the prediction log: an hour's small parts merged into one, and readers that see
each row exactly once before, during and after it, on a local disk and on an fsspec store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _compactlog import START, folder, parts, profile, root, write_minutes

from seaway.errors import ArtifactStoreError
from seaway.monitoring import logfolder, logstore
from seaway.monitoring.compact import (
    COLUMNS_DIFFER,
    ORPHAN_AGE,
    UNREADABLE,
    CompactReport,
    compact,
    merge,
    plan,
    remove_replaced,
)
from seaway.monitoring.summary import WindowSummary, merge_all
from seaway.monitoring.window import Reference, assess

#: hours 09, 10 and 11 have closed (with the grace); 12 is the current hour
NOW = START + timedelta(hours=3, minutes=10)
#: hour 09 has closed; 10 is the current hour
NEXT = START + timedelta(hours=1, minutes=10)


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return root(request.param, tmp_path)


def read(store: str) -> tuple[pd.DataFrame, WindowSummary]:
    rows = logstore.read_log("fraud", root=store)
    return rows, merge_all(logstore.read_summaries("fraud", version="1", root=store))


def assert_same_summary(got: WindowSummary, want: WindowSummary) -> None:
    """Counts exactly; the moments up to rounding (they are merged in another order)."""
    assert got.n_rows == want.n_rows
    assert (got.start, got.end) == (want.start, want.end)
    assert got.categorical == want.categorical
    assert got.numeric.keys() == want.numeric.keys()
    for name, feature in got.numeric.items():
        other = want.numeric[name]
        assert (feature.counts, feature.missing, feature.min, feature.max) == (
            other.counts, other.missing, other.min, other.max,
        )  # fmt: skip
        assert (feature.mean, feature.m2) == pytest.approx((other.mean, other.m2), rel=1e-9)
    assert (got.multivariate is None) == (want.multivariate is None)
    if got.multivariate is not None and want.multivariate is not None:
        assert got.multivariate.rows == want.multivariate.rows
        assert got.multivariate.total == pytest.approx(want.multivariate.total, rel=1e-9)


def test_many_small_parts_become_one_an_hour_with_the_same_rows_summary_and_drift(
    store: str,
) -> None:
    write_minutes(store, 190)  # 09:00 to 12:09, a part a minute
    rows, summary = read(store)
    reference = Reference(model="fraud", version="1", profile=profile(), predictions=None)
    window = {"since": START, "until": NOW, "root": store}
    drift_before = assess(reference, **window).result

    report = compact(store, now=NOW)

    hour_12 = int((rows["time"] >= pd.Timestamp(START + timedelta(hours=3))).sum())
    assert (report.hours, report.parts, report.rows) == (3, 180, len(rows) - hour_12)
    assert report.removed == 360  # the 180 parts and their summaries
    assert report.left == {} and not report.stopped
    assert len(parts(store)) == 3 + 10
    after, merged = read(store)
    pd.testing.assert_frame_equal(after, rows)  # the same rows, in the same order
    assert_same_summary(merged, summary)
    assessed = assess(reference, **window)
    assert assessed.parts == 3 + 10
    drift_after = assessed.result
    assert [(f.feature, f.test, f.drifted, f.window_count) for f in drift_after.features] == [
        (f.feature, f.test, f.drifted, f.window_count) for f in drift_before.features
    ]
    assert [f.statistic for f in drift_after.features] == pytest.approx(
        [f.statistic for f in drift_before.features], rel=1e-9
    )
    assert drift_after.drifted == drift_before.drifted
    # nothing is left to do
    assert compact(store, now=NOW).to_dict()["hours"] == 0


def test_the_current_hour_and_one_closed_within_the_grace_are_left(store: str) -> None:
    write_minutes(store, 130)  # 09:00 to 11:09
    names = set(parts(store))
    report = compact(store, now=START + timedelta(hours=2, minutes=4, seconds=59))
    assert report.hours == 1  # 10:00-11:00 closed less than 5 minutes ago, 11:00 is current
    left = names & set(parts(store))
    assert len(left) == 70 and all(
        n.startswith(("part-20250310T10", "part-20250310T11")) for n in left
    )
    report = compact(store, now=START + timedelta(hours=2, minutes=5))
    assert report.hours == 1
    assert sorted(names & set(parts(store))) == sorted(n for n in names if "T11" in n)


def test_a_reader_sees_each_row_once_at_every_step(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_minutes(store, 6)  # six parts in hour 09
    rows, summary = read(store)
    steps: list[str] = []

    def check(step: str) -> None:
        steps.append(step)
        got, merged = read(store)
        pd.testing.assert_frame_equal(got, rows)
        assert_same_summary(merged, summary)

    commit, fs = logstore.commit, logstore.open_store(store)[0]
    remove = fs.rm

    def committed(fs: Any, path: str, data: bytes) -> None:
        commit(fs, path, data)
        check(f"wrote {path.rsplit('/', 1)[-1].split('-')[0]}")

    def removed(path: str, *args: Any, **kwargs: Any) -> None:
        remove(path, *args, **kwargs)
        check(f"deleted {path.rsplit('/', 1)[-1].split('-')[0]}")

    monkeypatch.setattr(logstore, "commit", committed)
    monkeypatch.setattr(fs, "rm", removed)
    assert compact(store, now=NOW).hours == 1
    assert steps == [
        "wrote _compacted", "wrote _summary", "wrote part",
        *["deleted part"] * 6, *["deleted _summary"] * 6,
    ]  # fmt: skip


def test_between_writing_the_merged_part_and_deleting_the_originals(store: str) -> None:
    write_minutes(store, 70)
    rows, summary = read(store)
    fs, _ = logstore.open_store(store)
    (group,) = plan(fs, folder(store), now=NEXT)
    assert len(group.parts) == 60
    assert merge(fs, group, now=NEXT, report=CompactReport()) == (60, group_rows(rows))
    assert len(parts(store)) == 71  # the originals are all still there
    assert len(logstore.list_files("fraud", root=store)) == 11
    assert len(logstore.list_files("fraud", root=store, summaries=True)) == 11
    got, merged = read(store)
    pd.testing.assert_frame_equal(got, rows)
    assert_same_summary(merged, summary)
    assert remove_replaced(fs, folder(store), now=NEXT) == 120
    assert len(parts(store)) == 11


def group_rows(rows: pd.DataFrame) -> int:
    return int((rows["time"] < pd.Timestamp(START + timedelta(hours=1))).sum())


def test_a_crash_before_deleting_reads_right_and_the_next_run_cleans_up(store: str) -> None:
    write_minutes(store, 70)
    rows, summary = read(store)
    fs, _ = logstore.open_store(store)
    (group,) = plan(fs, folder(store), now=NEXT)
    merge(fs, group, now=NEXT, report=CompactReport())  # and then the process died
    report = compact(store, now=NEXT)
    assert (report.hours, report.removed) == (0, 120)
    assert len(parts(store)) == 11
    got, merged = read(store)
    pd.testing.assert_frame_equal(got, rows)
    assert_same_summary(merged, summary)


def test_a_crash_before_the_part_is_committed_leaves_a_manifest_that_replaces_nothing(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_minutes(store, 70)
    rows, summary = read(store)
    commit = logstore.commit

    def full_disk(fs: Any, path: str, data: bytes) -> None:
        if path.endswith(".parquet"):
            raise OSError(28, "No space left on device")
        commit(fs, path, data)

    monkeypatch.setattr(logstore, "commit", full_disk)
    with pytest.raises(ArtifactStoreError, match="cannot write the compacted part"):
        compact(store, now=NEXT)
    monkeypatch.undo()
    fs, _ = logstore.open_store(store)
    listed = [p.rsplit("/", 1)[-1] for p in fs.ls(folder(store), detail=False)]
    assert sum(n.startswith(logfolder.MANIFEST_PREFIX) for n in listed) == 1
    got, merged = read(store)  # the orphan's summary is not read: its part never came
    pd.testing.assert_frame_equal(got, rows)
    assert_same_summary(merged, summary)

    assert compact(store, now=NEXT).hours == 1  # merged again; the orphan is kept a while
    later = compact(store, now=NEXT + ORPHAN_AGE, max_hours=0)
    assert later.removed == 2  # then deleted, with its summary
    listed = [p.rsplit("/", 1)[-1] for p in fs.ls(folder(store), detail=False)]
    assert sum(n.startswith(logfolder.MANIFEST_PREFIX) for n in listed) == 1
    got, merged = read(store)
    pd.testing.assert_frame_equal(got, rows)
    assert_same_summary(merged, summary)


def test_two_compactors_at_once_one_seeing_a_late_part(store: str) -> None:
    write_minutes(store, 10)
    fs, _ = logstore.open_store(store)
    (first,) = plan(fs, folder(store), now=NOW)
    # a part of 09:59 committed late (its writer's clock is behind), seen by the second only
    write_minutes(store, 1, start=START + timedelta(minutes=59), seed=7)
    rows, summary = read(store)
    (second,) = plan(fs, folder(store), now=NOW)
    assert len(second.parts) == len(first.parts) + 1 == 11
    merge(fs, second, now=NOW, report=CompactReport())
    merge(fs, first, now=NOW, report=CompactReport())  # the slower one commits last
    got, merged = read(store)
    pd.testing.assert_frame_equal(got, rows)
    assert_same_summary(merged, summary)
    assert remove_replaced(fs, folder(store), now=NOW) == 2 * 11 + 3  # and the smaller merge
    assert len(parts(store)) == 1
    pd.testing.assert_frame_equal(read(store)[0], rows)


def test_the_same_hour_merged_twice_is_read_once_and_one_copy_is_deleted(store: str) -> None:
    write_minutes(store, 10)
    rows, _ = read(store)
    fs, _ = logstore.open_store(store)
    (group,) = plan(fs, folder(store), now=NOW)
    merge(fs, group, now=NOW, report=CompactReport())
    merge(fs, group, now=NOW, report=CompactReport())
    assert len(logstore.list_files("fraud", root=store)) == 1
    pd.testing.assert_frame_equal(read(store)[0], rows)
    compact(store, now=NOW)
    assert len(parts(store)) == 1
    pd.testing.assert_frame_equal(read(store)[0], rows)


def test_a_late_part_of_a_merged_hour_is_merged_with_it(store: str) -> None:
    write_minutes(store, 10)
    compact(store, now=NOW)
    write_minutes(store, 2, start=START + timedelta(minutes=58), seed=3)
    rows, summary = read(store)
    report = compact(store, now=NOW)
    assert (report.hours, report.parts) == (1, 3)
    assert len(parts(store)) == 1
    got, merged = read(store)
    pd.testing.assert_frame_equal(got, rows)
    assert_same_summary(merged, summary)


def test_a_reader_whose_listing_went_stale_lists_again(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_minutes(store, 70)
    rows, summary = read(store)
    listing = logstore.list_files

    def then_compacted(*args: Any, **kwargs: Any) -> list[logstore.LogFile]:
        found = listing(*args, **kwargs)
        if len(found) > 11:  # before compaction: it runs between the listing and the reading
            compact(store, now=NEXT)
        return found

    monkeypatch.setattr(logstore, "list_files", then_compacted)
    pd.testing.assert_frame_equal(logstore.read_log("fraud", root=store), rows)
    write_minutes(store, 70, start=START + timedelta(days=1), seed=5)
    monkeypatch.undo()
    rows = logstore.read_log("fraud", root=store)
    summary = merge_all(logstore.read_summaries("fraud", version="1", root=store))
    monkeypatch.setattr(logstore, "list_files", then_compacted)
    got = merge_all(logstore.read_summaries("fraud", version="1", root=store))
    assert_same_summary(got, summary)


def test_parts_missing_a_column_merge_with_nulls(store: str) -> None:
    def frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
        data = {"amount": rng.gamma(2.0, 50.0, n), "country": rng.choice(["fr", "de"], n)}
        if rng.random() < 0.5:
            data["hour"] = rng.integers(0, 24, n).astype(float)
        return pd.DataFrame(data)

    write_minutes(store, 20, frame=frame)
    rows, summary = read(store)
    assert rows["input.hour"].isna().any() and rows["input.hour"].notna().any()
    assert compact(store, now=NOW).hours == 1
    got, merged = read(store)
    pd.testing.assert_frame_equal(got, rows)
    assert_same_summary(merged, summary)


def test_parts_whose_columns_cannot_be_unified_are_left_and_counted(store: str) -> None:
    def frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
        country: Any = rng.choice(["fr", "de"], n) if rng.random() < 0.5 else np.arange(n)
        return pd.DataFrame({"amount": rng.gamma(2.0, 50.0, n), "country": country})

    write_minutes(store, 20, frame=frame)
    names = parts(store)
    rows = logstore.read_log("fraud", root=store)
    report = compact(store, now=NOW)
    assert (report.hours, report.left) == (0, {COLUMNS_DIFFER: 1})
    assert parts(store) == names
    pd.testing.assert_frame_equal(logstore.read_log("fraud", root=store), rows)
    assert compact(store, now=NOW).left == {COLUMNS_DIFFER: 1}  # remembered, not read again


def test_an_unreadable_part_is_left_out_of_the_merge(store: str) -> None:
    write_minutes(store, 10)
    fs, _ = logstore.open_store(store)
    broken = f"{folder(store)}/{parts(store)[4]}"
    fs.pipe_file(broken, b"not parquet")
    rows = logstore.read_log("fraud", root=store)
    report = compact(store, now=NOW)
    assert (report.hours, report.parts, report.left) == (1, 9, {UNREADABLE: 1})
    assert len(parts(store)) == 2
    pd.testing.assert_frame_equal(logstore.read_log("fraud", root=store), rows)


def test_the_retention_sweep_deletes_merged_hours_and_leftovers_whole(store: str) -> None:
    write_minutes(store, 130)
    fs, _ = logstore.open_store(store)
    first, *_ = plan(fs, folder(store), now=NOW)
    merge(fs, first, now=NOW, report=CompactReport())  # hour 09 merged, originals left (a crash)
    rows = logstore.read_log("fraud", root=store)
    assert logstore.sweep(store, ["fraud"], START + timedelta(hours=1)) == 60 * 2 + 3
    listed = [p.rsplit("/", 1)[-1] for p in fs.ls(folder(store), detail=False)]
    assert not [n for n in listed if "T09" in n]
    kept = rows[rows["time"] >= pd.Timestamp(START + timedelta(hours=1))].reset_index(drop=True)
    pd.testing.assert_frame_equal(logstore.read_log("fraud", root=store), kept)
    assert compact(store, now=NOW).hours == 2
    # an hour merged is swept as a whole once its latest part is older than the retention
    assert logstore.sweep(store, ["fraud"], START + timedelta(hours=1, minutes=59)) == 0
    assert logstore.sweep(store, ["fraud"], START + timedelta(hours=2)) == 3
    later = rows[rows["time"] >= pd.Timestamp(START + timedelta(hours=2))].reset_index(drop=True)
    pd.testing.assert_frame_equal(logstore.read_log("fraud", root=store), later)


def test_a_log_without_summaries_is_merged_too(store: str) -> None:
    write_minutes(store, 30, with_profile=False)
    rows = logstore.read_log("fraud", root=store)
    assert compact(store, now=NOW).hours == 1
    assert len(parts(store)) == 1
    pd.testing.assert_frame_equal(logstore.read_log("fraud", root=store), rows)
    assert logstore.read_summaries("fraud", root=store) == []


def test_only_the_model_and_version_asked_and_the_days_asked(store: str) -> None:
    write_minutes(store, 10, model="fraud", version="1")
    write_minutes(store, 10, model="fraud", version="2")
    write_minutes(store, 10, model="churn", version="1")
    write_minutes(store, 10, start=START - timedelta(days=3), model="fraud", version="1")
    assert compact(store, model="fraud", version="2", now=NOW).hours == 1
    assert compact(store, model="fraud", now=NOW, days=1).hours == 1
    assert compact(store, now=NOW).hours == 2  # churn, and fraud 1 three days ago
    assert len(parts(store, "fraud")) == 4
