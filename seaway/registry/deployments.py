"""Deployments in the registry: durable desired state that every server reconciles.

``Registry.deployments`` is the store. A deployment is a named endpoint over versions of one
registered model; every change is a new numbered revision (nothing is edited in place), so any
earlier one can be looked at or applied again. Alongside: the rollout in progress, the decision
log, per-server traffic counters, and leases for decisions one server must take at a time
(``deployment_state.py``). Specs and states are opaque JSON objects here; ``seaway.routing``
(a higher layer) gives them meaning.

Applying takes the model's row lock (the one ``Registry.delete_version`` takes) and then the
deployment's, so revision numbers never collide and a version cannot be deleted while an apply that
uses it commits (``deployment_queries.deployments_using`` is the check behind that refusal).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from seaway.errors import ConflictError, InvalidInputError, NotFoundError
from seaway.registry import deployment_queries as dq
from seaway.registry import deployment_state as ds
from seaway.registry import queries as q
from seaway.registry import tables as t
from seaway.registry.deployment_records import (
    DecisionRecord,
    Deployment,
    Revision,
    RolloutRecord,
    StatsRecord,
    revision_record,
    rollout_record,
    utc,
)

__all__ = [
    "DecisionRecord",
    "Deployment",
    "DeploymentStore",
    "Revision",
    "RolloutRecord",
    "StatsRecord",
]

Begin = Callable[[], contextlib.AbstractContextManager[Connection]]
_log = logging.getLogger(__name__)
_RETRIES = 3


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DeploymentStore:
    """Deployments, their revisions and live state. ``clock`` gives every time it records."""

    def __init__(
        self, begin: Begin, read: Begin | None = None, *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._begin = begin
        self._read = read or begin
        self.clock = clock

    # ---- desired state -------------------------------------------------------------------------

    def apply(
        self,
        name: str,
        model: str,
        spec: Mapping[str, Any],
        versions: Iterable[int],
        *,
        actor: str,
        message: str = "apply",
        expect_revision: int | None = None,
    ) -> Revision:
        """Store ``spec`` as the deployment's next revision (1 for a new deployment).

        ``versions`` are every version number the spec uses; each must exist. A deployment's model
        never changes. With ``expect_revision`` (0: must be new) the apply is refused when someone
        else changed the deployment since it was read.
        """
        dq.validate_deployment_name(name)
        numbers = dq.version_numbers(versions)
        plain = ds.plain_json(spec, "deployment spec")
        ds.short_text(actor, "actor")
        for attempt in range(_RETRIES):
            try:
                with self._begin() as conn:
                    return self._apply(
                        conn, name, model, plain, numbers, actor, message, expect_revision
                    )
            except ConflictError as exc:  # a new deployment's row created concurrently: look again
                if not isinstance(exc.__cause__, IntegrityError) or attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _apply(
        self,
        conn: Connection,
        name: str,
        model: str,
        spec: dict[str, Any],
        numbers: tuple[int, ...],
        actor: str,
        message: str,
        expect_revision: int | None,
    ) -> Revision:
        if conn.execute(q.lock_model(model)).first() is None:
            raise q.model_not_found(conn, model)
        dq.require_versions(conn, model, numbers)
        row = dq.deployment_row(conn, name, lock=True)
        current = 0 if row is None else int(row["revision"])
        if row is not None and row["model"] != model:
            raise ConflictError(
                f"deployment {name} serves model {row['model']}, not {model}: a deployment's model "
                "cannot change; delete the deployment first or choose another name"
            )
        if expect_revision is not None and expect_revision != current:
            if row is None:
                raise ConflictError(
                    f"deployment {name} does not exist (expected it at revision "
                    f"{expect_revision}): someone deleted it; look and retry"
                )
            raise ConflictError(
                f"deployment {name} is at revision {current}, not {expect_revision}: someone "
                "changed it; look and retry"
            )
        now = utc(self.clock())
        revision = current + 1
        if row is None:
            conn.execute(
                insert(t.deployments).values(
                    name=name, model=model, revision=revision, rollout_generation=0, created_at=now
                )
            )
        else:
            conn.execute(
                update(t.deployments).where(t.deployments.c.name == name).values(revision=revision)
            )
        record = Revision(name, revision, model, spec, numbers, actor, message, now)
        conn.execute(
            insert(t.deployment_revisions).values(
                deployment=name,
                revision=revision,
                model=model,
                spec=spec,
                versions=list(numbers),
                actor=actor,
                message=message,
                created_at=now,
            )
        )
        return record

    def get(self, name: str) -> Deployment:
        with self._read() as conn:
            return dq.deployment(conn, name)

    def history(self, name: str, limit: int | None = None) -> list[Revision]:
        """Revisions newest first (the newest ``limit`` with a limit)."""
        if limit is not None and limit < 0:
            raise InvalidInputError(f"limit must be 0 or more, not {limit}")
        c = t.deployment_revisions.c
        query = select(t.deployment_revisions).where(c.deployment == name)
        query = query.order_by(c.revision.desc()).limit(limit)
        with self._read() as conn:
            dq.require(conn, name)
            return [revision_record(row) for row in conn.execute(query).mappings()]

    def revision(self, name: str, revision: int) -> Revision:
        c = t.deployment_revisions.c
        with self._read() as conn:
            current = dq.require(conn, name)
            row = (
                conn.execute(
                    select(t.deployment_revisions).where(
                        c.deployment == name, c.revision == revision
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFoundError(
                    f"deployment {name} has no revision {revision} (its revisions are 1 to "
                    f"{current['revision']})"
                )
            return revision_record(row)

    def delete(self, name: str, *, actor: str) -> Deployment:
        """Delete a deployment with its revisions, rollout, decision log and counters."""
        with self._begin() as conn:
            dq.require(conn, name, lock=True)
            record = dq.deployment(conn, name)
            for table in (
                t.deployment_stats,
                t.deployment_decisions,
                t.deployment_rollouts,
                t.deployment_revisions,
            ):
                conn.execute(delete(table).where(table.c.deployment == name))
            conn.execute(delete(t.deployments).where(t.deployments.c.name == name))
        _log.info("deployment %s (revision %d) deleted by %s", name, record.revision, actor)
        return record

    def snapshot(self) -> list[tuple[Deployment, RolloutRecord | None]]:
        """Every deployment with its rollout, read in one transaction (the controller's poll)."""
        with self._read() as conn:
            rollouts = {
                r.deployment: r
                for r in (
                    rollout_record(row)
                    for row in conn.execute(select(t.deployment_rollouts)).mappings()
                )
            }
            return [(d, rollouts.get(d.name)) for d in dq.all_deployments(conn)]

    # ---- rollout -------------------------------------------------------------------------------

    def rollout(self, name: str) -> RolloutRecord | None:
        with self._read() as conn:
            dq.require(conn, name)
            return ds.rollout(conn, name)

    def set_rollout(
        self,
        name: str,
        revision: int,
        state: Mapping[str, Any],
        *,
        expect_generation: int | None = None,
    ) -> RolloutRecord:
        """Write the rollout's state at the next generation; with ``expect_generation`` only if the
        current one is that (0: no rollout now), else ``ConflictError``."""
        plain = ds.plain_json(state, "rollout state")
        with self._begin() as conn:
            row = dq.require(conn, name, lock=True)
            dq.require_revision(name, row, revision)
            return ds.set_rollout(conn, row, revision, plain, expect_generation, utc(self.clock()))

    def clear_rollout(
        self, name: str, *, expect_generation: int | None = None
    ) -> RolloutRecord | None:
        """End the rollout record (the one removed, if any); generations keep counting."""
        with self._begin() as conn:
            dq.require(conn, name, lock=True)
            return ds.clear_rollout(conn, name, expect_generation)

    # ---- decision log --------------------------------------------------------------------------

    def record_decision(
        self, name: str, revision: int, decision: Mapping[str, Any], *, actor: str
    ) -> DecisionRecord:
        plain = ds.plain_json(decision, "decision")
        ds.short_text(actor, "actor")
        with self._begin() as conn:
            dq.require_revision(name, dq.require(conn, name), revision)
            return ds.record_decision(conn, name, revision, plain, actor, utc(self.clock()))

    def decisions(
        self, name: str, *, revision: int | None = None, limit: int | None = None
    ) -> list[DecisionRecord]:
        """The decision log oldest first; with ``limit``, its newest ``limit`` entries."""
        with self._read() as conn:
            dq.require(conn, name)
            return ds.decisions(conn, name, revision, limit)

    # ---- traffic counters ----------------------------------------------------------------------

    def put_stats(
        self, name: str, revision: int, server: str, stats: Mapping[str, Any]
    ) -> StatsRecord:
        """Replace ``server``'s counters for ``revision`` (each server flushes its own totals)."""
        plain = ds.plain_json(stats, "deployment stats")
        ds.short_text(server, "server")
        with self._begin() as conn:
            dq.require_revision(name, dq.require(conn, name), revision)
            return ds.put_stats(conn, name, revision, server, plain, utc(self.clock()))

    def stats(self, name: str, revision: int) -> list[StatsRecord]:
        """Every server's counters for one revision, by server."""
        with self._read() as conn:
            dq.require(conn, name)
            return ds.stats(conn, name, revision)

    # ---- leases --------------------------------------------------------------------------------

    def acquire_lease(
        self, key: str, holder: str, ttl_s: float, *, now: datetime | None = None
    ) -> bool:
        """Whether ``holder`` holds ``key`` for the next ``ttl_s`` seconds: true when the lease
        was free, expired, or already its own (then extended)."""
        ds.short_text(key, "lease key")
        ds.short_text(holder, "lease holder")
        with self._begin() as conn:
            return ds.acquire_lease(conn, key, holder, ttl_s, self._now(now))

    def release_lease(self, key: str, holder: str) -> bool:
        """Give up ``holder``'s lease on ``key``; whether it had one."""
        with self._begin() as conn:
            return ds.release_lease(conn, key, holder)

    def lease_holder(self, key: str, *, now: datetime | None = None) -> str | None:
        """Who holds an unexpired lease on ``key``, if anyone."""
        with self._read() as conn:
            return ds.lease_holder(conn, key, self._now(now))

    def _now(self, now: datetime | None) -> datetime:
        return utc(self.clock() if now is None else now)

    # last: inside the class, ``list`` below names this method
    def list(self) -> list[Deployment]:
        with self._read() as conn:
            return dq.all_deployments(conn)
