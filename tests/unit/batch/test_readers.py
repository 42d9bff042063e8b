"""Chunks are aligned on multiples of chunk_rows whatever the file's blocks and row groups."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seaway.batch.inputs import InputFile, resolve_inputs
from seaway.batch.readers import read_chunks


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
