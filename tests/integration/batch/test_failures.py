"""A job that fails part way: its record counts what the folder holds, and its resumption checks
that the input is still the one its committed chunks were cut from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import batchmodels
import pyarrow.parquet as pq
import pytest

import seaway
from seaway.batch import BatchOptions, readers, run_job
from seaway.batch.inputs import BatchInputError
from seaway.errors import ConflictError
from seaway.types import JobStatus

ROWS, CHUNK = 5000, 200
BAD_ROW = 4000  # past the first 64 KiB, which the checks before the job read


def _bad_csv(path: Path) -> None:
    """A CSV with a row of two fields too many: a parse error far into the file."""
    lines = batchmodels.frame(ROWS).to_csv(index=False).splitlines()
    lines[1 + BAD_ROW] += ",1,2"
    path.write_text("\n".join(lines) + "\n")


def _bad_parquet(path: Path) -> None:
    """A Parquet file whose row group 10 (rows 2000-2199) has a corrupt page of column a."""
    batchmodels.frame(ROWS).to_parquet(path, index=False, row_group_size=CHUNK)
    column = pq.ParquetFile(path).metadata.row_group(10).column(1)
    data = bytearray(path.read_bytes())
    start, size = column.data_page_offset, column.total_compressed_size
    data[start : start + size] = b"\xff" * size
    path.write_bytes(bytes(data))


def _committed(out: Path) -> tuple[int, int]:
    """Rows in the part files, and rows in according to the chunk markers."""
    rows_out = sum(pq.ParquetFile(p).metadata.num_rows for p in out.glob("part-*.parquet"))
    markers = [json.loads(p.read_text()) for p in (out / "_chunks").glob("*.json")]
    return rows_out, sum(m["rows_in"] for m in markers)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_after_a_mid_run_failure_the_record_counts_every_committed_row(
    registry: seaway.Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """The chunks being scored when the reader fails commit afterwards: they count too."""
    batchmodels.register_slow_sum(registry)
    source = tmp_path / f"in.{fmt}"
    (_bad_csv if fmt == "csv" else _bad_parquet)(source)
    monkeypatch.setattr(readers, "_BLOCK_BYTES", 16 << 10)  # the CSV's bad row: a later block
    # slow chunks: the reader reaches the bad row while chunks are still being scored
    monkeypatch.setenv("SEAWAY_TEST_SLEEP", "0.3")
    out = tmp_path / "out"
    options = BatchOptions(
        "models:/sum/1",
        str(source),
        str(out),
        keep=("id",),
        chunk_rows=CHUNK,
        workers=2,
        trusted=True,
    )
    with pytest.raises(BatchInputError, match="cannot read"):
        run_job(registry, options)
    job_id = json.loads((out / "_seaway_job.json").read_text())["job_id"]
    job = registry.jobs.get(job_id)
    assert job.status is JobStatus.FAILED
    rows_out, rows_in = _committed(out)
    assert rows_out > 0
    assert (job.rows_out, job.rows_in, job.rows_rejected) == (rows_out, rows_in, 0)


def _failed_csv_job(registry: seaway.Registry, tmp_path: Path) -> tuple[Path, Path, str]:
    batchmodels.register_slow_sum(registry)
    source = tmp_path / "in.csv"
    _bad_csv(source)
    out = tmp_path / "out"
    options = BatchOptions(
        "models:/sum/1", str(source), str(out), chunk_rows=CHUNK, workers=1, trusted=True
    )
    with pytest.raises(BatchInputError):
        run_job(registry, options)
    return source, out, json.loads((out / "_seaway_job.json").read_text())["job_id"]


def test_a_job_whose_input_changed_is_not_resumed_unless_asked(
    registry: seaway.Registry, tmp_path: Path
) -> None:
    source, out, job_id = _failed_csv_job(registry, tmp_path)
    batchmodels.frame(ROWS).to_csv(source, index=False)  # the bad row fixed: another size
    with pytest.raises(ConflictError, match=f"input file .*in.csv changed since job {job_id}"):
        run_job(registry, resume=job_id)
    rerun = BatchOptions("models:/sum/1", str(source), str(out), chunk_rows=CHUNK, trusted=True)
    with pytest.raises(ConflictError, match="--allow-changed-input"):
        run_job(registry, rerun)  # the same command again is a resumption too
    done = run_job(registry, resume=job_id, allow_changed_input=True)
    assert done.status is JobStatus.SUCCEEDED and done.rows_out == ROWS


def test_a_rewrite_of_the_same_size_is_noticed_by_its_modification_time(
    registry: seaway.Registry, tmp_path: Path
) -> None:
    source, _, job_id = _failed_csv_job(registry, tmp_path)
    data = source.read_bytes()
    stat = source.stat()
    source.write_bytes(data.replace(b",1,2\n", b"\n5,2\n", 1))  # same size, other content
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert source.stat().st_size == stat.st_size
    with pytest.raises(ConflictError, match="was modified at"):
        run_job(registry, resume=job_id)


def test_the_cli_names_the_changed_file_and_the_way_around(
    registry: seaway.Registry, tmp_path: Path
) -> None:
    source, out, job_id = _failed_csv_job(registry, tmp_path)
    source.unlink()
    refused = subprocess.run(
        [sys.executable, "-m", "seaway", "batch", "run", "--resume", job_id],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 1
    message = " ".join(refused.stderr.split())
    assert f"{source.name} changed since job {job_id}" in message
    assert "no longer exists" in message and "--allow-changed-input" in message
    assert registry.jobs.get(job_id).status is JobStatus.FAILED  # untouched
    assert not (out / "_SUCCESS").exists()
