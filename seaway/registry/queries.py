"""Queries the ``Registry`` shares between its methods: a model with its aliases, one version row.

They take an open connection, so a caller's reads see one snapshot and its writes one lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, Select, func, insert, select, update

from seaway.errors import NotFoundError
from seaway.packaging.manifest import Manifest
from seaway.registry import tables as t
from seaway.registry.records import ModelVersion, RegisteredModel


def model(conn: Connection, name: str) -> RegisteredModel:
    row = conn.execute(select(t.models).where(t.models.c.name == name)).mappings().first()
    if row is None:
        raise model_not_found(conn, name)
    stats = conn.execute(
        select(func.max(t.model_versions.c.version), func.count()).where(
            t.model_versions.c.name == name
        )
    ).one()
    return RegisteredModel(
        name=row["name"],
        description=row["description"],
        tags=dict(row["tags"] or {}),
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
        latest_version=stats[0],
        version_count=stats[1],
        aliases={
            alias: version for version, names in aliases_of(conn, name).items() for alias in names
        },
    )


def lock_model(name: str) -> Select[tuple[str]]:
    """The model's row, locked for the transaction (PostgreSQL; SQLite's writers are serial)."""
    return select(t.models.c.name).where(t.models.c.name == name).with_for_update()


def next_version(conn: Connection, name: str) -> int:
    """Take the next version number of ``name``: one past the highest it ever had.

    Call with the model's row locked. The counter is bumped in place (a database-side increment,
    safe even without the lock); a name without one (only possible for rows written outside
    Seaway) starts after its highest existing version.
    """
    counters = t.version_counters
    bumped = conn.execute(
        update(counters)
        .where(counters.c.name == name)
        .values(last_version=counters.c.last_version + 1)
    ).rowcount
    if bumped:
        number: int = conn.execute(
            select(counters.c.last_version).where(counters.c.name == name)
        ).scalar_one()
        return number
    current = conn.execute(
        select(func.max(t.model_versions.c.version)).where(t.model_versions.c.name == name)
    ).scalar()
    number = (current or 0) + 1
    conn.execute(insert(counters).values(name=name, last_version=number))
    return number


def merge_tags(
    current: Mapping[str, str] | None,
    tags: Mapping[str, str] | None,
    remove: Iterable[str] = (),
) -> dict[str, str] | None:
    """``current`` with ``tags`` set and ``remove`` dropped; ``None`` when nothing changes."""
    removed = list(remove)
    if not tags and not removed:
        return None
    merged = {**(current or {}), **{str(k): str(v) for k, v in (tags or {}).items()}}
    for key in removed:
        merged.pop(key, None)
    return merged


def update_model_row(
    conn: Connection,
    name: str,
    now: datetime,
    *,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    remove_tags: Iterable[str] = (),
) -> None:
    """Touch the model's ``updated_at``, setting its description and merging its tags."""
    values: dict[str, Any] = {"updated_at": now}
    if description is not None:
        values["description"] = description
    removed = list(remove_tags)
    if tags or removed:
        current = conn.execute(select(t.models.c.tags).where(t.models.c.name == name)).scalar()
        values["tags"] = merge_tags(current, tags, removed)
    conn.execute(update(t.models).where(t.models.c.name == name).values(**values))


def model_not_found(conn: Connection, name: str) -> NotFoundError:
    known = (
        conn.execute(select(t.models.c.name).order_by(t.models.c.name).limit(20)).scalars().all()
    )
    hint = f"registered models: {', '.join(known)}" if known else "the registry is empty"
    return NotFoundError(f"no model named {name!r} in the registry ({hint})")


def require_version(conn: Connection, name: str, version: int) -> RowMapping:
    row = (
        conn.execute(
            select(t.model_versions).where(
                t.model_versions.c.name == name, t.model_versions.c.version == version
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        known = model(conn, name)
        latest = (
            f"latest is {known.latest_version}" if known.latest_version else "it has no versions"
        )
        raise NotFoundError(f"model {name!r} has no version {version} ({latest})")
    return row


def aliases_of(conn: Connection, name: str) -> dict[int, list[str]]:
    by_version: dict[int, list[str]] = {}
    for alias, version in conn.execute(
        select(t.aliases.c.alias, t.aliases.c.version)
        .where(t.aliases.c.name == name)
        .order_by(t.aliases.c.alias)
    ):
        by_version.setdefault(version, []).append(alias)
    return by_version


def version_record(row: RowMapping, aliases: dict[int, list[str]]) -> ModelVersion:
    return ModelVersion(
        name=row["name"],
        version=row["version"],
        flavor=row["flavor"],
        artifact_uri=row["artifact_uri"],
        manifest_sha256=row["manifest_sha256"],
        manifest=Manifest.model_validate(row["manifest"]),
        created_at=aware(row["created_at"]),
        description=row["description"],
        tags=dict(row["tags"] or {}),
        metrics=dict(row["metrics"] or {}),
        lineage=dict(row["lineage"] or {}),
        aliases=tuple(aliases.get(row["version"], ())),
    )


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
