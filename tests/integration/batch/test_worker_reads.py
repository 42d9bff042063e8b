"""Workers read their own Parquet chunks: the driver plans them from the files' metadata and
never decodes or hands one over, and the output is the one the driver's reading gave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import batchmodels
import pandas as pd
import pytest

import seaway
from seaway.batch import BatchOptions, job, local, run_job


def test_parquet_chunks_never_pass_through_the_driver(
    registry: seaway.Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batchmodels.register_slow_sum(registry)
    source = tmp_path / "in"
    source.mkdir()
    data = batchmodels.frame(1000)
    data.iloc[:600].to_parquet(source / "a.parquet", index=False, row_group_size=250)
    data.iloc[600:].to_parquet(source / "b.parquet", index=False, row_group_size=70)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the driver read a Parquet chunk")

    monkeypatch.setattr(job, "read_chunks", refuse)
    monkeypatch.setattr(local, "HandoffFolder", refuse)
    out = tmp_path / "out"
    options = BatchOptions(
        "models:/sum/1",
        str(source),
        str(out),
        keep=("id",),
        chunk_rows=100,
        workers=2,
        trusted=True,
    )
    done = run_job(registry, options)
    assert (done.rows_in, done.rows_out, done.rows_rejected) == (1000, 1000, 0)
    parts = sorted(p.name for p in out.glob("part-*.parquet"))
    assert parts == [f"part-00000-{i:06d}.parquet" for i in range(6)] + [
        f"part-00001-{i:06d}.parquet" for i in range(4)
    ]
    result = pd.concat([pd.read_parquet(out / name) for name in parts], ignore_index=True)
    assert result["id"].tolist() == list(range(1000))
    assert result["predict"].tolist() == (data["a"] + data["b"]).tolist()
