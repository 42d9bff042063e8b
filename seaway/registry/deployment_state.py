"""A deployment's live state in the registry: its rollout, decision log, traffic counters; leases.

Functions over an open connection, which :class:`~seaway.registry.deployments.DeploymentStore` runs
inside its transactions after it has checked (and where needed locked) the deployment's row.

A rollout record is written by compare-and-set on its ``generation``: the new generation comes
from a counter on the deployment's row, so a generation is never handed out twice for one
deployment, even across a cleared and restarted rollout, and a writer holding a stale one always
loses. Leases are rows keyed by what they guard: taking one is an ``UPDATE`` that matches only a
free, expired or own lease, else an ``INSERT`` that the primary key lets one writer win; on
PostgreSQL the loser of a race blocks on the row and then fails, on SQLite writers are serial.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from seaway.errors import ConflictError, InvalidInputError
from seaway.registry import tables as t
from seaway.registry.deployment_records import (
    DecisionRecord,
    RolloutRecord,
    StatsRecord,
    decision_record,
    rollout_record,
    stats_record,
)

_MAX_KEY = 200  # leases.key, leases.holder, stats.server, actors


def plain_json(value: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A deep copy of ``value`` as plain JSON, so what is returned equals what is read back.

    NaN and infinities become null (neither PostgreSQL's JSON nor the JSON standard has them);
    anything that is not JSON is refused naming where it is.
    """
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"{what} must be a mapping (a JSON object), not {type(value).__name__}"
        )
    plain: dict[str, Any] = _plain(value, what)
    return plain


def _plain(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {_key(k, where): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise InvalidInputError(
        f"{where}: a {type(value).__name__} is not JSON; use numbers, strings, lists and mappings"
    )


def _key(key: Any, where: str) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)  # as JSON itself would name it
    raise InvalidInputError(f"{where}: a {type(key).__name__} key is not JSON; use strings")


def short_text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_KEY:
        raise InvalidInputError(
            f"{what} must be a non-empty string of at most {_MAX_KEY} characters"
        )
    return value


# ---- rollouts ----------------------------------------------------------------------------------


def rollout(conn: Connection, name: str) -> RolloutRecord | None:
    row = (
        conn.execute(
            select(t.deployment_rollouts).where(t.deployment_rollouts.c.deployment == name)
        )
        .mappings()
        .first()
    )
    return None if row is None else rollout_record(row)


def check_generation(name: str, current: RolloutRecord | None, expected: int | None) -> None:
    """Refuse a compare-and-set whose ``expected`` generation is not the current one (0: none)."""
    if expected is None:
        return
    found = 0 if current is None else current.generation
    if found == expected:
        return
    if current is None:
        raise ConflictError(
            f"deployment {name} has no rollout now (expected generation {expected}): someone "
            "ended it; look and retry"
        )
    raise ConflictError(
        f"the rollout of deployment {name} is at generation {found}, not {expected}: someone "
        "changed it; look and retry"
    )


def set_rollout(
    conn: Connection,
    deployment: RowMapping,
    revision: int,
    state: dict[str, Any],
    expect_generation: int | None,
    now: datetime,
) -> RolloutRecord:
    """Write the rollout of the (locked) ``deployment`` row at the next generation."""
    name = deployment["name"]
    current = rollout(conn, name)
    check_generation(name, current, expect_generation)
    generation = int(deployment["rollout_generation"]) + 1
    conn.execute(
        update(t.deployments)
        .where(t.deployments.c.name == name)
        .values(rollout_generation=generation)
    )
    values = {"revision": revision, "state": state, "generation": generation, "updated_at": now}
    if current is None:
        conn.execute(insert(t.deployment_rollouts).values(deployment=name, **values))
    else:
        conn.execute(
            update(t.deployment_rollouts)
            .where(t.deployment_rollouts.c.deployment == name)
            .values(**values)
        )
    return RolloutRecord(name, revision, state, generation, now)


def clear_rollout(
    conn: Connection, name: str, expect_generation: int | None
) -> RolloutRecord | None:
    current = rollout(conn, name)
    check_generation(name, current, expect_generation)
    conn.execute(delete(t.deployment_rollouts).where(t.deployment_rollouts.c.deployment == name))
    return current


# ---- the decision log --------------------------------------------------------------------------


def record_decision(
    conn: Connection,
    name: str,
    revision: int,
    decision: dict[str, Any],
    actor: str,
    now: datetime,
) -> DecisionRecord:
    result = conn.execute(
        insert(t.deployment_decisions).values(
            deployment=name, revision=revision, at=now, actor=actor, decision=decision
        )
    )
    (seq,) = result.inserted_primary_key or (None,)
    if seq is None:  # pragma: no cover - both databases return the new id
        raise ConflictError(f"the registry did not number the decision for deployment {name}")
    return DecisionRecord(name, int(seq), revision, now, actor, decision)


def decisions(
    conn: Connection, name: str, revision: int | None, limit: int | None
) -> list[DecisionRecord]:
    """The log oldest first; with ``limit``, its newest ``limit`` entries (still oldest first)."""
    c = t.deployment_decisions.c
    query = select(t.deployment_decisions).where(c.deployment == name).order_by(c.id.desc())
    if revision is not None:
        query = query.where(c.revision == revision)
    if limit is not None:
        if limit < 0:
            raise InvalidInputError(f"limit must be 0 or more, not {limit}")
        query = query.limit(limit)
    return [decision_record(row) for row in reversed(conn.execute(query).mappings().all())]


# ---- traffic counters --------------------------------------------------------------------------


def put_stats(
    conn: Connection, name: str, revision: int, server: str, stats: dict[str, Any], now: datetime
) -> StatsRecord:
    """Replace (or create) one server's counters for one revision."""
    c = t.deployment_stats.c
    where = (c.deployment == name, c.revision == revision, c.server == server)
    change = update(t.deployment_stats).where(*where).values(stats=stats, updated_at=now)
    if conn.execute(change).rowcount == 0:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(t.deployment_stats).values(
                        deployment=name,
                        revision=revision,
                        server=server,
                        stats=stats,
                        updated_at=now,
                    )
                )
        except IntegrityError:  # the same server flushed concurrently (PostgreSQL): overwrite
            conn.execute(change)
    return StatsRecord(name, revision, server, stats, now)


def stats(conn: Connection, name: str, revision: int) -> list[StatsRecord]:
    c = t.deployment_stats.c
    query = (
        select(t.deployment_stats)
        .where(c.deployment == name, c.revision == revision)
        .order_by(c.server)
    )
    return [stats_record(row) for row in conn.execute(query).mappings()]


# ---- leases ------------------------------------------------------------------------------------


def acquire_lease(conn: Connection, key: str, holder: str, ttl_s: float, now: datetime) -> bool:
    """Take or extend the lease on ``key`` for ``ttl_s`` seconds; whether ``holder`` has it."""
    if not isinstance(ttl_s, int | float) or not math.isfinite(ttl_s) or ttl_s <= 0:
        raise InvalidInputError(
            f"a lease's ttl_s must be a positive number of seconds, not {ttl_s!r}"
        )
    c = t.leases.c
    expires = now + timedelta(seconds=float(ttl_s))
    taken = conn.execute(
        update(t.leases)
        .where(c.key == key, or_(c.holder == holder, c.expires_at <= now))
        .values(
            holder=holder,
            expires_at=expires,
            acquired_at=case((c.holder == holder, c.acquired_at), else_=now),
        )
    ).rowcount
    if taken:
        return True
    try:
        with conn.begin_nested():
            conn.execute(
                insert(t.leases).values(key=key, holder=holder, acquired_at=now, expires_at=expires)
            )
    except IntegrityError:
        return False  # held by someone else, or taken by a concurrent acquirer just now
    return True


def release_lease(conn: Connection, key: str, holder: str) -> bool:
    """Give the lease up if ``holder`` has it (expired or not); whether there was one to give."""
    gone = conn.execute(delete(t.leases).where(t.leases.c.key == key, t.leases.c.holder == holder))
    return bool(gone.rowcount)


def lease_holder(conn: Connection, key: str, now: datetime) -> str | None:
    c = t.leases.c
    holder: str | None = conn.execute(
        select(c.holder).where(c.key == key, c.expires_at > now)
    ).scalar()
    return holder
