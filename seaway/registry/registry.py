"""The ``Registry``: registered models, numbered versions, aliases, and their artifacts.

Registration writes artifacts first and then commits all metadata in one transaction; a failure in
between deletes the upload, and a crash leaves only an orphan folder for :meth:`collect_garbage`.
Version numbers come from a per-name counter (``seaway_version_counters``) bumped under a lock
(``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on the model row in PostgreSQL), with a retry on the
rare unique-key collision; the counter outlives deleted versions and models, so a number is never
handed out twice. Transactions that only read use :meth:`Registry._read`, which on SQLite does not
take the write lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from seaway.apikeys import ApiKey, Scope
from seaway.config import Settings
from seaway.errors import ConflictError, NotFoundError
from seaway.packaging.reader import manifest_digest, open_package
from seaway.registry import keys
from seaway.registry import queries as q
from seaway.registry import tables as t
from seaway.registry.alerts import AlertStore
from seaway.registry.cache import cached_package, snapshot
from seaway.registry.db import READ_ONLY, create_registry_engine, safe_url, translate_errors
from seaway.registry.deployment_queries import deployments_using, in_use_message
from seaway.registry.deployments import DeploymentStore
from seaway.registry.jobs import JobStore, ScheduleStore
from seaway.registry.records import ModelVersion, RegisteredModel
from seaway.registry.schema import check_schema
from seaway.registry.store import ArtifactStore
from seaway.registry.uri import ModelRef, parse_model_uri, validate_alias, validate_name

_VERSION_RETRIES = 5
_ALIAS_RETRIES = 3


class Registry:
    """Metadata in SQL (SQLite or PostgreSQL), artifacts in a folder or fsspec store."""

    def __init__(
        self, url: str, artifact_root: str, *, cache_dir: str | os.PathLike[str] | None = None
    ) -> None:
        self.url = url
        self.store = ArtifactStore(artifact_root)
        self.cache_dir = Path(cache_dir) if cache_dir else Path(artifact_root).parent / "cache"
        self._engine: Engine = create_registry_engine(url)
        self._reader: Engine = self._engine.execution_options(**{READ_ONLY: True})
        try:
            check_schema(self._engine)  # SQLite upgrades itself; PostgreSQL only on request
        except BaseException:
            self._engine.dispose()
            raise
        #: batch job records and schedules (``seaway batch``)
        self.jobs = JobStore(self._begin, self._read)
        self.schedules = ScheduleStore(self._begin, self._read)
        #: alert events: each time a served model's alert fires or resolves
        self.alerts = AlertStore(self._begin, self._read)
        self._deployments = DeploymentStore(self._begin, self._read)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Registry:
        settings = settings or Settings.resolve()
        return cls(settings.registry_url, settings.artifact_root, cache_dir=settings.cache_dir)

    @property
    def deployments(self) -> DeploymentStore:
        """Deployments: named endpoints over versions, their revisions, rollouts and leases."""
        return self._deployments

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
        model_description: str | None = None,
        model_tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Register a saved package folder as the next version of ``name``.

        ``description`` and ``tags`` belong to the new version; ``model_description`` and
        ``model_tags`` to the registered model (tags merged into its own), set in the same
        transaction.
        """
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
                model_description=model_description,
                model_tags=dict(model_tags or {}),
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
                    version = q.next_version(conn, name)
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
                    q.update_model_row(
                        conn,
                        name,
                        now,
                        description=row["model_description"],
                        tags=row["model_tags"],
                    )
                return version
            except ConflictError as exc:  # the same number taken concurrently: take the next
                if not _lost_a_race(exc) or attempt == _VERSION_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _ensure_model(self, conn: Connection, name: str, now: datetime) -> None:
        locked = q.lock_model(name)
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
        for attempt in range(_ALIAS_RETRIES):
            try:
                with self._begin() as conn:
                    q.require_version(conn, name, version)
                    values = {"version": version, "updated_at": _now()}
                    moved = conn.execute(
                        update(t.aliases)
                        .where(t.aliases.c.name == name, t.aliases.c.alias == alias)
                        .values(**values)
                    )
                    if moved.rowcount == 0:
                        conn.execute(insert(t.aliases).values(name=name, alias=alias, **values))
                return
            except ConflictError as exc:
                # PostgreSQL: another writer created the alias between our update and insert;
                # the retry's update moves it (last writer wins, as with an existing alias)
                if not _lost_a_race(exc) or attempt == _ALIAS_RETRIES - 1:
                    raise

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
        remove_tags: Iterable[str] = (),
    ) -> ModelVersion:
        """Set a version's description; ``tags`` are merged into its tags, ``remove_tags`` dropped."""
        with self._begin() as conn:
            row = q.require_version(conn, name, version)
            values: dict[str, Any] = {}
            if description is not None:
                values["description"] = description
            merged = q.merge_tags(row["tags"], tags, remove_tags)
            if merged is not None:
                values["tags"] = merged
            if values:
                conn.execute(
                    update(t.model_versions)
                    .where(t.model_versions.c.name == name, t.model_versions.c.version == version)
                    .values(**values)
                )
        return self.get_version(name, version)

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        remove_tags: Iterable[str] = (),
    ) -> RegisteredModel:
        """Set a registered model's description; ``tags`` are merged into its tags (a key given
        again is overwritten), ``remove_tags`` are dropped. Versions keep their own."""
        with self._begin() as conn:
            if conn.execute(q.lock_model(name)).first() is None:
                raise q.model_not_found(conn, name)
            q.update_model_row(
                conn, name, _now(), description=description, tags=tags, remove_tags=remove_tags
            )
            return q.model(conn, name)

    def delete_version(self, name: str, version: int, *, force: bool = False) -> ModelVersion:
        """Delete a version; refused while an alias points at it unless ``force``, and always
        while a deployment's current revision uses it.

        The record returned names, in ``aliases``, the aliases that pointed at it (removed with it).
        """
        with self._begin() as conn:
            conn.execute(q.lock_model(name)).first()
            record = q.version_record(
                q.require_version(conn, name, version), q.aliases_of(conn, name)
            )
            users = deployments_using(conn, name, version)
            if users:
                raise ConflictError(
                    f"version {version} of model {name} is used by {in_use_message(users)}: "
                    "change or delete the deployment first"
                )
            if record.aliases and not force:
                raise ConflictError(
                    f"version {version} of {name!r} is what alias(es) "
                    f"{', '.join(record.aliases)} point at; move them first, or delete with "
                    "--force (force=True) to remove them too"
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

    def delete_model(self, name: str, *, force: bool = False) -> RegisteredModel:
        """Delete a registered model with all its versions, aliases and artifacts.

        Refused while any alias points at one of its versions (servers and scheduled jobs follow
        aliases) unless ``force``, and always while a deployment serves it. The record returned is
        the model as it was, its ``aliases`` the ones removed. Version numbers stay spent:
        registering the name again continues after the highest number it ever had.
        """
        with self._begin() as conn:
            if conn.execute(q.lock_model(name)).first() is None:
                raise q.model_not_found(conn, name)
            record = q.model(conn, name)
            users = deployments_using(conn, name)
            if users:
                raise ConflictError(
                    f"model {name} is used by {in_use_message(users)}: delete the deployment first"
                )
            if record.aliases and not force:
                in_use = ", ".join(f"{a} -> {v}" for a, v in sorted(record.aliases.items()))
                raise ConflictError(
                    f"model {name!r} has aliases ({in_use}); remove them first (seaway models "
                    "alias NAME ALIAS --delete), or delete with --force (force=True) to remove "
                    "them too"
                )
            uris = (
                conn.execute(
                    select(t.model_versions.c.artifact_uri).where(t.model_versions.c.name == name)
                )
                .scalars()
                .all()
            )
            conn.execute(delete(t.aliases).where(t.aliases.c.name == name))
            conn.execute(delete(t.model_versions).where(t.model_versions.c.name == name))
            conn.execute(delete(t.models).where(t.models.c.name == name))
        for uri in uris:  # after commit: a failure here only leaves orphans for collect_garbage
            self.store.delete(uri)
        return record

    def collect_garbage(self, *, older_than: timedelta = timedelta(hours=1)) -> list[str]:
        """Delete stored packages no version references (left by crashed registrations).

        ``older_than`` spares uploads whose registration may still be in flight. An upload whose
        age the store cannot tell counts as young and is kept: deleting the files of a version
        about to be committed would lose it, keeping an orphan only wastes space.
        """
        cutoff = _now() - older_than
        entries = self.store.entries()  # listed before the query: an upload listed here and
        with self._read() as conn:  # committed after it would otherwise look like an orphan
            referenced = set(conn.execute(select(t.model_versions.c.artifact_uri)).scalars())
        removed = []
        for entry in entries:
            if entry.uri in referenced or entry.modified is None or entry.modified > cutoff:
                continue
            self.store.delete(entry.uri)
            removed.append(entry.uri)
        return removed

    # ---- reading -------------------------------------------------------------------------------

    def list_models(self) -> list[RegisteredModel]:
        with self._read() as conn:
            names = conn.execute(select(t.models.c.name).order_by(t.models.c.name)).scalars().all()
            return [q.model(conn, name) for name in names]

    def get_model(self, name: str) -> RegisteredModel:
        with self._read() as conn:
            return q.model(conn, name)

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self._read() as conn:
            q.model(conn, name)
            rows = conn.execute(
                select(t.model_versions)
                .where(t.model_versions.c.name == name)
                .order_by(t.model_versions.c.version)
            ).mappings()
            aliases = q.aliases_of(conn, name)
            return [q.version_record(row, aliases) for row in rows]

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self._read() as conn:
            return q.version_record(
                q.require_version(conn, name, version), q.aliases_of(conn, name)
            )

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a URI (``models:/NAME/3``, ``@alias``, ``/latest``) points at now."""
        ref = parse_model_uri(ref) if isinstance(ref, str) else ref
        with self._read() as conn:
            if ref.version is not None:
                version = ref.version
            elif ref.alias is not None:
                found = conn.execute(
                    select(t.aliases.c.version).where(
                        t.aliases.c.name == ref.name, t.aliases.c.alias == ref.alias
                    )
                ).scalar()
                if found is None:
                    model = q.model(conn, ref.name)
                    known = ", ".join(sorted(model.aliases)) or "none"
                    example = model.latest_version or "VERSION"
                    raise NotFoundError(
                        f"model {ref.name!r} has no alias {ref.alias!r} (its aliases: {known}); "
                        f"point it at a version with 'seaway models alias {ref.name} {ref.alias} "
                        f"{example}' (Registry.set_alias({ref.name!r}, {ref.alias!r}, {example}))"
                    )
                version = found
            else:
                latest = conn.execute(
                    select(func.max(t.model_versions.c.version)).where(
                        t.model_versions.c.name == ref.name
                    )
                ).scalar()
                if latest is None:
                    q.model(conn, ref.name)
                    raise NotFoundError(f"model {ref.name!r} has no versions")
                version = latest
            return q.version_record(
                q.require_version(conn, ref.name, version), q.aliases_of(conn, ref.name)
            )

    def fetch(self, record: ModelVersion) -> Path:
        """A local folder holding the version's package, in the cache (``seaway.registry.cache``).

        Never the store's own folder, even for a local store: what a server loads from stays
        there when the version is deleted. Safe to call from several processes at once.
        """
        local = self.store.local_path(record.artifact_uri)
        if local is not None:
            fill = snapshot(local)
        else:

            def fill(staging: Path) -> None:
                self.store.download(record.artifact_uri, staging)

        return cached_package(
            self.cache_dir, record.manifest_sha256, fill, source=record.artifact_uri
        )

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
        with self._read() as conn:
            return keys.list_api_keys(conn, include_revoked=include_revoked)

    def get_api_key(self, key_id: str) -> ApiKey:
        """One key, revoked or not; ``NotFoundError`` when there is none with that id."""
        with self._read() as conn:
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
        """One transaction that may write, with driver errors translated into Seaway's."""
        with translate_errors(self.url), self._engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        """One transaction that only reads (on SQLite: a deferred BEGIN, no write lock)."""
        with translate_errors(self.url), self._reader.begin() as conn:
            yield conn


def _lost_a_race(exc: ConflictError) -> bool:
    """Whether a conflict is a unique key taken by a concurrent writer (worth retrying)."""
    return isinstance(exc.__cause__, IntegrityError)


def _now() -> datetime:
    return datetime.now(UTC)
