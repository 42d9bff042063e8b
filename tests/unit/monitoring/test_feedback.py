"""The feedback store: its layout, latest-wins, and the join with the prediction log."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from seaway.errors import InvalidInputError
from seaway.monitoring.feedback import (
    FeedbackItem,
    feedback_root,
    join_feedback,
    labelled_rows,
    numeric_value,
    read_feedback,
    record_feedback,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_layout_and_columns(tmp_path: Path) -> None:
    root = str(tmp_path / "feedback")
    assert record_feedback("fraud model", [FeedbackItem("r1", 1)], root=root, now=T0) == 1
    parts = list((tmp_path / "feedback").rglob("*.parquet"))
    assert len(parts) == 1
    part = parts[0]
    assert part.parent.name == "date=2025-03-01"
    assert part.parent.parent.name == "model=fraud%20model"
    assert part.name.startswith("part-20250301T120000")
    table = pq.read_table(part)
    assert table.column_names == ["request_id", "row", "label", "value", "time"]
    assert str(table.schema.field("row").type) == "int32"
    assert str(table.schema.field("time").type) == "timestamp[us, tz=UTC]"
    assert table.to_pylist()[0] | {"time": None} == {
        "request_id": "r1", "row": 0, "label": "1", "value": 1.0, "time": None,
    }  # fmt: skip
    assert not [p for p in (tmp_path / "feedback").rglob(".*")]  # nothing left half-written


def test_latest_label_wins(tmp_path: Path) -> None:
    root = str(tmp_path)
    record_feedback("m", [{"request_id": "a", "label": "cat"}], root=root, now=T0)
    record_feedback(
        "m",
        [{"request_id": "a", "label": "dog"}, {"request_id": "a", "row": 1, "label": "cow"}],
        root=root,
        now=T0 + timedelta(hours=1),
    )
    # within one call, the later item wins too
    record_feedback(
        "m",
        [FeedbackItem("b", "x"), FeedbackItem("b", "y")],
        root=root,
        now=T0 + timedelta(days=1),
    )
    frame = read_feedback("m", root=root)
    got = {(r.request_id, r.row): r.label for r in frame.itertuples()}
    assert got == {("a", 0): "dog", ("a", 1): "cow", ("b", 0): "y"}
    later = read_feedback("m", root=root, since=T0 + timedelta(hours=2))
    assert list(later["request_id"]) == ["b"]
    assert read_feedback("other", root=root).empty


def test_values_as_numbers() -> None:
    assert numeric_value(3) == 3.0 and numeric_value(True) == 1.0 and numeric_value("2.5") == 2.5
    assert math.isnan(numeric_value("cat"))


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"request_id": "", "label": 1}, "no request_id"),
        ({"label": 1}, "no request_id"),
        ({"request_id": "a"}, "no label"),
        ({"request_id": "a", "label": None}, "no label"),
        ({"request_id": "a", "label": [1, 2]}, "one value"),
        ({"request_id": "a", "label": 1, "row": -1}, "row -1"),
        ({"request_id": "a", "label": 1, "row": "0"}, "row '0'"),
        ({"request_id": "a", "label": 1, "colour": "red"}, "unknown field"),
        ("a", "is a str"),
    ],
)
def test_bad_items_are_refused_whole(tmp_path: Path, item: object, message: str) -> None:
    good = {"request_id": "ok", "label": 1}
    with pytest.raises(InvalidInputError, match=message):
        record_feedback("m", [good, item], root=str(tmp_path), now=T0)  # type: ignore[list-item]
    assert not list(tmp_path.rglob("*.parquet"))


def test_feedback_root_beside_the_log() -> None:
    assert feedback_root("/h/monitoring/predictions") == "/h/monitoring/feedback"
    assert feedback_root("s3://b/monitoring/predictions/") == "s3://b/monitoring/feedback"
    assert feedback_root("/data/log") == "/data/log/_feedback"


def _log() -> pd.DataFrame:
    times = pd.to_datetime([T0] * 5, utc=True)
    return pd.DataFrame(
        {
            "model": "m",
            "version": "1",
            "request_id": ["r1", "r1", "r2", "job:0:0", "job:0:1"],
            "row": pd.array([0, 1, 0, 0, 1], dtype="int32"),
            "time": times,
            "key": [None, None, None, "k-7", "k-8"],
            "output.predict": [1, 0, 1, 1, 0],
        }
    )


def test_join_by_request_id_and_row_and_by_batch_key(tmp_path: Path) -> None:
    root = str(tmp_path)
    record_feedback(
        "m",
        [
            FeedbackItem("r1", 1, row=1),
            FeedbackItem("r2", 0),
            FeedbackItem("k-8", 1),  # a batch key: labels the logged row that kept it
            FeedbackItem("nobody", 1),
        ],
        root=root,
        now=T0,
    )
    joined = join_feedback(_log(), read_feedback("m", root=root))
    assert len(joined) == 5
    assert [None if pd.isna(v) else v for v in joined["label"]] == [None, "1", "0", None, "1"]
    labelled = labelled_rows(_log(), read_feedback("m", root=root))
    assert labelled[["request_id", "row", "label"]].values.tolist() == [
        ["r1", 1, "1"],
        ["r2", 0, "0"],
        ["job:0:1", 1, "1"],
    ]
    assert labelled["label_value"].tolist() == [1.0, 0.0, 1.0]
    assert (labelled["label_time"] == pd.Timestamp(T0)).all()


def test_join_with_no_feedback_or_no_log(tmp_path: Path) -> None:
    empty = read_feedback("m", root=str(tmp_path))
    joined = join_feedback(_log(), empty)
    assert joined["label"].isna().all() and len(joined) == 5
    assert labelled_rows(pd.DataFrame({"model": [], "version": []}), empty).empty
