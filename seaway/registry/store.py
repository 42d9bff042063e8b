"""Artifact stores: a local folder by default, any fsspec URL (``s3://bucket/prefix``) otherwise.

Packages are stored under ``ROOT/NAME/UNIQUE-ID``; the registry row names that location. A
package is uploaded before its row is committed, so a crash can leave an unreferenced folder (an
orphan) but never a row without files; :meth:`Registry.collect_garbage` removes orphans.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from seaway.errors import ArtifactStoreError, MissingDependencyError

#: fsspec protocols that a Seaway extra installs the driver for.
_PROTOCOL_EXTRAS = {
    "s3": ("s3fs", "s3"),
    "s3a": ("s3fs", "s3"),
}


@dataclass(frozen=True)
class StoredEntry:
    uri: str
    modified: datetime | None  # None: the store cannot tell (count it as young)


class ArtifactStore:
    def __init__(self, root: str) -> None:
        self.root = root
        try:
            self._fs, path = fsspec.core.url_to_fs(root)
        except ImportError as exc:
            protocol = root.split("://", 1)[0]
            if protocol in _PROTOCOL_EXTRAS:
                package, extra = _PROTOCOL_EXTRAS[protocol]
                raise MissingDependencyError(package, extra, f"The artifact store {root}") from exc
            raise ArtifactStoreError(
                f"artifact store {root!r} needs fsspec's driver for {protocol}:// ({exc}); install it"
            ) from exc
        except (ValueError, OSError) as exc:
            raise ArtifactStoreError(f"artifact store {root!r} cannot be opened: {exc}") from exc
        self._path = path.rstrip("/")

    @property
    def is_local(self) -> bool:
        return isinstance(self._fs, LocalFileSystem)

    def _uri(self, path: str) -> str:
        return path if self.is_local else self._fs.unstrip_protocol(path)

    def _path_of(self, uri: str) -> str:
        return str(self._fs._strip_protocol(uri))

    def upload(self, local_dir: Path, name: str) -> str:
        """Copy a package folder to a new, unique location and return its URI."""
        target = f"{self._path}/{name}/{uuid.uuid4().hex}"
        try:
            if self.is_local:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(local_dir, target)
            else:
                self._fs.put(str(local_dir), target, recursive=True)
        except OSError as exc:
            raise ArtifactStoreError(
                f"cannot write the package to {self._uri(target)}: {exc}"
            ) from exc
        return self._uri(target)

    def local_path(self, uri: str) -> Path | None:
        """The package folder itself when the store is local (no copy needed)."""
        return Path(self._path_of(uri)) if self.is_local else None

    def download(self, uri: str, dest: Path) -> None:
        try:
            self._fs.get(self._path_of(uri).rstrip("/") + "/", str(dest) + "/", recursive=True)
        except (OSError, FileNotFoundError) as exc:
            raise ArtifactStoreError(f"cannot read the package at {uri}: {exc}") from exc

    def delete(self, uri: str) -> None:
        try:
            self._fs.rm(self._path_of(uri), recursive=True)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ArtifactStoreError(f"cannot delete {uri}: {exc}") from exc

    def entries(self) -> list[StoredEntry]:
        """Every stored package location (``ROOT/NAME/ID``), with its modification time."""
        found: list[StoredEntry] = []
        try:
            if not self._fs.exists(self._path):
                return found
            for model_dir in self._fs.ls(self._path, detail=True):
                if model_dir.get("type") != "directory":
                    continue
                for entry in self._fs.ls(model_dir["name"], detail=True):
                    if entry.get("type") == "directory":
                        found.append(StoredEntry(self._uri(entry["name"]), self._age(entry)))
        except OSError as exc:
            raise ArtifactStoreError(f"cannot list artifact store {self.root}: {exc}") from exc
        return found

    def _age(self, folder: dict[str, Any]) -> datetime | None:
        """When a package folder last changed: its own time, else its newest file's.

        Object stores (S3, ``memory://``) give prefixes no time, so the files decide; ``None``
        when any of them has no time either (callers treat an unknown age as young).
        """
        modified = _modified(self._fs, folder)
        if modified is not None:
            return modified
        times = [
            _modified(self._fs, entry)
            for entry in self._fs.find(folder["name"], detail=True).values()
        ]
        if not times or any(when is None for when in times):
            return None
        return max(when for when in times if when is not None)


def _modified(fs: Any, entry: dict[str, Any]) -> datetime | None:
    for key in ("mtime", "LastModified", "updated", "created"):
        value = entry.get(key)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, tz=UTC)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        value = fs.modified(entry["name"])
    except (NotImplementedError, OSError, KeyError):
        return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
