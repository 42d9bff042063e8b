"""A worker reading its own span of Parquet chunks stops after its current chunk when told."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seaway.batch import local
from seaway.batch.inputs import resolve_inputs
from seaway.batch.output import ChunkStats


@pytest.fixture
def span(tmp_path: Path) -> local.Span:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"id": list(range(500))}), path, row_group_size=100)
    return local.Span(0, resolve_inputs(str(path))[0], 0, 5, 100, ("id",))


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[int]]:
    """This process as a worker whose scoring records the chunks and sets ``stop`` after the
    first one (as the driver does on a failure or a signal while the span is read)."""
    stop = threading.Event()
    scored: list[int] = []

    def score_and_commit(scorer: Any, folder: Any, on_error: str, chunk: local.Chunk) -> Any:
        assert chunk.table.column("id").to_pylist()[0] == chunk.first_row
        scored.append(chunk.index)
        stop.set()
        return chunk.file_index, chunk.index, ChunkStats(chunk.table.num_rows, 0, 0)

    monkeypatch.setattr(local, "score_and_commit", score_and_commit)
    monkeypatch.setattr(local, "_state", {"scorer": None, "folder": None, "on_error": "skip"})
    local._state["stop"] = stop
    return stop, scored


def test_a_span_stops_after_the_chunk_it_is_scoring(
    span: local.Span, worker: tuple[threading.Event, list[int]]
) -> None:
    _, scored = worker
    assert local._work_span(span) == [(0, 0, ChunkStats(100, 0, 0))]
    assert scored == [0]


def test_a_span_queued_before_the_stop_scores_nothing(
    span: local.Span, worker: tuple[threading.Event, list[int]]
) -> None:
    stop, scored = worker
    stop.set()
    assert local._work_span(span) == []
    assert scored == []


def test_a_span_left_alone_scores_every_chunk(
    span: local.Span, worker: tuple[threading.Event, list[int]]
) -> None:
    _, scored = worker
    local._state["stop"] = threading.Event()  # never set
    assert [index for _, index, _ in local._work_span(span)] == [0, 1, 2, 3, 4]
    assert scored == [0, 1, 2, 3, 4]
