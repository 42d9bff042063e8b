"""A job killed at any moment (SIGKILL, workers and all) and run again gives every row once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import batchmodels
import pandas as pd

import seaway
from seaway.types import JobStatus

ROWS, CHUNK = 3000, 100


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "seaway", "batch", "run", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the kill takes the workers too
    )


def _kill_when(process: subprocess.Popen[str], chunks: Path, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if chunks.is_dir() and len(list(chunks.glob("*.json"))) >= at_least:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
            return
        if process.poll() is not None:
            raise AssertionError(f"the job ended before it was killed:\n{process.stderr.read()}")  # type: ignore[union-attr]
        time.sleep(0.05)
    raise AssertionError("no chunk was committed in time")


def test_killed_twice_then_resumed_scores_every_row_exactly_once(
    registry: seaway.Registry, tmp_path: Path
) -> None:
    batchmodels.register_slow_sum(registry)
    data = batchmodels.frame(ROWS)
    data.iloc[:1700].to_parquet(tmp_path / "in-a.parquet", index=False, row_group_size=250)
    data.iloc[1700:].to_parquet(tmp_path / "in-b.parquet", index=False, row_group_size=250)
    out = tmp_path / "out"
    env = {**os.environ, "SEAWAY_TEST_SLEEP": "0.15"}
    args = ["models:/sum/1", "--input", str(tmp_path / "in-*.parquet"), "--output", str(out)]
    args += ["--keep", "id", "--chunk-rows", str(CHUNK), "--workers", "2", "--trusted"]

    first = _start(args, env)
    _kill_when(first, out / "_chunks", at_least=4)
    job_id = json.loads((out / "_seaway_job.json").read_text())["job_id"]
    killed = registry.jobs.get(job_id)
    assert killed.status in (JobStatus.RUNNING, JobStatus.INTERRUPTED)
    assert not (out / "_SUCCESS").exists()

    second = _start(["--resume", job_id, "--workers", "2"], env)  # by job id
    done_before = len(list((out / "_chunks").glob("*.json")))
    _kill_when(second, out / "_chunks", at_least=done_before + 5)

    third = subprocess.run(  # by the same command and output folder
        [sys.executable, "-m", "seaway", "batch", "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert third.returncode == 0, third.stderr
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) == 30  # 17 + 13 chunks of 100 rows
    result = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    assert result["id"].tolist() == list(range(ROWS))  # every row once, in input order
    assert result["predict"].tolist() == (data["a"] + data["b"]).tolist()
    assert not list((out / "_tmp").glob("*")) if (out / "_tmp").exists() else True
    final = registry.jobs.get(job_id)
    assert final.status is JobStatus.SUCCEEDED
    assert (final.rows_in, final.rows_out, final.rows_rejected) == (ROWS, ROWS, 0)
    assert [job.job_id for job in registry.jobs.list()] == [job_id]  # one job, three attempts


def test_sigterm_records_the_job_as_interrupted(registry: seaway.Registry, tmp_path: Path) -> None:
    batchmodels.register_slow_sum(registry)
    batchmodels.frame(1500).to_parquet(tmp_path / "in.parquet", index=False)
    out = tmp_path / "out"
    env = {**os.environ, "SEAWAY_TEST_SLEEP": "0.2"}
    args = ["models:/sum/1", "--input", str(tmp_path / "in.parquet"), "--output", str(out)]
    args += ["--keep", "id", "--chunk-rows", str(CHUNK), "--workers", "2", "--trusted"]
    process = _start(args, env)
    deadline = time.monotonic() + 120
    while not list((out / "_chunks").glob("*.json")) if (out / "_chunks").exists() else True:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGTERM)  # as systemd or a terminal would: the whole group
    assert process.wait(60) != 0
    job_id = json.loads((out / "_seaway_job.json").read_text())["job_id"]
    stopped = registry.jobs.get(job_id)
    assert stopped.status is JobStatus.INTERRUPTED
    assert "stopped before the end" in (stopped.error or "")
    assert f"--resume {job_id}" in (stopped.error or "")
    done = subprocess.run(
        [sys.executable, "-m", "seaway", "batch", "run", "--resume", job_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = pd.concat([pd.read_parquet(p) for p in sorted(out.glob("part-*.parquet"))])
    assert result["id"].tolist() == list(range(1500))
