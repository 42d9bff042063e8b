"""The ``Registry``: registered models, numbered versions, aliases, and their artifacts.

Registration writes artifacts first and then commits all metadata in one transaction; a failure in
between deletes the upload, and a crash leaves only an orphan folder for :meth:`collect_garbage`.
Version numbers come from ``max + 1`` under a lock (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE``
on the model row in PostgreSQL), with a retry on the rare unique-key collision.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from seaway.apikeys import ApiKey, Scope
from seaway.config import Settings
from seaway.errors import ConflictError, NotFoundError
from seaway.packaging.manifest import Manifest
from seaway.packaging.reader import manifest_digest, open_package
from seaway.registry import keys
from seaway.registry import tables as t
from seaway.registry.db import create_registry_engine, migrate, safe_url, translate_errors
from seaway.registry.jobs import JobStore, ScheduleStore
from seaway.registry.records import ModelVersion, RegisteredModel
from seaway.registry.store import ArtifactStore
from seaway.registry.uri import ModelRef, parse_model_uri, validate_alias, validate_name

_VERSION_RETRIES = 5


class Registry:
    """Metadata in SQL (SQLite or PostgreSQL), artifacts in a folder or fsspec store."""

    def __init__(
        self, url: str, artifact_root: str, *, cache_dir: str | os.PathLike[str] | None = None
    ) -> None:
        self.url = url
        self.store = ArtifactStore(artifact_root)
        self.cache_dir = Path(cache_dir) if cache_dir else Path(artifact_root).parent / "cache"
        self._engine: Engine = create_registry_engine(url)
        migrate(self._engine)
        #: batch job records and schedules (``seaway batch``)
        self.jobs = JobStore(self._begin)
        self.schedules = ScheduleStore(self._begin)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Registry:
        settings = settings or Settings.resolve()
        return cls(settings.registry_url, settings.artifact_root, cache_dir=settings.cache_dir)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({safe_url(self.url)!r}, artifacts={self.store.root!r})"

    # ---- writing -------------------------------------------------------------------------------

    def register(
        self,
        package_path: str | os.PathLike[str],
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        lineage: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Register a saved package folder as the next version of ``name``."""
        validate_name(name)
        package = open_package(package_path)
        digest = manifest_digest(package.path)
        artifact_uri = self.store.upload(package.path, name)
        try:
            version = self._insert_version(
                name,
                flavor=package.manifest.flavor,
                artifact_uri=artifact_uri,
                digest=digest,
                manifest=package.manifest,
                description=description,
                tags=dict(tags or {}),
                metrics={k: float(v) for k, v in (metrics or {}).items()},
                lineage=dict(lineage or {}),
            )
        except BaseException:
            self.store.delete(artifact_uri)
            raise
        return self.get_version(name, version)

    def _insert_version(self, name: str, **row: Any) -> int:
        now = _now()
        for attempt in range(_VERSION_RETRIES):
            try:
                with self._begin() as conn:
                    self._ensure_model(conn, name, now)
                    current = conn.execute(
                        select(func.max(t.model_versions.c.version)).where(
                            t.model_versions.c.name == name
                        )
                    ).scalar()
                    version = (current or 0) + 1
                    conn.execute(
                        insert(t.model_versions).values(
                            name=name,
                            version=version,
                            flavor=row["flavor"],
                            artifact_uri=row["artifact_uri"],
                            manifest_sha256=row["digest"],
                            manifest=row["manifest"].model_dump(mode="json"),
                            description=row["description"],
                            tags=row["tags"],
                            metrics=row["metrics"],
                            lineage=row["lineage"],
                            created_at=now,
                        )
                    )
                    conn.execute(
                        update(t.models).where(t.models.c.name == name).values(updated_at=now)
                    )
                return version
            except IntegrityError:
                if attempt == _VERSION_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _ensure_model(self, conn: Connection, name: str, now: datetime) -> None:
        locked = select(t.models.c.name).where(t.models.c.name == name).with_for_update()
        if conn.execute(locked).first() is not None:
            return
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(t.models).values(
                        name=name, description=None, tags={}, created_at=now, updated_at=now
                    )
                )
        except IntegrityError:
            pass  # created concurrently; lock it now
        conn.execute(locked).first()

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``alias`` at ``version``, atomically replacing where it pointed before."""
        validate_alias(alias)
        with self._begin() as conn:
            self._require_version(conn, name, version)
            values = {"version": version, "updated_at": _now()}
            moved = conn.execute(
                update(t.aliases)
                .where(t.aliases.c.name == name, t.aliases.c.alias == alias)
                .values(**values)
            )
            if moved.rowcount == 0:
                conn.execute(insert(t.aliases).values(name=name, alias=alias, **values))

    def delete_alias(self, name: str, alias: str) -> None:
        with self._begin() as conn:
            gone = conn.execute(
                delete(t.aliases).where(t.aliases.c.name == name, t.aliases.c.alias == alias)
            )
            if gone.rowcount == 0:
                raise NotFoundError(f"model {name!r} has no alias {alias!r}")

    def update_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        with self._begin() as conn:
            self._require_version(conn, name, version)
            values: dict[str, Any] = {}
            if description is not None:
                values["description"] = description
            if tags is not None:
                values["tags"] = dict(tags)
            if values:
                conn.execute(
                    update(t.model_versions)
                    .where(t.model_versions.c.name == name, t.model_versions.c.version == version)
                    .values(**values)
                )
        return self.get_version(name, version)

    def update_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> None:
        values: dict[str, Any] = {"updated_at": _now()}
        if description is not None:
            values["description"] = description
        if tags is not None:
            values["tags"] = dict(tags)
        with self._begin() as conn:
            if (
                conn.execute(
                    update(t.models).where(t.models.c.name == name).values(**values)
                ).rowcount
                == 0
            ):
                raise self._model_not_found(conn, name)

    def delete_version(self, name: str, version: int, *, force: bool = False) -> ModelVersion:
        """Delete a version; refused while an alias points at it unless ``force``."""
        record = self.get_version(name, version)
        with self._begin() as conn:
            self._require_version(conn, name, version)
            pointing = (
                conn.execute(
                    select(t.aliases.c.alias).where(
                        t.aliases.c.name == name, t.aliases.c.version == version
                    )
                )
                .scalars()
                .all()
            )
            if pointing and not force:
                raise ConflictError(
                    f"version {version} of {name!r} is what alias(es) {', '.join(sorted(pointing))} point "
                    "at; move them first, or delete with --force (force=True) to remove them too"
                )
            conn.execute(
                delete(t.aliases).where(t.aliases.c.name == name, t.aliases.c.version == version)
            )
            conn.execute(
                delete(t.model_versions).where(
                    t.model_versions.c.name == name, t.model_versions.c.version == version
                )
            )
        self.store.delete(record.artifact_uri)  # after commit: a failure here only leaves an orphan
        return record

    def collect_garbage(self, *, older_than: timedelta = timedelta(hours=1)) -> list[str]:
        """Delete stored packages no version references (left by crashed registrations).

        ``older_than`` spares uploads whose registration may still be in flight.
        """
        cutoff = _now() - older_than
        with self._begin() as conn:
            referenced = set(conn.execute(select(t.model_versions.c.artifact_uri)).scalars())
        removed = []
        for entry in self.store.entries():
            if entry.uri in referenced or (entry.modified is not None and entry.modified > cutoff):
                continue
            self.store.delete(entry.uri)
            removed.append(entry.uri)
        return removed

    # ---- reading -------------------------------------------------------------------------------

    def list_models(self) -> list[RegisteredModel]:
        with self._begin() as conn:
            names = conn.execute(select(t.models.c.name).order_by(t.models.c.name)).scalars().all()
            return [self._model(conn, name) for name in names]

    def get_model(self, name: str) -> RegisteredModel:
        with self._begin() as conn:
            return self._model(conn, name)

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self._begin() as conn:
            self._model(conn, name)
            rows = conn.execute(
                select(t.model_versions)
                .where(t.model_versions.c.name == name)
                .order_by(t.model_versions.c.version)
            ).mappings()
            aliases = self._aliases(conn, name)
            return [_version(row, aliases) for row in rows]

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self._begin() as conn:
            return _version(self._require_version(conn, name, version), self._aliases(conn, name))

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a URI (``models:/NAME/3``, ``@alias``, ``/latest``) points at now."""
        ref = parse_model_uri(ref) if isinstance(ref, str) else ref
        with self._begin() as conn:
            if ref.version is not None:
                version = ref.version
            elif ref.alias is not None:
                found = conn.execute(
                    select(t.aliases.c.version).where(
                        t.aliases.c.name == ref.name, t.aliases.c.alias == ref.alias
                    )
                ).scalar()
                if found is None:
                    model = self._model(conn, ref.name)
                    known = ", ".join(sorted(model.aliases)) or "none"
                    raise NotFoundError(
                        f"model {ref.name!r} has no alias {ref.alias!r} (its aliases: {known})"
                    )
                version = found
            else:
                latest = conn.execute(
                    select(func.max(t.model_versions.c.version)).where(
                        t.model_versions.c.name == ref.name
                    )
                ).scalar()
                if latest is None:
                    self._model(conn, ref.name)
                    raise NotFoundError(f"model {ref.name!r} has no versions")
                version = latest
            return _version(
                self._require_version(conn, ref.name, version), self._aliases(conn, ref.name)
            )

    def fetch(self, record: ModelVersion) -> Path:
        """A local folder holding the version's package (the store itself when it is local)."""
        local = self.store.local_path(record.artifact_uri)
        if local is not None:
            return local
        target = self.cache_dir / record.manifest_sha256
        if (target / "manifest.json").is_file() and manifest_digest(
            target
        ) == record.manifest_sha256:
            return target
        staging = self.cache_dir / f".download-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            self.store.download(record.artifact_uri, staging)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    # ---- API keys for the inference server (seaway/registry/keys.py, docs/security.md) ---------

    def create_api_key(
        self,
        scope: Scope | str,
        *,
        name: str | None = None,
        rate_limit: float | None = None,
        created_by: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key: its record, and the key itself, which only this return value ever holds.

        ``scope`` is ``predict`` or ``admin``; ``rate_limit`` is requests per second (``None``:
        the server's default); ``created_by`` defaults to the operating-system user.
        """
        with self._begin() as conn:
            return keys.create_api_key(
                conn, scope, name=name, rate_limit=rate_limit, created_by=created_by
            )

    def list_api_keys(self, include_revoked: bool = False) -> list[ApiKey]:
        """Keys oldest first; revoked ones too with ``include_revoked``."""
        with self._begin() as conn:
            return keys.list_api_keys(conn, include_revoked=include_revoked)

    def get_api_key(self, key_id: str) -> ApiKey:
        """One key, revoked or not; ``NotFoundError`` when there is none with that id."""
        with self._begin() as conn:
            return keys.get_api_key(conn, key_id)

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """Revoke a key (idempotent: a revoked one comes back unchanged); ``NotFoundError``."""
        with self._begin() as conn:
            return keys.revoke_api_key(conn, key_id)

    def active_api_keys(self) -> list[ApiKey]:
        """The keys a server should accept now, with their hashes, to load into memory."""
        return self.list_api_keys(include_revoked=False)

    # ---- internals -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Connection]:
        """One transaction, with driver errors translated into Seaway's."""
        with translate_errors(self.url), self._engine.begin() as conn:
            yield conn

    def _model(self, conn: Connection, name: str) -> RegisteredModel:
        row = conn.execute(select(t.models).where(t.models.c.name == name)).mappings().first()
        if row is None:
            raise self._model_not_found(conn, name)
        stats = conn.execute(
            select(func.max(t.model_versions.c.version), func.count()).where(
                t.model_versions.c.name == name
            )
        ).one()
        return RegisteredModel(
            name=row["name"],
            description=row["description"],
            tags=dict(row["tags"] or {}),
            created_at=_aware(row["created_at"]),
            updated_at=_aware(row["updated_at"]),
            latest_version=stats[0],
            version_count=stats[1],
            aliases={
                alias: version
                for version, names in self._aliases(conn, name).items()
                for alias in names
            },
        )

    def _model_not_found(self, conn: Connection, name: str) -> NotFoundError:
        known = (
            conn.execute(select(t.models.c.name).order_by(t.models.c.name).limit(20))
            .scalars()
            .all()
        )
        hint = f"registered models: {', '.join(known)}" if known else "the registry is empty"
        return NotFoundError(f"no model named {name!r} in the registry ({hint})")

    def _require_version(self, conn: Connection, name: str, version: int) -> RowMapping:
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
            model = self._model(conn, name)
            latest = (
                f"latest is {model.latest_version}"
                if model.latest_version
                else "it has no versions"
            )
            raise NotFoundError(f"model {name!r} has no version {version} ({latest})")
        return row

    def _aliases(self, conn: Connection, name: str) -> dict[int, list[str]]:
        by_version: dict[int, list[str]] = {}
        for alias, version in conn.execute(
            select(t.aliases.c.alias, t.aliases.c.version)
            .where(t.aliases.c.name == name)
            .order_by(t.aliases.c.alias)
        ):
            by_version.setdefault(version, []).append(alias)
        return by_version


def _version(row: RowMapping, aliases: dict[int, list[str]]) -> ModelVersion:
    return ModelVersion(
        name=row["name"],
        version=row["version"],
        flavor=row["flavor"],
        artifact_uri=row["artifact_uri"],
        manifest_sha256=row["manifest_sha256"],
        manifest=Manifest.model_validate(row["manifest"]),
        created_at=_aware(row["created_at"]),
        description=row["description"],
        tags=dict(row["tags"] or {}),
        metrics=dict(row["metrics"] or {}),
        lineage=dict(row["lineage"] or {}),
        aliases=tuple(aliases.get(row["version"], ())),
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
