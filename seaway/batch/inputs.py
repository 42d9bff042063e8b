"""Where a batch job's rows come from: a file, a folder or a glob, local or any fsspec URL.

Files are listed once, sorted, so a job (and its resumption) always sees them in the same order;
part files are numbered by that order. Hidden files and names starting with ``_`` (``_SUCCESS``,
Spark's ``_committed_*``) are skipped in folders, as every data tool does.

Each file is listed with its size and modification time: a resumed job skips the chunks it
committed by their row numbers, which mean nothing once a file has changed, so ``changed`` tells
a resumption which files differ from the job's list.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fsspec

from seaway.errors import BatchInputError

FORMATS: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet", ".pq"),
    "csv": (".csv",),
    "jsonl": (".jsonl", ".ndjson", ".json"),
}


@dataclass(frozen=True)
class InputFile:
    url: str  # protocol-qualified, so a worker process can open it on its own
    format: str
    size: int
    #: the file system's modification time, as text (None where it tells none, and in the lists
    #: of jobs started before it was recorded)
    modified: str | None = None

    def open(self, mode: str = "rb") -> Any:
        return fsspec.open(self.url, mode).open()


def changed(file: InputFile) -> str | None:
    """How ``file`` differs now from when it was listed (gone, resized, rewritten); None if not."""
    try:
        fs, path = fsspec.core.url_to_fs(file.url)
        info = fs.info(path)
    except FileNotFoundError:
        return "it no longer exists"
    except (OSError, ValueError, ImportError) as exc:
        return f"it cannot be checked: {exc}"
    size = int(info.get("size") or 0)
    if size != file.size:
        return f"its size was {file.size:,} bytes and is now {size:,}"
    modified = _modified(info)
    if file.modified is not None and modified is not None and modified != file.modified:
        return f"it was modified at {modified} (listed at {file.modified})"
    return None


def _modified(info: dict[str, Any]) -> str | None:
    """A file's modification time from an fsspec listing, whatever the file system calls it."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(key)
        if value is not None:
            if isinstance(value, int | float):
                return datetime.fromtimestamp(value, UTC).isoformat()
            return value.isoformat() if isinstance(value, datetime) else str(value)
    return None


def resolve_inputs(spec: str, input_format: str | None = None) -> list[InputFile]:
    """The files ``spec`` names, in a stable order, all of one format."""
    if input_format is not None and input_format not in FORMATS:
        raise BatchInputError(
            f"input format {input_format!r} is not supported; use one of {', '.join(FORMATS)}"
        )
    try:
        fs, path = fsspec.core.url_to_fs(spec)
    except (ImportError, ValueError) as exc:
        raise BatchInputError(f"cannot open input {spec!r}: {exc}") from exc
    try:
        if fsspec.core.has_magic(path):
            paths = sorted(p for p in fs.glob(path) if fs.isfile(p))
            if not paths:
                raise BatchInputError(f"input pattern {spec!r} matches no files")
        elif fs.isdir(path):
            paths = sorted(
                p
                for p in fs.find(path)
                if not _hidden(p, path) and (input_format or _detect(p, strict=False))
            )
            if not paths:
                known = ", ".join(ext for exts in FORMATS.values() for ext in exts)
                raise BatchInputError(f"input folder {spec!r} holds no data files ({known})")
        elif fs.isfile(path):
            paths = [path]
        else:
            raise BatchInputError(f"input {spec!r} does not exist")
        files = []
        for p in paths:
            info = fs.info(p)
            files.append(
                InputFile(
                    fs.unstrip_protocol(p),
                    input_format or _detect(p),
                    int(info.get("size") or 0),
                    _modified(info),
                )
            )
    except BatchInputError:
        raise
    except (OSError, ValueError) as exc:
        raise BatchInputError(f"cannot list input {spec!r}: {exc}") from exc
    formats = {f.format for f in files}
    if len(formats) > 1:
        raise BatchInputError(
            f"input {spec!r} mixes formats ({', '.join(sorted(formats))}); one job reads one "
            "format: narrow it with a glob such as data/*.parquet"
        )
    return files


def _detect(path: str, strict: bool = True) -> str:
    lower = path.lower()
    for name, extensions in FORMATS.items():
        if lower.endswith(extensions):
            return name
    if strict:
        raise BatchInputError(
            f"cannot tell the format of {path!r} from its name; pass --input-format "
            f"({', '.join(FORMATS)})"
        )
    return ""


def _hidden(path: str, root: str) -> bool:
    """Below ``root``, a name (file or folder) starting with ``.`` or ``_``."""
    relative = posixpath.relpath(path, root)
    return any(part.startswith((".", "_")) for part in relative.split("/"))
