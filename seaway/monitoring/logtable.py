"""Logged predictions as Arrow tables: one row per input row, in the log's columns.

Runs in the prediction log's writer thread (or a batch worker), never on a request's path: it
imports pyarrow and pandas. Inputs are split into features exactly as the reference profile
splits its data (:func:`seaway.packaging.profile.feature_columns`), so drift compares like with
like; a dict input holding a 2-D array becomes ``<name>.0``, ``<name>.1``, ...; inputs of more
than two dimensions (images) are not logged as features. A 2-D output becomes one column per
class (``output.predict_proba.<class label>``), or per column index when the model has no
classes of that width.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from seaway.errors import PackagingError
from seaway.monitoring.logstore import INPUT_PREFIX, OUTPUT_PREFIX
from seaway.packaging.profile import category_label, feature_columns
from seaway.packaging.reference import output_columns

Columns = list[tuple[str, pd.Series]]
_STAMP = pa.timestamp("us", tz="UTC")
_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Meta:
    """Per-row columns besides inputs and outputs (each of the table's length)."""

    request_id: np.ndarray[Any, Any]  # object: str
    row: np.ndarray[Any, Any]  # int
    time_us: np.ndarray[Any, Any]  # int64 microseconds since the epoch, UTC
    latency_ms: np.ndarray[Any, Any] | None  # float64; None: no latency (batch)
    source: str
    job_id: str | None = None
    key: np.ndarray[Any, Any] | None = None  # object: str or None


@dataclass(frozen=True)
class Part:
    """One part file's worth: rows of one day, and their features for the window summary."""

    day: int  # days since the epoch
    table: pa.Table
    features: pd.DataFrame

    def span(self) -> tuple[datetime | None, datetime | None]:
        """The earliest and latest ``time`` of the rows (the window a summary covers)."""
        import pyarrow.compute as pc

        bounds = pc.min_max(self.table.column("time"))
        return bounds["min"].as_py(), bounds["max"].as_py()


def serve_meta(
    request_ids: Sequence[str],
    counts: Sequence[int],
    times: Sequence[float],
    latencies: Sequence[float],
) -> Meta:
    """The meta columns of requests: each request's values repeated over its rows."""
    counts_array = np.asarray(counts, dtype=np.int64)
    total = int(counts_array.sum())
    starts = np.cumsum(counts_array) - counts_array
    row = np.arange(total, dtype=np.int64) - np.repeat(starts, counts_array)
    time_us = np.repeat((np.asarray(times, dtype=np.float64) * 1e6).astype(np.int64), counts_array)
    latency = np.repeat(np.asarray(latencies, dtype=np.float64) * 1e3, counts_array)
    ids = np.repeat(np.asarray(request_ids, dtype=object), counts_array)
    return Meta(ids, row, time_us, latency, "serve")


def concat_inputs(items: Sequence[Any], names: Sequence[tuple[str, ...] | None] = ()) -> Any:
    """Several requests' native inputs as one: arrays stacked, dicts key by key, else frames.
    ``names``: a dict input arrives as the tuple of its values, its keys here (the prediction
    log's buffer holds no dict). Called with thousands of requests: no Python loop per request
    on the usual paths."""
    if names and set(names) != {None}:
        if len(set(names)) == 1:
            with contextlib.suppress(ValueError, TypeError):
                return concat_named(names[0] or (), items)
        items = [
            dict(zip(k, v, strict=True)) if k else v for k, v in zip(names, items, strict=True)
        ]
    first = items[0]
    if len(items) == 1:
        return first
    kinds = set(map(type, items))
    if kinds == {np.ndarray}:
        with contextlib.suppress(ValueError):  # shapes differ: frames below
            return np.concatenate(items)
    elif kinds == {dict} and all(map(first.keys().__eq__, map(dict.keys, items))):
        with contextlib.suppress(ValueError):
            return {k: np.concatenate([np.asarray(x[k]) for x in items]) for k in first}
    return pd.concat([pd.DataFrame(dict(input_columns(x))) for x in items], ignore_index=True)


def concat_named(names: Sequence[str], values: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """``{name: the requests' j-th values, concatenated}``: dicts kept as tuples of values."""
    if len(values) == 1:
        return {name: np.asarray(v) for name, v in zip(names, values[0], strict=True)}
    return {name: np.concatenate([v[j] for v in values]) for j, name in enumerate(names)}


def input_columns(data: Any) -> Columns:
    """Features as the reference profile names them; what it cannot split, as best we can."""
    try:
        return [(name, series.reset_index(drop=True)) for name, series in feature_columns(data)]
    except PackagingError:
        pass
    if isinstance(data, Mapping):
        columns: Columns = []
        for key, value in data.items():
            array = np.asarray(value)
            if array.ndim == 1:
                columns.append((str(key), pd.Series(array)))
            elif array.ndim == 2:
                columns.extend(
                    (f"{key}.{j}", pd.Series(array[:, j])) for j in range(array.shape[1])
                )
        return columns
    return []  # images and other tensors of three dimensions or more


def build_parts(
    inputs: Any,
    outputs: Mapping[str, Any],
    meta: Meta,
    *,
    classes: Sequence[Any] | None = None,
    exclude: frozenset[str] = frozenset(),
) -> list[Part]:
    """The rows as tables, one per UTC day of their ``time`` (the date partition)."""
    n = len(meta.row)
    features = [(name, s) for name, s in input_columns(inputs) if name not in exclude]
    for name, series in features:
        if len(series) != n:
            raise ValueError(f"input {name!r} has {len(series)} rows where the request had {n}")
    arrays: dict[str, pa.Array] = {
        "request_id": pa.array(meta.request_id, pa.string()),
        "row": pa.array(meta.row, pa.int32()),
        "time": pa.array(meta.time_us, _STAMP),
        "latency_ms": pa.array(meta.latency_ms, pa.float64())
        if meta.latency_ms is not None
        else pa.nulls(n, pa.float64()),
        "source": pa.array([meta.source] * n, pa.string()),
        "job_id": pa.array([meta.job_id] * n, pa.string()),
        "key": pa.array(meta.key, pa.string())
        if meta.key is not None
        else pa.nulls(n, pa.string()),
    }
    for name, series in features:
        arrays[INPUT_PREFIX + name] = _arrow(series)
    for name, value in outputs.items():
        for column, values in output_columns(name, np.asarray(value), classes):
            if len(values) != n:
                raise ValueError(
                    f"output {name!r} has {len(values)} rows where the request had {n}"
                )
            arrays[OUTPUT_PREFIX + column] = _arrow(pd.Series(values))
    table = pa.table(arrays)
    frame = pd.DataFrame(dict(features)) if features else pd.DataFrame(index=range(n))
    days = meta.time_us // _DAY_US
    first = int(days[0]) if n else 0
    if not n or (days == first).all():
        return [Part(first, table, frame)]
    parts = []
    for day in np.unique(days):
        mask = days == day
        parts.append(
            Part(int(day), table.filter(pa.array(mask)), frame[mask].reset_index(drop=True))
        )
    return parts


def _arrow(series: pd.Series) -> pa.Array:
    """A column as Arrow; values Arrow cannot type together (1 and "a") are logged as text."""
    try:
        return pa.Array.from_pandas(series)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        labels = [None if _missing(v) else category_label(v) for v in series.tolist()]
        return pa.array(labels, pa.string())


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def to_parquet(table: pa.Table) -> bytes:
    """The table as Parquet bytes. Dictionaries only for text columns: tried on every float
    column they cost most of the write, for nothing (measured values are nearly all distinct)."""
    import pyarrow.parquet as pq

    text = [
        f.name
        for f in table.schema
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", use_dictionary=text or False)
    return bytes(sink.getvalue())
