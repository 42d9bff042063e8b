"""Chunks are aligned on multiples of chunk_rows whatever the file's blocks and row groups."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seaway.batch.inputs import InputFile, resolve_inputs
from seaway.batch.readers import plan_spans, read_chunks, read_span, row_groups
from seaway.errors import BatchInputError


def _file(tmp_path: Path, rows: int, row_group: int) -> InputFile:
    path = tmp_path / "data.parquet"
    table = pa.table({"id": list(range(rows)), "x": [float(i) for i in range(rows)]})
    pq.write_table(table, path, row_group_size=row_group)
    return resolve_inputs(str(path))[0]


@pytest.mark.parametrize("row_group", [1, 7, 100, 250, 1000])
@pytest.mark.parametrize("skip", [set(), {0}, {0, 1, 2}, {0, 1, 2, 4}, {1, 3}, {3, 4, 5, 6, 7}])
def test_chunks_hold_their_own_rows_whatever_is_skipped(
    tmp_path: Path, row_group: int, skip: set[int]
) -> None:
    file = _file(tmp_path, 730, row_group)
    chunks = dict(read_chunks(file, ["id"], [], 100, skip))
    assert sorted(chunks) == [i for i in range(8) if i not in skip]
    for index, table in chunks.items():
        assert table.column("id").to_pylist() == list(
            range(index * 100, min(730, index * 100 + 100))
        )


def test_csv_and_jsonl_chunks(tmp_path: Path) -> None:
    data = pd.DataFrame({"id": range(25), "text": [f"t{i}" for i in range(25)]})
    data.to_csv(tmp_path / "d.csv", index=False)
    data.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    for name in ("d.csv", "d.jsonl"):
        file = resolve_inputs(str(tmp_path / name))[0]
        chunks = list(read_chunks(file, ["id", "text"], ["id", "text"], 10, {1}))
        assert [index for index, _ in chunks] == [0, 2]
        assert [str(v) for v in chunks[1][1].column("id").to_pylist()] == [
            str(i) for i in range(20, 25)
        ]


def test_folders_skip_hidden_and_underscore_names(tmp_path: Path) -> None:
    for name in ("b.parquet", "a.parquet", "_SUCCESS", ".a.parquet.crc", "_tmp/c.parquet"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"id": [1]}), path) if name.endswith(
            ".parquet"
        ) else path.write_text("")
    files = resolve_inputs(str(tmp_path))
    assert [f.url.rsplit("/", 1)[1] for f in files] == ["a.parquet", "b.parquet"]
    assert {f.format for f in files} == {"parquet"}


@pytest.mark.parametrize("row_group", [1, 7, 100, 250, 333, 1000])
@pytest.mark.parametrize("longest", [1, 2, 3, 16])
@pytest.mark.parametrize("skip", [set(), {0}, {2, 3}, {7}, {1, 4, 6}])
def test_spans_read_by_workers_hold_the_same_chunks_as_the_driver_reads(
    tmp_path: Path, row_group: int, longest: int, skip: set[int]
) -> None:
    """Workers read their own Parquet chunks: the chunks, their rows and their indices are the
    ones the driver's reader gives (part names, row numbers and resumption depend on it)."""
    file = _file(tmp_path, 730, row_group)
    expected = dict(read_chunks(file, ["id", "x"], [], 100, skip))
    spans = plan_spans(row_groups(file), 100, skip, longest)
    found: dict[int, pa.Table] = {}
    for first, stop in spans:
        assert 1 <= stop - first <= longest
        for index, table in read_span(file, ["id", "x"], 100, first, stop):
            assert first <= index < stop and index not in found
            found[index] = table
    assert sorted(found) == sorted(expected)
    for index, table in found.items():
        assert table.equals(expected[index])


def test_long_spans_end_where_a_row_group_starts() -> None:
    """A worker decodes a span's first row group from its top: spans start where that wastes
    the fewest rows, when the file's layout allows it."""
    # row groups of 250 rows, chunks of 100: chunks 3 and 5 are the first in their groups
    spans = plan_spans([250, 250, 250, 250], 100, set(), 4)
    assert spans == [(0, 3), (3, 5), (5, 8), (8, 10)]
    # one big row group: nowhere better to cut, so spans are as long as allowed
    assert plan_spans([1000], 100, set(), 4) == [(0, 4), (4, 8), (8, 10)]
    assert plan_spans([1000], 100, {0, 5}, 3) == [(1, 4), (4, 5), (6, 9), (9, 10)]
    assert plan_spans([0, 10], 100, set(), 4) == [(0, 1)]
    assert plan_spans([], 100, set(), 4) == []


def test_a_span_of_a_corrupt_file_names_the_file(tmp_path: Path) -> None:
    file = _file(tmp_path, 730, 100)
    Path(file.url.removeprefix("file://")).write_bytes(b"PAR1 not really")
    with pytest.raises(BatchInputError, match=r"cannot read file://.*data\.parquet"):
        list(read_span(file, ["id"], 100, 0, 2))
