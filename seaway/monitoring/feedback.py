"""Ground truth that arrives later: the feedback store, and joining it to the prediction log.

Layout, beside the prediction log (docs/monitoring.md, "Feedback and performance")::

    <root>/model=<name>/date=<YYYY-MM-DD>/part-<utc time>-<uuid>.parquet

``root`` is ``<SEAWAY_HOME>/monitoring/feedback`` by default; for a prediction log elsewhere
(``--log-store s3://bucket/predictions``), ``feedback_root`` puts it beside it. Parts are committed
atomically as the log's are (``logstore.commit``), one per call, dated by when the labels came.
Columns: ``request_id`` (a served request's id, or a batch row's key), ``row`` (int32, the row in
the request, 0 by default), ``label`` (the value as ``category_label`` writes it), ``value`` (the
value as a number, NaN when it is not one) and ``time`` (when it was recorded).

A label may be corrected by sending it again: for a ``(request_id, row)`` the latest wins.
Labels join the log on ``(request_id, row)``; logged batch rows that still have none join on their
``key`` (a key labels every row that carries it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from numbers import Number
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway.errors import BodyTooLargeError, InvalidInputError
from seaway.monitoring.durations import as_utc
from seaway.monitoring.logstore import (
    PART_PREFIX,
    commit,
    default_root,
    open_store,
    part_name,
    segment,
    skipped,
    written_at,
)
from seaway.packaging.profile import category_label

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

FEEDBACK_DIR = "feedback"
COLUMNS = ("request_id", "row", "label", "value", "time")
MAX_ROW = 2**31 - 1  # rows are int32, as the log's
#: Labels in one feedback request (the log's default buffer holds as many rows): each is checked
#: in Python, so a body of millions would hold a server's worker for seconds. Bulk: a file.
MAX_ITEMS = 100_000
#: what the join adds to the log's rows
LABEL, LABEL_VALUE, LABEL_TIME = "label", "label_value", "label_time"


@dataclass(frozen=True)
class FeedbackItem:
    """The true label (class) or value (regression) of one row of one request."""

    request_id: str
    label: Any
    row: int = 0


def feedback_root(log_root: str | None = None) -> str:
    """The feedback store beside a prediction log: ``.../monitoring/predictions`` gives
    ``.../monitoring/feedback``; a log root with another name keeps it in its ``_feedback`` folder
    (which the log's readers skip). None: the default log's."""
    base = (log_root or default_root()).rstrip("/")
    parent, _, name = base.rpartition("/")
    if name == "predictions" and parent:
        return f"{parent}/{FEEDBACK_DIR}"
    return f"{base}/_{FEEDBACK_DIR}"


def parse_items(items: Iterable[FeedbackItem | Mapping[str, Any]]) -> list[FeedbackItem]:
    """Items as given (``FeedbackItem`` or ``{"request_id", "row", "label"}``), checked: each
    names what is wrong with the first bad one."""
    parsed = []
    for n, item in enumerate(items):
        rid: Any
        if isinstance(item, FeedbackItem):
            rid, row, label = item.request_id, item.row, item.label
        elif isinstance(item, Mapping):
            unknown = sorted(set(item) - {"request_id", "row", "label"})
            if unknown:
                raise InvalidInputError(
                    f"feedback item {n} has unknown field(s) {unknown}; an item has request_id, "
                    "row (optional, 0 by default) and label"
                )
            rid, row, label = item.get("request_id"), item.get("row", 0), item.get("label")
        else:
            raise InvalidInputError(
                f"feedback item {n} is a {_json_type(item)}; give an object with request_id, "
                "row and label"
            )
        parsed.append(FeedbackItem(_request_id(rid, n), _label(label, n), _row(row, n)))
    return parsed


def items_from_body(doc: Any) -> list[FeedbackItem]:
    """The items of a feedback request body: ``{"request_id": ..., "labels": [one per row]}`` or
    ``{"items": [{"request_id", "row", "label"}, ...]}``; anything else names what is wrong."""
    if not isinstance(doc, Mapping):
        raise InvalidInputError("a feedback body is a JSON object")
    unknown = sorted(set(doc) - {"request_id", "labels", "items"})
    if unknown:
        raise InvalidInputError(
            f"unknown field(s) {unknown} in the feedback body; send "
            '{"request_id": ID, "labels": [...]} or {"items": [{"request_id", "row", "label"}]}'
        )
    if ("items" in doc) == ("labels" in doc or "request_id" in doc):
        raise InvalidInputError(
            'send either "request_id" with "labels" (one per row of the request) or "items", '
            "not both and not neither"
        )
    if "items" in doc:
        items = doc["items"]
        if not isinstance(items, list) or not items:
            raise InvalidInputError('"items" must be a non-empty list of feedback items')
        _not_too_many(len(items))
        return parse_items(items)
    labels = doc.get("labels")
    if not isinstance(labels, list) or not labels:
        raise InvalidInputError(
            '"labels" must be a non-empty list: the true label of each row of the request, in order'
        )
    _not_too_many(len(labels))
    rid = doc.get("request_id")
    if isinstance(rid, bool) or not isinstance(rid, str | int) or rid == "":
        raise InvalidInputError(
            '"request_id" must be a non-empty string: the X-Request-ID the prediction came with'
        )
    return parse_items(
        {"request_id": rid, "row": row, "label": label} for row, label in enumerate(labels)
    )


def _not_too_many(count: int) -> None:
    if count > MAX_ITEMS:
        raise BodyTooLargeError(
            f"a feedback request holds at most {MAX_ITEMS:,} labels, this one {count:,}; send them "
            "in several requests, or as a file: seaway monitor feedback NAME --file labels.parquet"
        )


def _request_id(value: Any, n: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        given = "no request_id" if value is None or value == "" else f"request_id {value!r}"
        raise InvalidInputError(
            f"feedback item {n} has {given}; a request_id is a non-empty string: the "
            "X-Request-ID of the prediction, or the batch key"
        )
    return str(value)


def _json_type(value: Any) -> str:
    """What a decoded JSON value was sent as."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "list", type(None): "null"}.get(type(value), type(value).__name__)


def _row(value: Any, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ROW:
        raise InvalidInputError(
            f"feedback item {n} has row {value!r}; a row is an integer from 0 to {MAX_ROW} (the "
            "row within its request)"
        )
    return value


def _label(value: Any, n: int) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise InvalidInputError(f"feedback item {n} has no label")
    if isinstance(value, list | tuple | dict | set):
        raise InvalidInputError(
            f"feedback item {n} has label {value!r}; a label is one value (a class or a number)"
        )
    return value


def numeric_value(label: Any) -> float:
    """The label as a number (True is 1), or NaN when it is not one."""
    if hasattr(label, "item") and not isinstance(label, str | bytes):  # numpy scalars
        label = label.item()
    if isinstance(label, Number):
        try:
            return float(label)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return math.nan
    if isinstance(label, str):
        try:
            return float(label)
        except (ValueError, OverflowError):
            return math.nan
    return math.nan


def feedback_table(items: list[FeedbackItem], now: datetime) -> pa.Table:
    import pyarrow as pa

    stamp = as_utc(now)
    return pa.table(
        {
            "request_id": pa.array([i.request_id for i in items], pa.string()),
            "row": pa.array([i.row for i in items], pa.int32()),
            "label": pa.array([category_label(i.label) for i in items], pa.string()),
            "value": pa.array([numeric_value(i.label) for i in items], pa.float64()),
            "time": pa.array([stamp] * len(items), pa.timestamp("us", tz="UTC")),
        }
    )


def record_feedback(
    model: str,
    items: Iterable[FeedbackItem | Mapping[str, Any]],
    *,
    root: str | None = None,
    now: datetime | None = None,
) -> int:
    """Store labels for ``model``'s logged predictions; returns how many. All or nothing: the
    items are checked first and written as one part."""
    if not model:
        raise InvalidInputError("feedback needs a model name")
    parsed = parse_items(items)
    if not parsed:
        return 0
    moment = as_utc(now) if now is not None else datetime.now(UTC)
    return _write(model, feedback_table(parsed, moment), moment, root)


def record_feedback_columns(
    model: str,
    request_ids: Any,
    labels: Any,
    rows: Any = None,
    *,
    root: str | None = None,
    now: datetime | None = None,
) -> int:
    """``record_feedback`` for labels in columns (a bulk file's): the same checks, vectorised.
    A bad value's error names its position (counting from 0)."""
    import pandas as pd
    import pyarrow as pa

    ids = pd.Series(request_ids, dtype=object).reset_index(drop=True)
    values = pd.Series(labels).reset_index(drop=True)
    if len(values) != len(ids):
        raise InvalidInputError(f"{len(ids)} request ids but {len(values)} labels")
    _first_bad(ids.isna() | (ids.map(category_label) == ""), "has no request id")
    _first_bad(values.isna(), "has no label")
    if rows is None:
        row = pd.Series(0, index=ids.index, dtype="int64")
    else:
        row = pd.to_numeric(pd.Series(rows).reset_index(drop=True), errors="coerce")
        bad = row.isna() | (row < 0) | (row > MAX_ROW) | (row % 1 != 0)
        _first_bad(bad, f"has no row number (an integer from 0 to {MAX_ROW})")
    moment = as_utc(now) if now is not None else datetime.now(UTC)
    table = pa.table(
        {
            "request_id": pa.array(ids.map(category_label).tolist(), pa.string()),
            "row": pa.array(row.astype("int64").to_numpy(), pa.int32()),
            "label": pa.array(values.map(category_label).tolist(), pa.string()),
            "value": pa.array(values.map(numeric_value).to_numpy(float), pa.float64()),
            "time": pa.array([moment] * len(ids), pa.timestamp("us", tz="UTC")),
        }
    )
    return _write(model, table, moment, root) if len(ids) else 0


def _first_bad(mask: Any, what: str) -> None:
    if mask.any():
        where = int(mask.to_numpy().nonzero()[0][0])
        raise InvalidInputError(f"row {where} {what} ({int(mask.sum())} such rows)")


def _write(model: str, table: pa.Table, moment: datetime, root: str | None) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, base = open_store(root or feedback_root())
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    folder = f"{base}/{segment('model', model)}/date={moment.date().isoformat()}"
    commit(fs, f"{folder}/{part_name(moment)}", bytes(sink.getvalue()))
    return int(table.num_rows)


def read_feedback(
    model: str, *, since: datetime | None = None, root: str | None = None
) -> pd.DataFrame:
    """``model``'s labels recorded at or after ``since``, the latest per ``(request_id, row)``,
    in the store's columns."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, base = open_store(root or feedback_root())
    start = as_utc(since) if since is not None else None
    tables = []
    for path in _parts(fs, f"{base}/{segment('model', model)}", start):
        try:
            table = pq.read_table(path, filesystem=fs)
        except FileNotFoundError:
            continue
        except (OSError, ValueError, pa.ArrowException) as exc:  # cut short, not Parquet
            skipped(path, exc, what="feedback file")
            continue
        tables.append(table.select(list(COLUMNS)))
    if not tables:
        return pd.DataFrame({c: pd.Series(dtype=_DTYPES[c]) for c in COLUMNS})
    frame = pa.concat_tables(tables).to_pandas()
    if start is not None:
        frame = frame[frame["time"] >= pd.Timestamp(start)]
    frame = frame.sort_values("time", kind="stable")  # parts come oldest first: ties keep order
    latest: pd.DataFrame = frame.drop_duplicates(["request_id", "row"], keep="last")
    return latest.reset_index(drop=True)


_DTYPES = {
    "request_id": "object",
    "row": "int32",
    "label": "object",
    "value": "float64",
    "time": "datetime64[us, UTC]",
}


def _parts(fs: Any, model_dir: str, since: datetime | None) -> list[str]:
    """Part files under ``model_dir`` that may hold labels recorded at or after ``since``,
    oldest first (by the time in their names)."""
    found = []
    try:
        days = [str(p).rstrip("/") for p in fs.ls(model_dir, detail=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    for day_dir in days:
        name = day_dir.rsplit("/", 1)[-1]
        if not name.startswith("date="):
            continue
        try:
            day = date.fromisoformat(name[5:])
        except ValueError:
            continue
        if since is not None and day < since.date():
            continue
        for path in fs.ls(day_dir, detail=False):
            text = str(path)
            base = text.rsplit("/", 1)[-1]
            written = written_at(base) if base.startswith(PART_PREFIX) else None
            if written is not None and (since is None or written >= since):
                found.append((written, text))
    return [path for _, path in sorted(found)]


def join_feedback(log: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """The log's rows with ``label``, ``label_value`` and ``label_time`` added (null where no
    label came): joined on ``(request_id, row)``, then, for rows still without one, on ``key``."""
    import pandas as pd

    labels = feedback.rename(columns={"value": LABEL_VALUE, "time": LABEL_TIME})
    labels = labels.astype({"row": "int64"})[["request_id", "row", LABEL, LABEL_VALUE, LABEL_TIME]]
    if log.empty or "request_id" not in log.columns:
        out = log.copy()
        for column in (LABEL, LABEL_VALUE, LABEL_TIME):
            out[column] = pd.Series(dtype=labels[column].dtype)
        return out
    left = log.assign(_row=log["row"].astype("int64"))
    joined = left.merge(
        labels.rename(columns={"row": "_row"}), on=["request_id", "_row"], how="left"
    )
    if "key" in joined.columns and len(labels):
        by_key = labels.drop_duplicates("request_id", keep="last").set_index("request_id")
        missing = joined[LABEL].isna() & joined["key"].notna()
        if missing.any():
            keys = joined.loc[missing, "key"].astype(str)
            for column in (LABEL, LABEL_VALUE, LABEL_TIME):
                joined.loc[missing, column] = keys.map(by_key[column]).to_numpy()
    return joined.drop(columns="_row")


def labelled_rows(log: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """``join_feedback``'s rows that have a label."""
    joined = join_feedback(log, feedback)
    return joined[joined[LABEL].notna()].reset_index(drop=True)


def default_feedback_root(home: str | Path | None = None) -> str:
    """``<home>/monitoring/feedback``."""
    return feedback_root(default_root(home))
