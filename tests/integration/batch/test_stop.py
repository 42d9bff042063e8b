"""A job whose worker is stuck in its model still answers SIGTERM, Ctrl-C and the scheduler: it
stops, records itself as interrupted (the command exits non-zero), and leaves no worker behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import batchmodels
import pytest

import seaway
from seaway.batch.schedule import Cron
from seaway.batch.scheduler import Scheduler, create_schedule
from seaway.types import JobStatus

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_driver_whose_worker_is_stuck_stops_on_a_signal(
    registry: seaway.Registry, tmp_path: Path, signum: signal.Signals
) -> None:
    batchmodels.register(batchmodels.Stuck(), "stuck", registry)
    batchmodels.frame(50).to_parquet(tmp_path / "in.parquet", index=False)
    stuck = tmp_path / "stuck-pid"
    out = tmp_path / "out"
    command = [sys.executable, "-m", "seaway", "batch", "run", "models:/stuck/1", "--trusted"]
    command += ["--input", str(tmp_path / "in.parquet"), "--output", str(out), "--workers", "1"]
    process = subprocess.Popen(
        command,
        env={**os.environ, "SEAWAY_TEST_STUCK": str(stuck)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not stuck.exists():  # the worker is in the model's call, for good
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the model was never called"
            time.sleep(0.05)
        worker = int(stuck.read_text())
        process.send_signal(signum)  # to the driver alone; its workers ignore these anyway
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode != 0, stderr
    job_id = json.loads((out / "_seaway_job.json").read_text())["job_id"]
    stopped = registry.jobs.get(job_id)
    assert stopped.status is JobStatus.INTERRUPTED
    assert f"--resume {job_id}" in (stopped.error or "")
    assert not _running(worker)  # killed, not left behind


def test_the_scheduler_interrupts_a_job_whose_worker_is_stuck(
    registry: seaway.Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It cancels a job through its progress reporter, which heard of chunks only: a job whose
    worker never finished one never heard the cancellation, and ``close`` waited for ever."""
    batchmodels.register(batchmodels.Stuck(), "stuck", registry)
    stuck = tmp_path / "stuck-pid"
    monkeypatch.setenv("SEAWAY_TEST_STUCK", str(stuck))
    create_schedule(
        registry,
        "nightly",
        cron="0 2 * * *",
        model="models:/stuck/1",
        input=str(tmp_path / "in.parquet"),
        output=str(tmp_path / "preds" / "{date}"),
        options={"workers": 1, "trusted": True},
    )
    schedule = registry.schedules.get("nightly")
    assert schedule.created_at is not None
    occurrence = Cron(schedule.cron, schedule.timezone).next(schedule.created_at)
    batchmodels.frame(50).to_parquet(tmp_path / "in.parquet", index=False)
    scheduler = Scheduler(registry, "s", poll_seconds=3600, clock=lambda: occurrence)
    scheduler.start()
    try:
        deadline = time.monotonic() + 120
        while not stuck.exists():
            assert time.monotonic() < deadline, "the model was never called"
            time.sleep(0.05)
        worker = int(stuck.read_text())
    finally:
        scheduler.close()
    (job,) = registry.jobs.list()
    assert job.status is JobStatus.INTERRUPTED
    assert not _running(worker)
