"""Queries the deployment store shares: a deployment and its current revision, existence checks
with messages that name what is missing, and which deployments use a model or version (the check
behind ``Registry.delete_version`` and ``delete_model`` refusing).

They take an open connection, so a caller's reads see one snapshot and its writes one lock.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, RowMapping, select

from seaway.errors import InvalidInputError, InvalidURIError, NotFoundError
from seaway.registry import tables as t
from seaway.registry.deployment_records import Deployment, deployment_record
from seaway.registry.uri import validate_name

#: a deployment's current revision, with the time the deployment was first applied
CURRENT = select(t.deployment_revisions, t.deployments.c.created_at.label("deployed_at")).join(
    t.deployments,
    (t.deployments.c.name == t.deployment_revisions.c.deployment)
    & (t.deployments.c.revision == t.deployment_revisions.c.revision),
)


def deployments_using(
    conn: Connection, model: str, version: int | None = None
) -> list[tuple[str, int]]:
    """The deployments (name, revision) whose current revision serves ``model``, or one of its
    versions: what ``Registry.delete_version`` and ``delete_model`` refuse to pull from under."""
    query = (
        select(t.deployments.c.name, t.deployments.c.revision, t.deployment_revisions.c.versions)
        .join(
            t.deployment_revisions,
            (t.deployment_revisions.c.deployment == t.deployments.c.name)
            & (t.deployment_revisions.c.revision == t.deployments.c.revision),
        )
        .where(t.deployments.c.model == model)
        .order_by(t.deployments.c.name)
    )
    return [
        (name, int(revision))
        for name, revision, versions in conn.execute(query)
        if version is None or version in versions
    ]


def in_use_message(users: list[tuple[str, int]]) -> str:
    """``deployment fraud-prod (revision 4)``, or several of them."""
    named = ", ".join(f"{name} (revision {revision})" for name, revision in users)
    return f"deployment{'s' if len(users) > 1 else ''} {named}"


def validate_deployment_name(name: str) -> None:
    try:
        validate_name(name)
    except InvalidURIError as exc:
        raise InvalidInputError(
            f"deployment name {name!r} is not valid: use 1-128 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        ) from exc


def version_numbers(versions: Iterable[int]) -> tuple[int, ...]:
    numbers = set()
    for version in versions:
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidInputError(
                f"a deployment's versions are version numbers (1 or more), not {version!r}; "
                "resolve aliases first"
            )
        numbers.add(version)
    if not numbers:
        raise InvalidInputError("a deployment needs at least one version")
    return tuple(sorted(numbers))


def require_versions(conn: Connection, model: str, numbers: tuple[int, ...]) -> None:
    c = t.model_versions.c
    existing = conn.execute(select(c.version).where(c.name == model).order_by(c.version))
    known = list(existing.scalars())
    missing = [v for v in numbers if v not in set(known)]
    if missing:
        listed = f"versions: {', '.join(map(str, known))}" if known else "it has no versions"
        raise NotFoundError(f"model {model} has no version {missing[0]} ({listed})")


def deployment_row(conn: Connection, name: str, *, lock: bool = False) -> RowMapping | None:
    query = select(t.deployments).where(t.deployments.c.name == name)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).mappings().first()


def require(conn: Connection, name: str, *, lock: bool = False) -> RowMapping:
    row = deployment_row(conn, name, lock=lock)
    if row is None:
        known = (
            conn.execute(select(t.deployments.c.name).order_by(t.deployments.c.name).limit(20))
            .scalars()
            .all()
        )
        hint = f"deployments: {', '.join(known)}" if known else "there are none yet"
        raise NotFoundError(
            f"no deployment named {name} ({hint}); create one with 'seaway deploy apply FILE'"
        )
    return row


def require_revision(name: str, row: RowMapping, revision: int) -> None:
    if not 1 <= revision <= int(row["revision"]):
        raise NotFoundError(
            f"deployment {name} has no revision {revision} (its revisions are 1 to "
            f"{row['revision']})"
        )


def deployment(conn: Connection, name: str) -> Deployment:
    row = conn.execute(CURRENT.where(t.deployments.c.name == name)).mappings().first()
    if row is None:
        require(conn, name)
        raise NotFoundError(f"deployment {name} has no current revision")  # pragma: no cover
    return deployment_record(row, row["deployed_at"])


def all_deployments(conn: Connection) -> list[Deployment]:
    rows = conn.execute(CURRENT.order_by(t.deployments.c.name)).mappings()
    return [deployment_record(row, row["deployed_at"]) for row in rows]
