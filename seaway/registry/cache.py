"""The local package cache: a folder per manifest digest that servers and loaders may keep using.

Whoever loads a version gets ``CACHE/DIGEST``, never the artifact store's own folder: a version
deleted (``seaway models delete --force``) while a server serves it keeps its files in the cache,
so the server's next replica restart still finds them. From a local store the snapshot is made of
hard links (no copy, and a deleted store folder does not take the linked files with it), falling
back to copies across filesystems; from a remote store it is a download.

Several processes may fetch the same version at once. Each builds its snapshot in a folder of its
own and renames it into place in one step; the first rename wins and the others discard theirs. A
folder in place is never removed or replaced while valid, since another process may be loading
from it.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from seaway.errors import ArtifactStoreError, PackageIntegrityError
from seaway.packaging.manifest import MANIFEST_NAME
from seaway.packaging.reader import manifest_digest

#: Fills an empty staging folder with the package's files.
Fill = Callable[[Path], None]


def cached_package(cache_dir: Path, digest: str, fill: Fill, *, source: str) -> Path:
    """``cache_dir/digest``, filled once by ``fill`` when it is not there (or not that package).

    ``source`` names where the files come from, for errors.
    """
    target = cache_dir / digest
    if _holds(target, digest):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        fill(staging)
        if not _holds(staging, digest):
            raise PackageIntegrityError(
                f"the package at {source} was modified: its {MANIFEST_NAME} does not match the "
                "digest the registry recorded; refusing to load it"
            )
        for _ in range(3):
            try:
                os.rename(staging, target)  # atomic; fails when target exists and is not empty
                return target
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise ArtifactStoreError(
                        f"cannot write the cache folder {target}: {exc}"
                    ) from exc
            if _holds(target, digest):
                return target  # another process won the race: use its folder, drop ours
            _set_aside(target)  # not this package (a corrupt leftover): out of the way, then retry
        raise ArtifactStoreError(f"cannot claim the cache folder {target}: it keeps changing")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def snapshot(source: Path) -> Fill:
    """A ``Fill`` that hard-links (or, across filesystems, copies) every file of ``source``."""

    def fill(staging: Path) -> None:
        if not source.is_dir():
            raise ArtifactStoreError(f"cannot read the package at {source}: it does not exist")
        try:
            shutil.copytree(source, staging, copy_function=_link_or_copy, dirs_exist_ok=True)
        except (OSError, shutil.Error) as exc:
            raise ArtifactStoreError(f"cannot copy the package at {source}: {exc}") from exc

    return fill


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _holds(folder: Path, digest: str) -> bool:
    try:
        return manifest_digest(folder) == digest
    except OSError:
        return False


def _set_aside(target: Path) -> None:
    """Move an invalid folder away (one atomic rename) and delete it; a race to do so is fine."""
    aside = target.with_name(f".stale-{uuid.uuid4().hex}")
    try:
        os.rename(target, aside)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ArtifactStoreError(f"cannot replace the cache folder {target}: {exc}") from exc
    shutil.rmtree(aside, ignore_errors=True)
