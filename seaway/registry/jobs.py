"""Batch job records and schedules in the registry database.

``Registry.jobs`` and ``Registry.schedules`` are the two stores here. A job record is written when
a job starts and updated as it runs (a heartbeat with the row counts so far), so ``seaway batch
list`` shows live progress, and a job whose process died reads as ``interrupted``. Schedules hold
what to run and when; ``claim`` inserts one row per (schedule, occurrence), whose primary key is
the lock that keeps two schedulers from running the same occurrence.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from seaway.errors import ConflictError, InvalidInputError, NotFoundError
from seaway.registry import tables as t
from seaway.registry.lineage import current_user
from seaway.registry.uri import validate_name
from seaway.types import JobStatus

Begin = Callable[[], contextlib.AbstractContextManager[Connection]]

#: A running job whose heartbeat is older than this is shown as interrupted.
STALE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class BatchJob:
    job_id: str
    model_uri: str
    model_name: str
    model_version: int
    input: str
    output: str
    params: dict[str, Any]
    status: JobStatus
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    error: str | None = None
    schedule: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "status": self.status.value,
            "model": f"models:/{self.model_name}/{self.model_version}",
            "model_uri": self.model_uri,
            "input": self.input,
            "output": self.output,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_rejected": self.rows_rejected,
            "duration_s": self.duration_s,
            "error": self.error,
            "schedule": self.schedule,
            "params": self.params,
            "created_by": self.created_by,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


@dataclass(frozen=True)
class Schedule:
    name: str
    cron: str
    model_uri: str
    input: str
    output: str
    params: dict[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    enabled: bool = True
    created_at: datetime | None = None
    created_by: str | None = None
    #: the newest occurrence some scheduler has claimed, and the job it started
    last_occurrence: datetime | None = None
    last_job_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cron": self.cron,
            "timezone": self.timezone,
            "model_uri": self.model_uri,
            "input": self.input,
            "output": self.output,
            "params": self.params,
            "enabled": self.enabled,
            "created_at": _iso(self.created_at),
            "created_by": self.created_by,
            "last_occurrence": _iso(self.last_occurrence),
            "last_job_id": self.last_job_id,
        }


class JobStore:
    def __init__(self, begin: Begin, read: Begin | None = None) -> None:
        self._begin = begin
        self._read = read or begin  # transactions that only read (no SQLite write lock)

    def create(
        self,
        *,
        model_uri: str,
        model_name: str,
        model_version: int,
        input: str,
        output: str,
        params: Mapping[str, Any],
        schedule: str | None = None,
    ) -> BatchJob:
        job_id = f"job-{datetime.now(UTC):%Y%m%d}-{uuid.uuid4().hex[:8]}"
        with self._begin() as conn:
            conn.execute(
                insert(t.batch_jobs).values(
                    job_id=job_id,
                    model_uri=model_uri,
                    model_name=model_name,
                    model_version=model_version,
                    input=input,
                    output=output,
                    params=dict(params),
                    status=JobStatus.PENDING.value,
                    rows_in=0,
                    rows_out=0,
                    rows_rejected=0,
                    schedule=schedule,
                    created_by=current_user(),
                    created_at=_now(),
                )
            )
            return self._get(conn, job_id)

    def get(self, job_id: str) -> BatchJob:
        with self._read() as conn:
            return self._get(conn, job_id)

    def list(self, *, limit: int = 50, status: JobStatus | None = None) -> list[BatchJob]:
        """Newest first."""
        query = select(t.batch_jobs).order_by(
            t.batch_jobs.c.created_at.desc(), t.batch_jobs.c.job_id.desc()
        )
        if status is not None:
            query = query.where(t.batch_jobs.c.status == status.value)
        with self._read() as conn:
            return [_job(row) for row in conn.execute(query.limit(limit)).mappings()]

    def start(self, job_id: str) -> BatchJob:
        """Mark a job running (again, when resumed)."""
        now = _now()
        with self._begin() as conn:
            self._get(conn, job_id)
            conn.execute(
                update(t.batch_jobs)
                .where(t.batch_jobs.c.job_id == job_id)
                .values(
                    status=JobStatus.RUNNING.value,
                    started_at=now,
                    heartbeat_at=now,
                    finished_at=None,
                    error=None,
                )
            )
            return self._get(conn, job_id)

    def progress(
        self,
        job_id: str,
        *,
        rows_in: int,
        rows_out: int,
        rows_rejected: int,
        duration_s: float | None = None,
    ) -> None:
        """Heartbeat with the totals so far (over every attempt): rows and, when given, the
        running time of every attempt up to now, so a killed attempt's time is not lost."""
        values: dict[str, Any] = {
            "rows_in": rows_in,
            "rows_out": rows_out,
            "rows_rejected": rows_rejected,
            "heartbeat_at": _now(),
        }
        if duration_s is not None:
            values["duration_s"] = duration_s
        with self._begin() as conn:
            conn.execute(
                update(t.batch_jobs).where(t.batch_jobs.c.job_id == job_id).values(**values)
            )

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        rows_in: int,
        rows_out: int,
        rows_rejected: int,
        seconds: float,
        error: str | None = None,
        before: float | None = None,
    ) -> BatchJob:
        """Record how an attempt ended; ``seconds`` is this attempt's running time, ``before``
        that of the attempts before it, as read when this one started (the heartbeats have
        written the running total since); None: the record's own figure."""
        with self._begin() as conn:
            job = self._get(conn, job_id)
            if before is None:
                before = job.duration_s or 0.0
            conn.execute(
                update(t.batch_jobs)
                .where(t.batch_jobs.c.job_id == job_id)
                .values(
                    status=status.value,
                    rows_in=rows_in,
                    rows_out=rows_out,
                    rows_rejected=rows_rejected,
                    error=error,
                    finished_at=_now(),
                    heartbeat_at=None,
                    duration_s=before + seconds,
                )
            )
            return self._get(conn, job_id)

    def _get(self, conn: Connection, job_id: str) -> BatchJob:
        row = (
            conn.execute(select(t.batch_jobs).where(t.batch_jobs.c.job_id == job_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFoundError(
                f"no batch job {job_id!r}; 'seaway batch list' shows the jobs this registry knows"
            )
        return _job(row)


class ScheduleStore:
    def __init__(self, begin: Begin, read: Begin | None = None) -> None:
        self._begin = begin
        self._read = read or begin  # transactions that only read (no SQLite write lock)

    def create(self, schedule: Schedule) -> Schedule:
        validate_name(schedule.name)
        with self._begin() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(t.batch_schedules).values(
                            name=schedule.name,
                            cron=schedule.cron,
                            timezone=schedule.timezone,
                            model_uri=schedule.model_uri,
                            input=schedule.input,
                            output=schedule.output,
                            params=dict(schedule.params),
                            enabled=schedule.enabled,
                            created_at=_now(),
                            created_by=current_user(),
                        )
                    )
            except IntegrityError:
                raise ConflictError(
                    f"a schedule named {schedule.name!r} exists already; delete it first or "
                    "pick another name"
                ) from None
            return self._get(conn, schedule.name)

    def get(self, name: str) -> Schedule:
        with self._read() as conn:
            return self._get(conn, name)

    def list(self) -> list[Schedule]:
        with self._read() as conn:
            names = conn.execute(
                select(t.batch_schedules.c.name).order_by(t.batch_schedules.c.name)
            ).scalars()
            return [self._get(conn, name) for name in list(names)]

    def delete(self, name: str) -> Schedule:
        with self._begin() as conn:
            schedule = self._get(conn, name)
            conn.execute(delete(t.batch_schedules).where(t.batch_schedules.c.name == name))
            return schedule

    def claim(self, name: str, occurrence: datetime, claimer: str) -> bool:
        """Take an occurrence for this scheduler; False when another one took it first."""
        if occurrence.tzinfo is None:
            raise InvalidInputError("an occurrence must carry its timezone")
        with self._begin() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(t.batch_runs).values(
                            schedule=name,
                            occurrence=occurrence.astimezone(UTC),
                            claimed_at=_now(),
                            claimed_by=claimer[:200],
                        )
                    )
            except IntegrityError:
                return False
            return True

    def record_job(self, name: str, occurrence: datetime, job_id: str) -> None:
        with self._begin() as conn:
            conn.execute(
                update(t.batch_runs)
                .where(
                    t.batch_runs.c.schedule == name,
                    t.batch_runs.c.occurrence == occurrence.astimezone(UTC),
                )
                .values(job_id=job_id)
            )

    def _get(self, conn: Connection, name: str) -> Schedule:
        row = (
            conn.execute(select(t.batch_schedules).where(t.batch_schedules.c.name == name))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFoundError(
                f"no batch schedule {name!r}; 'seaway batch schedule list' shows them"
            )
        last = conn.execute(
            select(t.batch_runs.c.occurrence, t.batch_runs.c.job_id).where(
                t.batch_runs.c.schedule == name,
                t.batch_runs.c.occurrence
                == select(func.max(t.batch_runs.c.occurrence))
                .where(t.batch_runs.c.schedule == name)
                .scalar_subquery(),
            )
        ).first()
        return Schedule(
            name=row["name"],
            cron=row["cron"],
            timezone=row["timezone"],
            model_uri=row["model_uri"],
            input=row["input"],
            output=row["output"],
            params=dict(row["params"] or {}),
            enabled=bool(row["enabled"]),
            created_at=_aware(row["created_at"]),
            created_by=row["created_by"],
            last_occurrence=_aware(last[0]) if last else None,
            last_job_id=last[1] if last else None,
        )


def _job(row: RowMapping) -> BatchJob:
    status = JobStatus(row["status"])
    heartbeat = _aware(row["heartbeat_at"])
    if status is JobStatus.RUNNING and (heartbeat is None or _now() - heartbeat > STALE_AFTER):
        status = JobStatus.INTERRUPTED  # its process stopped beating: killed or crashed
    return BatchJob(
        job_id=row["job_id"],
        model_uri=row["model_uri"],
        model_name=row["model_name"],
        model_version=row["model_version"],
        input=row["input"],
        output=row["output"],
        params=dict(row["params"] or {}),
        status=status,
        rows_in=row["rows_in"],
        rows_out=row["rows_out"],
        rows_rejected=row["rows_rejected"],
        error=row["error"],
        schedule=row["schedule"],
        created_by=row["created_by"],
        created_at=_aware(row["created_at"]),
        started_at=_aware(row["started_at"]),
        finished_at=_aware(row["finished_at"]),
        duration_s=row["duration_s"],
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
