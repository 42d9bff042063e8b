"""Alert events in the registry database: each time an alert fires or resolves.

``Registry.alerts`` is the store. The server's alert evaluator writes events here (worker 0 only,
``seaway/serving/alerting.py``); ``seaway monitor alerts`` reads them. An alert that is firing now
is one whose latest event, for its rule, model and version, says ``firing``: no separate state is
kept, so a restarted server picks up where the events left off.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, RowMapping, func, insert, select

from seaway.errors import InvalidInputError
from seaway.registry import tables as t

Begin = Callable[[], contextlib.AbstractContextManager[Connection]]
EventState = Literal["firing", "resolved"]
STATES: tuple[EventState, ...] = ("firing", "resolved")


@dataclass(frozen=True)
class AlertEvent:
    """An alert that fired or resolved: which rule, for which model version, and why."""

    rule: str
    model: str
    version: str
    state: EventState
    value: float | None
    threshold: float | None
    message: str
    time: datetime
    kind: str = ""
    severity: str = "warning"
    #: the registry's id, once recorded
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "kind": self.kind,
            "severity": self.severity,
            "model": self.model,
            "version": self.version,
            "state": self.state,
            "value": _finite(self.value),
            "threshold": _finite(self.threshold),
            "message": self.message,
            "time": self.time.isoformat(),
        }


class AlertStore:
    def __init__(self, begin: Begin, read: Begin | None = None) -> None:
        self._begin = begin
        self._read = read or begin

    def record(self, events: Iterable[AlertEvent]) -> list[AlertEvent]:
        """Store ``events`` in one transaction; the same events with their ids."""
        recorded = []
        with self._begin() as conn:
            for event in events:
                if event.state not in STATES:
                    raise InvalidInputError(
                        f"an alert event's state is firing or resolved, not {event.state!r}"
                    )
                result = conn.execute(
                    insert(t.alert_events).values(
                        rule=event.rule,
                        kind=event.kind,
                        severity=event.severity,
                        model=event.model,
                        version=event.version,
                        state=event.state,
                        value=_finite(event.value),
                        threshold=_finite(event.threshold),
                        message=event.message,
                        time=_utc(event.time),
                    )
                )
                (key,) = result.inserted_primary_key or (None,)
                recorded.append(replace(event, id=None if key is None else int(key)))
        return recorded

    def firing(self, *, model: str | None = None) -> list[AlertEvent]:
        """The alerts firing now: for each rule, model and version, its latest event when that
        says firing (the event that started it), newest first."""
        c = t.alert_events.c
        latest = select(func.max(c.id).label("id")).group_by(c.rule, c.model, c.version)
        if model is not None:
            latest = latest.where(c.model == model)
        query = (
            select(t.alert_events)
            .where(c.id.in_(latest.scalar_subquery()), c.state == "firing")
            .order_by(c.time.desc(), c.id.desc())
        )
        with self._read() as conn:
            return [_event(row) for row in conn.execute(query).mappings()]

    def list(
        self,
        *,
        model: str | None = None,
        version: str | None = None,
        rule: str | None = None,
        since: datetime | None = None,
        limit: int = 200,
    ) -> list[AlertEvent]:
        """Events, newest first, filtered by what is given."""
        c = t.alert_events.c
        query = select(t.alert_events).order_by(c.time.desc(), c.id.desc()).limit(limit)
        if model is not None:
            query = query.where(c.model == model)
        if version is not None:
            query = query.where(c.version == version)
        if rule is not None:
            query = query.where(c.rule == rule)
        if since is not None:
            query = query.where(c.time >= _utc(since))
        with self._read() as conn:
            return [_event(row) for row in conn.execute(query).mappings()]


def _event(row: RowMapping) -> AlertEvent:
    return AlertEvent(
        id=int(row["id"]),
        rule=row["rule"],
        kind=row["kind"],
        severity=row["severity"],
        model=row["model"],
        version=row["version"],
        state=row["state"],
        value=row["value"],
        threshold=row["threshold"],
        message=row["message"],
        time=_utc(row["time"]),
    )


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _finite(value: float | None) -> float | None:
    """NaN and infinities are stored (and sent as JSON) as null: neither database nor JSON keeps
    them alike."""
    return None if value is None or not math.isfinite(value) else float(value)
