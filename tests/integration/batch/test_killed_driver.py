"""A driver killed without a word (SIGKILL): ``batch list``/``show`` call its job interrupted at
once (its lock in the output folder is free), and its running time still counts in the job's."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import batchmodels

import seaway
from seaway.types import JobStatus


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seaway", *args], capture_output=True, text=True, timeout=300
    )


def _wait(what: str, ready: object, process: subprocess.Popen[str]) -> None:
    """Until ``ready()`` holds (an event the driver causes), bounded."""
    deadline = time.monotonic() + 120
    while not ready():  # type: ignore[operator]
        if process.poll() is not None:
            raise AssertionError(f"the driver ended first:\n{process.stderr.read()}")  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_killed_driver_reads_interrupted_and_its_time_counts(
    registry: seaway.Registry, tmp_path: Path
) -> None:
    batchmodels.register(batchmodels.Gated(), "gated", registry)
    batchmodels.frame(200).to_parquet(tmp_path / "in.parquet", index=False)
    out, gate = tmp_path / "out", tmp_path / "gate"
    args = ["models:/gated/1", "--input", str(tmp_path / "in.parquet"), "--output", str(out)]
    args += ["--keep", "id", "--chunk-rows", "100", "--workers", "1", "--trusted"]
    driver = subprocess.Popen(
        [sys.executable, "-m", "seaway", "batch", "run", *args],
        env={**os.environ, "SEAWAY_TEST_GATE": str(gate)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, to clean up its workers at the end
    )
    try:
        _wait("a worker at the gate", lambda: Path(f"{gate}.called").exists(), driver)
        job_id = json.loads((out / "_seaway_job.json").read_text())["job_id"]
        # the heartbeat records the running time so far
        _wait("a heartbeat", lambda: registry.jobs.get(job_id).duration_s is not None, driver)
        alive = json.loads(_cli("batch", "show", job_id, "--json").stdout)
        assert alive["status"] == "running"

        os.kill(driver.pid, signal.SIGKILL)  # the driver alone: its forked worker lives on
        driver.wait(30)
        shown = json.loads(_cli("batch", "show", job_id, "--json").stdout)
        assert shown["status"] == "interrupted"
        assert f"--resume {job_id}" in shown["error"]
        listed = json.loads(_cli("batch", "list", "--status", "interrupted", "--json").stdout)
        assert [job["job_id"] for job in listed] == [job_id]
        assert json.loads(_cli("batch", "list", "--status", "running", "--json").stdout) == []
        assert "interrupted" in _cli("batch", "list").stdout
        killed_time = registry.jobs.get(job_id).duration_s
        assert killed_time is not None and killed_time > 0
    finally:
        with contextlib.suppress(ProcessLookupError):  # its workers too
            os.killpg(driver.pid, signal.SIGKILL)

    gate.touch()
    done = _cli("batch", "run", "--resume", job_id)
    assert done.returncode == 0, done.stderr
    final = registry.jobs.get(job_id)
    assert final.status is JobStatus.SUCCEEDED and final.rows_out == 200
    # every attempt's time: the killed one's and the resumed one's
    assert final.duration_s is not None and final.duration_s > killed_time
    assert json.loads(_cli("batch", "show", job_id, "--json").stdout)["status"] == "succeeded"
