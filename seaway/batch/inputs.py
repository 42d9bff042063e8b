"""Where a batch job's rows come from: a file, a folder or a glob, local or any fsspec URL.

Files are listed once, sorted, so a job (and its resumption) always sees them in the same order;
part files are numbered by that order. Hidden files and names starting with ``_`` (``_SUCCESS``,
Spark's ``_committed_*``) are skipped in folders, as every data tool does.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

import fsspec

from seaway.errors import InvalidInputError

FORMATS: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet", ".pq"),
    "csv": (".csv",),
    "jsonl": (".jsonl", ".ndjson", ".json"),
}


class BatchInputError(InvalidInputError):
    """An input that cannot be read as asked (missing, empty, unreadable, wrong columns)."""


@dataclass(frozen=True)
class InputFile:
    url: str  # protocol-qualified, so a worker process can open it on its own
    format: str
    size: int

    def open(self, mode: str = "rb") -> Any:
        return fsspec.open(self.url, mode).open()


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
        files = [
            InputFile(fs.unstrip_protocol(p), input_format or _detect(p), int(fs.size(p) or 0))
            for p in paths
        ]
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
