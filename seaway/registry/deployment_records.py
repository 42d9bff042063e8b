"""What the deployment store hands out: immutable records of deployments and their state.

Specs, rollout states, decisions and traffic counters are opaque JSON objects here: their meaning
belongs to ``seaway.routing`` (a higher layer), which the registry never imports. Times are aware
UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping


@dataclass(frozen=True)
class Revision:
    """One change to a deployment, as applied; never edited afterwards."""

    deployment: str
    revision: int
    model: str
    spec: dict[str, Any]
    #: every version number the spec uses (routes, shadow, rollout candidate), sorted
    versions: tuple[int, ...]
    actor: str
    message: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "revision": self.revision,
            "model": self.model,
            "versions": list(self.versions),
            "actor": self.actor,
            "message": self.message,
            "created_at": self.created_at.isoformat(),
            "spec": self.spec,
        }


@dataclass(frozen=True)
class Deployment:
    """A deployment as its current revision declares it."""

    name: str
    model: str
    revision: int
    spec: dict[str, Any]
    versions: tuple[int, ...]
    created_at: datetime  # when the deployment was first applied
    updated_at: datetime  # when its current revision was
    actor: str  # who made the current revision

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "revision": self.revision,
            "versions": list(self.versions),
            "actor": self.actor,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "spec": self.spec,
        }


@dataclass(frozen=True)
class RolloutRecord:
    """A deployment's progressive rollout. ``generation`` grows by one at every write and is never
    handed out twice for one deployment: the token of a compare-and-set."""

    deployment: str
    revision: int  # the revision whose spec declares the rollout
    state: dict[str, Any]
    generation: int
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "revision": self.revision,
            "generation": self.generation,
            "updated_at": self.updated_at.isoformat(),
            "state": self.state,
        }


@dataclass(frozen=True)
class DecisionRecord:
    """One entry of a deployment's decision log; ``seq`` orders the log."""

    deployment: str
    seq: int
    revision: int
    at: datetime
    actor: str
    decision: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "seq": self.seq,
            "revision": self.revision,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "decision": self.decision,
        }


@dataclass(frozen=True)
class StatsRecord:
    """One server's traffic counters for one revision of a deployment, as last flushed."""

    deployment: str
    revision: int
    server: str
    stats: dict[str, Any]
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "revision": self.revision,
            "server": self.server,
            "updated_at": self.updated_at.isoformat(),
            "stats": self.stats,
        }


def revision_record(row: RowMapping) -> Revision:
    return Revision(
        deployment=row["deployment"],
        revision=int(row["revision"]),
        model=row["model"],
        spec=dict(row["spec"]),
        versions=tuple(int(v) for v in row["versions"]),
        actor=row["actor"],
        message=row["message"],
        created_at=utc(row["created_at"]),
    )


def deployment_record(row: RowMapping, created_at: datetime) -> Deployment:
    """A deployment from its current revision's row and the time it was first applied."""
    current = revision_record(row)
    return Deployment(
        name=current.deployment,
        model=current.model,
        revision=current.revision,
        spec=current.spec,
        versions=current.versions,
        created_at=utc(created_at),
        updated_at=current.created_at,
        actor=current.actor,
    )


def rollout_record(row: RowMapping) -> RolloutRecord:
    return RolloutRecord(
        deployment=row["deployment"],
        revision=int(row["revision"]),
        state=dict(row["state"]),
        generation=int(row["generation"]),
        updated_at=utc(row["updated_at"]),
    )


def decision_record(row: RowMapping) -> DecisionRecord:
    return DecisionRecord(
        deployment=row["deployment"],
        seq=int(row["id"]),
        revision=int(row["revision"]),
        at=utc(row["at"]),
        actor=row["actor"],
        decision=dict(row["decision"]),
    )


def stats_record(row: RowMapping) -> StatsRecord:
    return StatsRecord(
        deployment=row["deployment"],
        revision=int(row["revision"]),
        server=row["server"],
        stats=dict(row["stats"]),
        updated_at=utc(row["updated_at"]),
    )


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
