"""SHA-256 of package files, and verification that names the first file that differs."""

from __future__ import annotations

import hashlib
from pathlib import Path

from seaway.errors import PackageIntegrityError
from seaway.packaging.manifest import require_inside

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def list_files(root: Path, *, exclude: frozenset[str] = frozenset()) -> list[str]:
    """Relative POSIX paths of every regular file under ``root``, sorted."""
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and path.relative_to(root).as_posix() not in exclude
    )


def checksum_tree(root: Path, *, exclude: frozenset[str] = frozenset()) -> dict[str, str]:
    return {rel: sha256_file(root / rel) for rel in list_files(root, exclude=exclude)}


def verify_tree(
    root: Path, expected: dict[str, str], *, exclude: frozenset[str] = frozenset()
) -> None:
    """Refuse a package whose files differ from ``expected`` in any way.

    Every listed path must lie inside ``root``, links included: ``root / "/etc/passwd"`` is
    ``/etc/passwd``, and a link to a file outside would let a loader read what was not verified
    by the time it reads it.
    """
    inside = root.resolve()
    for rel, digest in sorted(expected.items()):
        require_inside(rel, "file")
        path = root / rel
        if not path.resolve().is_relative_to(inside):
            raise PackageIntegrityError(
                f"package {root} is unsafe: file {rel!r} is a link to {path.resolve()}, outside "
                "the package folder; refusing to load it"
            )
        if not path.is_file():
            raise PackageIntegrityError(
                f"package {root} is incomplete: file {rel!r} listed in its manifest is missing"
            )
        actual = sha256_file(path)
        if actual != digest:
            raise PackageIntegrityError(
                f"package {root} was modified: file {rel!r} has SHA-256 {actual[:12]}..., "
                f"its manifest says {digest[:12]}...; refusing to load it"
            )
    extra = [rel for rel in list_files(root, exclude=exclude) if rel not in expected]
    if extra:
        raise PackageIntegrityError(
            f"package {root} was modified: file {extra[0]!r} is not listed in its manifest; "
            "refusing to load it"
        )
