"""The scheduler against a real registry (SQLite, and PostgreSQL where SEAWAY_TEST_POSTGRES_URL is
set): real jobs scoring small Parquet files with a registered scikit-learn model."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import batchmodels
import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import update

import seaway
from seaway.batch.schedule import Cron, render
from seaway.batch.scheduler import ScheduledRun, Scheduler, create_schedule, last_job
from seaway.config import Settings
from seaway.registry import Registry
from seaway.registry import tables as t
from seaway.registry.jobs import BatchJob, Schedule
from seaway.types import JobStatus

DAILY = "0 2 * * *"
FEATURES = ["age", "income", "score", "tenure"]


@pytest.fixture
def model(registry: Registry, tabular: tuple[pd.DataFrame, np.ndarray]) -> str:
    frame, target = tabular
    seaway.log_model(
        LogisticRegression().fit(frame, target),
        "fraud",
        sample_input=frame.head(),
        registry=registry,
    )
    registry.set_alias("fraud", "production", 1)
    return "models:/fraud@production"


def write_input(folder: Path, frame: pd.DataFrame, rows: int = 40) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = frame.head(rows).assign(id=range(rows))
    data.to_parquet(folder / "part-0.parquet", index=False)
    return folder


def first_occurrence(registry: Registry, name: str) -> datetime:
    """The first occurrence after the schedule was created (the first one that can run)."""
    schedule = registry.schedules.get(name)
    assert schedule.created_at is not None
    return Cron(schedule.cron, schedule.timezone).next(schedule.created_at)


def daily(
    registry: Registry,
    model: str,
    tmp_path: Path,
    name: str = "nightly",
    data: str = "data",
    **options: object,
) -> None:
    create_schedule(
        registry,
        name,
        cron=DAILY,
        model=model,
        input=str(tmp_path / data / "{date}"),
        output=str(tmp_path / "preds" / name / "{date}"),
        options={"workers": 1, "chunk_rows": 16, "keep": ["id"], **options},
    )


def jobs(registry: Registry) -> list[BatchJob]:
    return registry.jobs.list(limit=100)


def backdate(registry: Registry, name: str, when: datetime) -> None:
    """Pretend the schedule was created at ``when`` (for processes that use the real clock)."""
    with registry._begin() as conn:
        conn.execute(
            update(t.batch_schedules)
            .where(t.batch_schedules.c.name == name)
            .values(created_at=when)
        )


def test_a_due_occurrence_runs_and_is_recorded(
    registry: Registry, model: str, tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]
) -> None:
    daily(registry, model, tmp_path)
    occurrence = first_occurrence(registry, "nightly")
    write_input(tmp_path / "data" / render("{date}", occurrence), tabular[0])
    scheduler = Scheduler(registry, "one")

    assert scheduler.tick(occurrence - timedelta(seconds=1)) == []  # not yet
    runs = scheduler.tick(occurrence + timedelta(minutes=1))

    assert [(r.schedule, r.occurrence, r.status) for r in runs] == [
        ("nightly", occurrence, JobStatus.SUCCEEDED)
    ]
    job = registry.jobs.get(str(runs[0].job_id))
    assert (job.schedule, job.model_version, job.rows_out) == ("nightly", 1, 40)
    assert job.input == str(tmp_path / "data" / render("{date}", occurrence))
    assert job.output == str(tmp_path / "preds" / "nightly" / render("{date}", occurrence))
    assert (Path(job.output) / "_SUCCESS").is_file()
    assert pd.read_parquet(job.output)["id"].tolist() == list(range(40))
    schedule = registry.schedules.get("nightly")
    assert (schedule.last_occurrence, schedule.last_job_id) == (occurrence, job.job_id)
    assert last_job(registry, schedule) == job
    assert scheduler.tick(occurrence + timedelta(hours=3)) == []  # claimed: never again


def test_two_schedulers_run_one_occurrence_once(
    registry: Registry,
    model: str,
    tmp_path: Path,
    tabular: tuple[pd.DataFrame, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    daily(registry, model, tmp_path)
    occurrence = first_occurrence(registry, "nightly")
    write_input(tmp_path / "data" / render("{date}", occurrence), tabular[0])
    now = occurrence + timedelta(minutes=1)
    with Registry.from_settings(Settings.resolve()) as other:  # as a second process would
        # Both read the schedules before either claims: both find the occurrence due.
        both_looked = threading.Barrier(2, timeout=60)
        for reg in (registry, other):
            monkeypatch.setattr(reg.schedules, "list", _then_wait(reg.schedules.list, both_looked))
        schedulers = [Scheduler(registry, "a"), Scheduler(other, "b")]
        results: dict[str, list[ScheduledRun]] = {}

        def tick(scheduler: Scheduler) -> None:
            results[scheduler.claimer_id] = scheduler.tick(now)

        threads = [threading.Thread(target=tick, args=(s,)) for s in schedulers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert sorted(len(runs) for runs in results.values()) == [0, 1]
        assert [s.tick(now + timedelta(hours=1)) for s in schedulers] == [[], []]
    (job,) = jobs(registry)
    assert job.status is JobStatus.SUCCEEDED
    assert [r.job_id for runs in results.values() for r in runs] == [job.job_id]


def _then_wait(
    read: Callable[[], list[Schedule]], barrier: threading.Barrier
) -> Callable[[], list[Schedule]]:
    """``read``, whose first call returns only once the other scheduler has read too."""
    calls = []

    def wrapped() -> list[Schedule]:
        found = read()
        calls.append(1)
        if len(calls) == 1:
            barrier.wait()
        return found

    return wrapped


def test_downtime_runs_the_latest_missed_occurrence_once(
    registry: Registry, model: str, tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]
) -> None:
    daily(registry, model, tmp_path)
    first = first_occurrence(registry, "nightly")
    latest = first + timedelta(days=4)  # the scheduler was down for five occurrences
    for day in range(5):
        write_input(tmp_path / "data" / render("{date}", first + timedelta(days=day)), tabular[0])
    scheduler = Scheduler(registry, "back-from-downtime")

    runs = scheduler.tick(latest + timedelta(hours=5))
    assert [(r.occurrence, r.status) for r in runs] == [(latest, JobStatus.SUCCEEDED)]
    assert scheduler.tick(latest + timedelta(hours=6)) == []
    assert Scheduler(registry, "another").tick(latest + timedelta(hours=7)) == []
    (job,) = jobs(registry)
    assert job.input.endswith(render("{date}", latest))
    assert sorted(p.name for p in (tmp_path / "preds" / "nightly").iterdir()) == [
        render("{date}", latest)
    ]
    nxt = scheduler.tick(latest + timedelta(days=1, minutes=1))  # and on it goes
    assert [r.occurrence for r in nxt] == [latest + timedelta(days=1)]


def test_failures_are_recorded_and_the_scheduler_goes_on(
    registry: Registry, model: str, tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame = tabular[0]
    # no input folder for that date yet: the job cannot even start
    daily(registry, model, tmp_path, "a-missing-input", data="late")
    create_schedule(  # a row the model cannot take, with --on-error fail: fails while running
        registry,
        "b-bad-row",
        cron=DAILY,
        model=model,
        input=str(tmp_path / "bad"),
        output=str(tmp_path / "preds" / "bad" / "{date}"),
        options={"workers": 1, "chunk_rows": 16, "on_error": "fail"},
    )
    daily(registry, model, tmp_path, "c-fine")
    create_schedule(  # whose model is gone when it runs: no job record can be made
        registry,
        "d-model-gone",
        cron=DAILY,
        model="models:/fraud/1",
        input=str(tmp_path / "data" / "{date}"),
        output=str(tmp_path / "preds" / "gone" / "{date}"),
        options={"workers": 1},
    )
    occurrence = first_occurrence(registry, "c-fine")
    day = render("{date}", occurrence)
    write_input(tmp_path / "data" / day, frame)
    bad = frame.head(20).astype({"age": str})
    bad.loc[5, "age"] = "not a number"
    write_input(tmp_path / "bad", bad, rows=20)
    with registry._begin() as conn:
        conn.execute(
            update(t.batch_schedules)
            .where(t.batch_schedules.c.name == "d-model-gone")
            .values(model_uri="models:/ghost/1")
        )
    scheduler = Scheduler(registry, "s", poll_seconds=0.05, clock=lambda: occurrence)

    runs = {r.schedule: r for r in scheduler.tick(occurrence + timedelta(minutes=1))}

    assert {name: r.status for name, r in runs.items()} == {
        "a-missing-input": JobStatus.FAILED,
        "b-bad-row": JobStatus.FAILED,
        "c-fine": JobStatus.SUCCEEDED,
        "d-model-gone": None,
    }
    missing = registry.jobs.get(str(runs["a-missing-input"].job_id))
    assert missing.schedule == "a-missing-input" and missing.model_version == 1
    assert missing.error is not None and str(tmp_path / "late" / day) in missing.error
    assert f"seaway batch run --resume {missing.job_id}" in missing.error
    failed = registry.jobs.get(str(runs["b-bad-row"].job_id))
    assert failed.error is not None and "not a number" in failed.error
    assert registry.schedules.get("b-bad-row").last_job_id == failed.job_id
    gone = runs["d-model-gone"]
    assert gone.job_id is None and gone.error is not None and "ghost" in gone.error
    assert registry.schedules.get("d-model-gone").last_occurrence == occurrence  # claimed anyway

    # the input arrives late: the recorded job reruns by hand, on the model version pinned then
    write_input(tmp_path / "late" / day, frame)
    rerun = seaway.batch.run_job(registry, resume=missing.job_id)
    assert (rerun.job_id, rerun.status, rerun.rows_out) == (missing.job_id, JobStatus.SUCCEEDED, 40)

    # the loop keeps going whatever a tick meets
    scheduler.start()
    time.sleep(0.5)
    assert scheduler.join(0) is False
    scheduler.close()
    assert scheduler.join(0) is True


def test_stopping_interrupts_a_running_job_which_can_resume(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job is held in its second chunk (the first committed) while the scheduler stops, so
    the stop always lands mid-job, however fast the machine."""
    batchmodels.register(batchmodels.HoldAfterFirst(), "held", registry)
    frame = batchmodels.frame(500)  # 50 chunks of 10
    daily(registry, "models:/held/1", tmp_path, chunk_rows=10, trusted=True)
    occurrence = first_occurrence(registry, "nightly")
    folder = tmp_path / "data" / render("{date}", occurrence)
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "part-0.parquet", index=False)
    gate = tmp_path / "gate"
    monkeypatch.setenv("SEAWAY_TEST_GATE", str(gate))
    scheduler = Scheduler(registry, "s", poll_seconds=3600, clock=lambda: occurrence)
    scheduler.start()
    wait_for(lambda: Path(f"{gate}.called").exists())  # chunk 1 scored, chunk 2 held
    running = jobs(registry)
    scheduler.close()  # the held chunk never ends: the job stops without it
    gate.touch()

    (job,) = jobs(registry)
    assert job.status is JobStatus.INTERRUPTED and job.job_id == running[0].job_id
    assert 0 < job.rows_in < len(frame)
    assert registry.schedules.get("nightly").last_job_id == job.job_id
    done = seaway.batch.run_job(registry, resume=job.job_id)
    assert (done.status, done.rows_out) == (JobStatus.SUCCEEDED, len(frame))


def test_scheduler_processes_racing_run_each_occurrence_once(
    registry: Registry, model: str, tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]
) -> None:
    names = ["s1", "s2", "s3"]
    data = write_input(tmp_path / "data", tabular[0])
    for name in names:
        create_schedule(
            registry,
            name,
            cron="0 0 1 1 *",  # its latest occurrence is the same for both, whenever they start
            model=model,
            input=str(data),
            output=str(tmp_path / "preds" / name / "{yyyy}"),
            options={"workers": 1, "chunk_rows": 16},
        )
        backdate(registry, name, datetime.now(UTC) - timedelta(days=800))
    command = [sys.executable, "-m", "seaway", "scheduler", "--once"]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=240)[0] for process in processes]

    assert [process.returncode for process in processes] == [0, 0], outputs
    both = "\n".join(outputs)
    # Each process reads every schedule once, then claims and runs them one by one: the one that
    # comes second to a schedule still sees it due, and loses the claim.
    assert "claimed by another scheduler" in both, outputs
    reported = sorted(re.findall(r"^(s\d) \(\S+\): job \S+ succeeded$", both, re.MULTILINE))
    assert reported == names, outputs
    assert sorted((j.schedule, j.status, j.rows_out) for j in jobs(registry)) == [
        (name, JobStatus.SUCCEEDED, 40) for name in names
    ]


@pytest.mark.parametrize(("signals", "status"), [(1, "succeeded"), (2, "interrupted")])
def test_sigterm_lets_the_running_job_finish_and_a_second_interrupts_it(
    registry: Registry, tmp_path: Path, signals: int, status: str
) -> None:
    """The job is held in its model's call (a gate) until the signals were handled, so how fast
    it would otherwise run does not matter."""
    batchmodels.register(batchmodels.Gated(), "gated", registry)
    data = tmp_path / "data"
    data.mkdir()
    batchmodels.frame(3000).to_parquet(data / "part-0.parquet", index=False)
    create_schedule(
        registry,
        "yearly",
        cron="0 0 1 1 *",
        model="models:/gated/1",
        input=str(data),
        output=str(tmp_path / "preds" / "{yyyy}"),
        options={"workers": 1, "chunk_rows": 10, "trusted": True},
    )
    backdate(registry, "yearly", datetime.now(UTC) - timedelta(days=800))
    gate = tmp_path / "gate"
    process = subprocess.Popen(
        [sys.executable, "-m", "seaway", "scheduler", "--poll-interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SEAWAY_TEST_GATE": str(gate)},
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not Path(f"{gate}.called").exists():  # the job is in its model's call
            assert process.poll() is None and time.monotonic() < deadline, "never called"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.stdout is not None
        for line in process.stdout:  # until the scheduler has heard the first signal
            lines.append(line)
            if "stopping after the running job" in line:
                break
        if signals == 2:
            process.send_signal(signal.SIGTERM)
        else:
            gate.touch()
        output = "".join(lines) + process.communicate(timeout=120)[0]
    finally:
        gate.touch()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    (job,) = jobs(registry)
    assert job.status.value == status, output
    assert (job.rows_in == 3000) is (status == "succeeded"), job
    assert "stopping after the running job" in output


def test_serve_runs_the_scheduler_and_stops_it(
    registry: Registry, model: str, tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]
) -> None:
    create_schedule(
        registry,
        "yearly",
        cron="0 0 1 1 *",
        model=model,
        input=str(write_input(tmp_path / "data", tabular[0])),
        output=str(tmp_path / "preds" / "{yyyy}"),
        options={"workers": 1},
    )
    backdate(registry, "yearly", datetime.now(UTC) - timedelta(days=800))
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as handle:
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "seaway", "serve", model, "--scheduler", "--no-grpc"),
                *("--port", str(port), "--log-format", "text"),
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
    try:
        job = wait_for(
            lambda: [j for j in jobs(registry) if j.status is JobStatus.SUCCEEDED], timeout=120
        )[0]
        ready = httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=5)
        assert ready.status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        returncode = server.wait(60)
    assert returncode == 0, log.read_text()
    assert job.schedule == "yearly" and job.rows_out == 40
    assert re.search(r"scheduler \S+ stopped", log.read_text()), log.read_text()


def wait_for(
    found: Callable[[], list[BatchJob]], timeout: float = 60, every: float = 0.05
) -> list[BatchJob]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = found()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"nothing after {timeout} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _no_stray_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    stray = [
        th for th in threading.enumerate() if th not in before and th.name == "seaway-scheduler"
    ]
    assert not stray, stray
