"""A job's output folder: part files committed atomically, so a rerun knows exactly what is done.

Layout (``part-FFFFF-CCCCCC`` = input file number, chunk number)::

    preds/
      _seaway_job.json                 the job: id, model version, inputs, settings
      part-00000-000000.parquet        predictions of chunk 0 of file 0
      _rejects/part-00000-000000.parquet   its rejected rows, with _file, _row, _reason
      _chunks/part-00000-000000.json   the chunk's counts: the marker that it is committed
      _SUCCESS                         written last, with the totals

A chunk is committed in three steps, each a write to a temporary name then a rename: rejects,
predictions, then the marker. A job killed anywhere in between finds no marker on resume and
redoes the chunk, rewriting the same names, so every input row lands exactly once.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import fsspec

from seaway.errors import ArtifactStoreError, ConflictError

MANIFEST = "_seaway_job.json"
SUCCESS = "_SUCCESS"
CHUNKS = "_chunks"
REJECTS = "_rejects"
TMP = "_tmp"
EXTENSIONS = {"parquet": ".parquet", "csv": ".csv"}


@dataclass(frozen=True)
class ChunkStats:
    rows_in: int
    rows_out: int
    rows_rejected: int


class OutputFolder:
    def __init__(self, url: str, output_format: str = "parquet") -> None:
        if output_format not in EXTENSIONS:
            raise ConflictError(
                f"output format {output_format!r} is not supported; use parquet or csv"
            )
        self.url = url
        self.format = output_format
        self.fs, self.root = fsspec.core.url_to_fs(url)

    # ---- the job's manifest ---------------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any] | None:
        path = self._path(MANIFEST)
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "rb") as handle:
            return dict(json.loads(handle.read()))

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        self._put(MANIFEST, json.dumps(dict(manifest), indent=2, sort_keys=True).encode())

    def is_fresh(self) -> bool:
        """No folder yet, or an empty one."""
        try:
            return not self.fs.exists(self.root) or not self.fs.ls(self.root)
        except FileNotFoundError:
            return True

    def succeeded(self) -> dict[str, Any] | None:
        path = self._path(SUCCESS)
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "rb") as handle:
            return dict(json.loads(handle.read() or b"{}"))

    def mark_success(self, totals: Mapping[str, Any]) -> None:
        self._put(SUCCESS, json.dumps(dict(totals), sort_keys=True).encode())
        if self.fs.exists(self._path(TMP)):
            self.fs.rm(self._path(TMP), recursive=True)

    # ---- chunks -------------------------------------------------------------------------------

    def committed(self) -> dict[tuple[int, int], ChunkStats]:
        """Every committed chunk and its counts."""
        folder = self._path(CHUNKS)
        if not self.fs.exists(folder):
            return {}
        done: dict[tuple[int, int], ChunkStats] = {}
        for path in self.fs.ls(folder, detail=False):
            key = _parse(posixpath.basename(path), ".json")
            if key is None:
                continue
            with self.fs.open(path, "rb") as handle:
                done[key] = ChunkStats(**json.loads(handle.read()))
        return done

    def commit(
        self, file_index: int, chunk: int, output: Any, rejects: Any | None, stats: ChunkStats
    ) -> None:
        name = part_name(file_index, chunk)
        extension = EXTENSIONS[self.format]
        if rejects is not None and rejects.num_rows:
            self._put(f"{REJECTS}/{name}{extension}", self._encode(rejects))
        if output.num_rows:
            self._put(f"{name}{extension}", self._encode(output))
        self._put(f"{CHUNKS}/{name}.json", json.dumps(stats.__dict__).encode())

    def _encode(self, table: Any) -> bytes:
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        if self.format == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, sink, compression="snappy")
        else:
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, sink)
        return bytes(sink.getvalue())

    # ---- plumbing -----------------------------------------------------------------------------

    def _path(self, relative: str) -> str:
        return posixpath.join(self.root, relative)

    def _put(self, relative: str, data: bytes) -> None:
        """Write under a temporary name, then rename: readers never see half a file."""
        final = self._path(relative)
        temporary = self._path(f"{TMP}/{uuid.uuid4().hex}-{posixpath.basename(relative)}")
        try:
            self.fs.makedirs(posixpath.dirname(temporary), exist_ok=True)
            self.fs.makedirs(posixpath.dirname(final), exist_ok=True)
            with self.fs.open(temporary, "wb") as handle:
                handle.write(data)
            self.fs.mv(temporary, final)
        except OSError as exc:
            raise ArtifactStoreError(f"cannot write {final} in the output folder: {exc}") from exc


def part_name(file_index: int, chunk: int) -> str:
    return f"part-{file_index:05d}-{chunk:06d}"


def _parse(name: str, extension: str) -> tuple[int, int] | None:
    if not (name.startswith("part-") and name.endswith(extension)):
        return None
    try:
        _, file_part, chunk_part = name[: -len(extension)].split("-")
        return int(file_part), int(chunk_part)
    except ValueError:
        return None
