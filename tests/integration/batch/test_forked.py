"""Workers forked from the zygote that ``seaway batch run`` starts before its imports
(``batch/forked.py``): the same output, counts and failures as the driver's own workers, and the
driver loads no model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import batchmodels
import pandas as pd
import pyarrow.parquet as pq
import pytest

import seaway
from seaway.batch import BatchOptions, forked, local, run_job
from seaway.errors import BatchInputError, BatchWorkerError, RowRejectedError
from seaway.types import JobStatus

pytestmark = pytest.mark.skipif(not forked._enabled(), reason="the zygote forks on Linux only")


@pytest.fixture
def zygote(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process as ``seaway batch run``: the zygote started early; the driver must not load
    the model (a build here fails the test)."""

    def refuse(self: local.WorkerSpec) -> Any:
        raise AssertionError("the driver loaded the model")

    monkeypatch.setattr(local.WorkerSpec, "build", refuse)
    forked.start_early()
    assert forked.available()
    yield
    forked._early.clear()


def _options(source: Path, out: Path, **extra: Any) -> BatchOptions:
    settings: dict[str, Any] = {"keep": ("id",), "chunk_rows": 100, "workers": 2, "trusted": True}
    settings.update(extra)
    return BatchOptions("models:/sum/1", str(source), str(out), **settings)


def test_forked_workers_score_parquet_and_csv(
    zygote: None, registry: seaway.Registry, tmp_path: Path
) -> None:
    batchmodels.register_slow_sum(registry)
    data = batchmodels.frame(1000)
    for fmt in ("parquet", "csv"):
        source = tmp_path / f"in.{fmt}"
        if fmt == "parquet":
            data.to_parquet(source, index=False, row_group_size=130)
        else:
            data.to_csv(source, index=False)
        out = tmp_path / f"out-{fmt}"
        done = run_job(registry, _options(source, out))
        assert (done.rows_in, done.rows_out, done.rows_rejected) == (1000, 1000, 0)
        parts = sorted(out.glob("part-*.parquet"))
        assert [p.name for p in parts] == [f"part-00000-{i:06d}.parquet" for i in range(10)]
        result = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        assert result["id"].astype(int).tolist() == list(range(1000))
        assert result["predict"].tolist() == (data["a"] + data["b"]).tolist()


def test_a_failure_counts_what_the_folder_holds_and_names_the_first_bad_row(
    zygote: None, registry: seaway.Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batchmodels.register_slow_sum(registry)
    source = tmp_path / "in.parquet"
    batchmodels.frame(3000).to_parquet(source, index=False, row_group_size=100)
    column = pq.ParquetFile(source).metadata.row_group(20).column(1)  # rows 2000-2099
    data = bytearray(source.read_bytes())
    data[column.data_page_offset : column.data_page_offset + column.total_compressed_size] = (
        b"\xff" * column.total_compressed_size
    )
    source.write_bytes(bytes(data))
    monkeypatch.setenv("SEAWAY_TEST_SLEEP", "0.05")
    out = tmp_path / "out"
    with pytest.raises(BatchInputError, match="cannot read"):
        run_job(registry, _options(source, out))
    job = registry.jobs.list()[0]
    assert job.status is JobStatus.FAILED
    markers = [json.loads(p.read_text()) for p in (out / "_chunks").glob("*.json")]
    assert 0 < job.rows_in == sum(m["rows_in"] for m in markers) < 3000
    rows_out = sum(pq.ParquetFile(p).metadata.num_rows for p in out.glob("part-*.parquet"))
    assert job.rows_out == rows_out

    bad = batchmodels.frame(1000)
    bad["a"] = bad["a"].astype(object)
    bad.loc[[150, 720], "a"] = "x"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(RowRejectedError, match=r"row 150 of .*bad\.csv was rejected"):
        run_job(registry, _options(tmp_path / "bad.csv", tmp_path / "out2", on_error="fail"))


def test_a_killed_worker_fails_the_job_with_a_way_to_resume(
    zygote: None, registry: seaway.Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batchmodels.register(batchmodels.Stuck(), "stuck", registry)
    batchmodels.frame(50).to_parquet(tmp_path / "in.parquet", index=False)
    stuck = tmp_path / "stuck-pid"
    monkeypatch.setenv("SEAWAY_TEST_STUCK", str(stuck))

    def kill_when_called() -> None:  # the worker is in its model's call, for good: kill it
        while not stuck.exists():
            time.sleep(0.05)
        os.kill(int(stuck.read_text()), signal.SIGKILL)

    threading.Thread(target=kill_when_called, daemon=True).start()
    options = BatchOptions(
        "models:/stuck/1",
        str(tmp_path / "in.parquet"),
        str(tmp_path / "out"),
        workers=1,
        trusted=True,
    )
    with pytest.raises(BatchWorkerError, match="--resume"):
        run_job(registry, options)
    assert registry.jobs.list()[0].status is JobStatus.FAILED


def test_a_stop_cancels_the_items_still_waiting(zygote: None, tmp_path: Path) -> None:
    """They never started: ``wait`` must see them done, or a failing job waits for ever."""
    spec = local.WorkerSpec(
        str(tmp_path / "no-package"),
        None,
        False,
        "m",
        1,
        (),
        False,
        (),
        (),
        str(tmp_path),
        "parquet",
        "skip",
    )
    pool = forked.ZygotePool(spec, 1)
    gate = tmp_path / "gate"
    try:
        busy = pool.submit(batchmodels.wait_for_file, str(gate))
        deadline = time.monotonic() + 60
        while not busy.running():  # sent to the worker (the pool's thread does it)
            assert time.monotonic() < deadline
            time.sleep(0.01)
        waiting = [pool.submit(batchmodels.wait_for_file, str(gate)) for _ in range(3)]
        pool.stop()
        done, not_done = futures.wait(waiting, timeout=60)
        assert not not_done and all(future.cancelled() for future in done)
        gate.touch()
        assert busy.result(timeout=60) == str(gate)
    finally:
        gate.touch()
        pool.shutdown(wait=True)


def test_the_early_start_waits_for_no_heavy_import() -> None:
    """``seaway batch run`` starts the zygote before the CLI's imports: what that takes must not
    import the packaging layer, pandas or pyarrow first (the zygote would start that much later)."""
    script = (
        "import sys, json, seaway.batch.forked; "
        "print(json.dumps([m for m in ('seaway.packaging', 'pandas', 'pyarrow', 'sklearn') "
        "if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout) == []
