"""The scheduler: runs the batch jobs that schedules make due, once per occurrence, however many
schedulers run.

Each tick, for every enabled schedule, the scheduler asks which occurrence is due
(:func:`seaway.batch.schedule.due`: only the latest, so a scheduler back from downtime runs a
schedule once, not once per missed occurrence), *claims* it in the registry (an insert whose
primary key is (schedule, occurrence): of two schedulers racing, exactly one wins), runs the job
with :func:`seaway.batch.run_job`, and records the job id on the claim. Jobs run one after the
other, in the thread that ticks; each job spreads over its own worker processes.

A job that fails is recorded as failed (by ``run_job`` once the job has started; by the scheduler
when it could not even start, say its input folder does not exist yet), logged, and never stops
the scheduler; nothing retries it: ``seaway batch run --resume JOB_ID`` runs it again by hand.

Stopping: :meth:`Scheduler.stop` lets the running job finish and starts no other;
``stop(cancel_running=True)`` also interrupts the running job after its current chunks (it is
recorded as interrupted, and ``seaway batch run --resume JOB_ID`` continues it).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from seaway.batch.job import BatchOptions, run_job
from seaway.batch.output import OutputFolder
from seaway.batch.progress import LogLines, Progress
from seaway.batch.schedule import Cron, due, new_schedule, options_for
from seaway.errors import ArtifactStoreError, InvalidInputError, JobCancelledError, NotFoundError
from seaway.registry import Registry
from seaway.registry.jobs import BatchJob, Schedule
from seaway.types import JobStatus

log = logging.getLogger("seaway.batch.scheduler")

__all__ = [
    "JobCancelledError",
    "ScheduledRun",
    "Scheduler",
    "create_schedule",
    "last_job",
    "next_run",
]


@dataclass(frozen=True)
class ScheduledRun:
    """What one tick did for one schedule."""

    schedule: str
    occurrence: datetime
    job_id: str | None
    status: JobStatus | None
    error: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "schedule": self.schedule,
            "occurrence": self.occurrence.isoformat(),
            "job_id": self.job_id,
            "status": None if self.status is None else self.status.value,
            "error": self.error,
        }


def create_schedule(
    registry: Registry,
    name: str,
    *,
    cron: str,
    model: str,
    input: str,
    output: str,
    timezone: str = "UTC",
    options: Mapping[str, Any] | None = None,
    enabled: bool = True,
) -> Schedule:
    """Check a schedule (cron, timezone, templates and options, as
    :func:`seaway.batch.schedule.new_schedule` does; the model must resolve in this registry) and
    store it."""
    schedule = new_schedule(
        name,
        cron=cron,
        model=model,
        input=input,
        output=output,
        timezone=timezone,
        options=options,
        enabled=enabled,
    )
    registry.resolve(schedule.model_uri)  # NotFoundError naming the model, alias or version
    return registry.schedules.create(schedule)


def next_run(schedule: Schedule, now: datetime) -> datetime | None:
    """When the schedule runs next (None while it is disabled)."""
    if not schedule.enabled:
        return None
    return Cron(schedule.cron, schedule.timezone).next(now)


def default_claimer_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    """Runs due occurrences; see the module docstring. ``clock`` returns an aware datetime."""

    def __init__(
        self,
        registry: Registry,
        claimer_id: str | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        poll_seconds: float = 30.0,
        progress_every: float = 60.0,
    ) -> None:
        self.registry = registry
        self.claimer_id = claimer_id or default_claimer_id()
        self.poll_seconds = poll_seconds
        self._clock = clock or (lambda: datetime.now(UTC))
        self._progress_every = progress_every
        self._stopping = threading.Event()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- one pass -------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[ScheduledRun]:
        """Claim and run what is due at ``now`` (default: the clock); what each run did."""
        now = now or self._clock()
        runs: list[ScheduledRun] = []
        for schedule in self.registry.schedules.list():
            if self._stopping.is_set():
                break
            if not schedule.enabled:
                continue
            try:
                occurrence = due(schedule, now)
                if occurrence is None:
                    continue
                if not self.registry.schedules.claim(schedule.name, occurrence, self.claimer_id):
                    log.info(
                        "schedule %s: %s was claimed by another scheduler",
                        schedule.name,
                        occurrence.isoformat(),
                    )
                    continue
            except Exception:
                log.exception("schedule %s: cannot check what is due", schedule.name)
                continue
            runs.append(self._run(schedule, occurrence))
        return runs

    def _run(self, schedule: Schedule, occurrence: datetime) -> ScheduledRun:
        started = time.monotonic()
        options: BatchOptions | None = None
        try:
            options = options_for(schedule, occurrence)
            log.info(
                "schedule %s: running the %s occurrence: %s %s -> %s",
                schedule.name,
                occurrence.isoformat(),
                options.model,
                options.input,
                options.output,
            )
            job = run_job(
                self.registry,
                options,
                schedule=schedule.name,
                progress=_Watched(LogLines(self._progress_every), self._cancel),
            )
        except BaseException as exc:
            failed = self._job_after(schedule, options, exc, time.monotonic() - started)
            if failed is not None:
                self._record(schedule, occurrence, failed)
            if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, JobCancelledError):
                raise
            log.error(
                "schedule %s: the %s occurrence: %s: %s",
                schedule.name,
                occurrence.isoformat(),
                f"job {failed.job_id} {failed.status.value}" if failed else "could not start",
                exc,
            )
            return ScheduledRun(
                schedule.name,
                occurrence,
                failed.job_id if failed else None,
                failed.status if failed else None,
                str(exc) or type(exc).__name__,
            )
        self._record(schedule, occurrence, job)
        log.info(
            "schedule %s: job %s %s: %s of %s rows scored -> %s",
            schedule.name,
            job.job_id,
            job.status.value,
            f"{job.rows_out:,}",
            f"{job.rows_in:,}",
            job.output,
        )
        return ScheduledRun(schedule.name, occurrence, job.job_id, job.status)

    def _record(self, schedule: Schedule, occurrence: datetime, job: BatchJob) -> None:
        try:
            self.registry.schedules.record_job(schedule.name, occurrence, job.job_id)
        except Exception:
            log.exception("schedule %s: cannot record job %s", schedule.name, job.job_id)

    def _job_after(
        self,
        schedule: Schedule,
        options: BatchOptions | None,
        exc: BaseException,
        seconds: float,
    ) -> BatchJob | None:
        """The job record of a run that raised: the one ``run_job`` created (its output folder's
        manifest names it), else a failed record written here, when the model resolves."""
        if options is None:
            return None
        try:
            manifest = OutputFolder(options.output, options.output_format).read_manifest()
            if manifest is not None:
                job = self.registry.jobs.get(str(manifest.get("job_id")))
                if job.schedule == schedule.name and job.output == options.output:
                    return job
        except Exception:
            log.debug("no job record in %s", options.output, exc_info=True)
        if not isinstance(exc, Exception):
            return None
        try:
            record = self.registry.resolve(options.model)
            job = self.registry.jobs.create(
                model_uri=options.model,
                model_name=record.name,
                model_version=record.version,
                input=options.input,
                output=options.output,
                params=options.params(),
                schedule=schedule.name,
            )
            return self.registry.jobs.finish(
                job.job_id,
                JobStatus.FAILED,
                rows_in=0,
                rows_out=0,
                rows_rejected=0,
                seconds=seconds,
                error=f"the scheduler could not start it: {exc}; once that is fixed, run it with "
                f"'seaway batch run --resume {job.job_id}'",
            )
        except Exception:
            log.exception("schedule %s: cannot record the failure", schedule.name)
            return None

    # ---- running until stopped ------------------------------------------------------------------

    def run_forever(self, poll_seconds: float | None = None) -> None:
        """Tick every ``poll_seconds`` until :meth:`stop`; an error in a tick is logged, never
        fatal."""
        poll = self.poll_seconds if poll_seconds is None else poll_seconds
        log.info("scheduler %s: checking the schedules every %s s", self.claimer_id, poll)
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("scheduler: a tick failed; trying again in %s s", poll)
            self._stopping.wait(poll)
        log.info("scheduler %s stopped", self.claimer_id)

    def start(self) -> None:
        """Run :meth:`run_forever` in a background thread (``seaway serve --scheduler``)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self.run_forever, name="seaway-scheduler", daemon=True
        )
        self._thread.start()

    def stop(self, *, cancel_running: bool = False) -> None:
        """Start no other job; with ``cancel_running``, interrupt the running one too. Returns at
        once: :meth:`join` waits."""
        self._stopping.set()
        if cancel_running:
            self._cancel.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the background thread; True once it has ended (or never started)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def close(self) -> None:
        """Stop now (interrupting a running job after its current chunks) and wait."""
        self.stop(cancel_running=True)
        self.join()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()


class _Watched:
    """A job's progress reporter that interrupts the job once ``cancel`` is set."""

    def __init__(self, inner: Progress, cancel: threading.Event) -> None:
        self._inner = inner
        self._cancel = cancel

    def update(self, rows: int, fraction: float | None) -> None:
        if self._cancel.is_set():
            raise JobCancelledError("stopped by the scheduler")
        self._inner.update(rows, fraction)

    def close(self) -> None:
        self._inner.close()


def last_job(registry: Registry, schedule: Schedule) -> BatchJob | None:
    """The job of the schedule's latest claimed occurrence, if it has one (while it runs, its
    output folder's manifest names it)."""
    try:
        if schedule.last_job_id is not None:
            return registry.jobs.get(schedule.last_job_id)
        if schedule.last_occurrence is None:
            return None
        options = options_for(schedule, schedule.last_occurrence)
        manifest = OutputFolder(options.output, options.output_format).read_manifest()
        if manifest is None:
            return None
        job = registry.jobs.get(str(manifest.get("job_id")))
    except (NotFoundError, InvalidInputError, ArtifactStoreError, OSError):
        return None
    return job if job.schedule == schedule.name else None
