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

A rename is atomic but not durable: after a power loss the file system may keep a renamed name
whose data never reached the disk (an empty part). On a local file system each part is therefore
flushed (``fsync``) before its rename and its folder after it, before the marker is written, so a
marker that survives a crash always stands for a complete part. The marker itself is not flushed:
a marker lost or left empty by a crash only means the chunk is redone (``committed`` ignores a
marker it cannot read). Object stores make an upload visible only once it is whole.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from seaway.errors import ArtifactStoreError, ConflictError

MANIFEST = "_seaway_job.json"
SUCCESS = "_SUCCESS"
CHUNKS = "_chunks"
REJECTS = "_rejects"
TMP = "_tmp"
EXTENSIONS = {"parquet": ".parquet", "csv": ".csv"}

log = logging.getLogger("seaway.batch")


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
        #: a local file system: files and folders are flushed before a commit relies on them
        self.local = isinstance(self.fs, LocalFileSystem)

    # ---- the job's manifest ---------------------------------------------------------------------

    def read_manifest(self) -> dict[str, Any] | None:
        path = self._path(MANIFEST)
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "rb") as handle:
            return dict(json.loads(handle.read()))

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        path = self._put(MANIFEST, json.dumps(dict(manifest), indent=2, sort_keys=True).encode())
        self._sync_folder(posixpath.dirname(path))

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
        path = self._put(SUCCESS, json.dumps(dict(totals), sort_keys=True).encode())
        self._sync_folder(posixpath.dirname(path))
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
                data = handle.read()
            try:
                done[key] = ChunkStats(**json.loads(data))
            except (ValueError, TypeError):  # left empty or torn by a crash (see the docstring)
                log.warning("chunk marker %s is unreadable: the chunk will be scored again", path)
        return done

    def commit(
        self, file_index: int, chunk: int, output: Any, rejects: Any | None, stats: ChunkStats
    ) -> None:
        name = part_name(file_index, chunk)
        extension = EXTENSIONS[self.format]
        written: list[str] = []
        if rejects is not None and rejects.num_rows:
            written.append(self._put(f"{REJECTS}/{name}{extension}", self._encode(rejects)))
        if output.num_rows:
            written.append(self._put(f"{name}{extension}", self._encode(output)))
        for folder in dict.fromkeys(posixpath.dirname(path) for path in written):
            self._sync_folder(folder)  # the parts' names are on disk before the marker
        self._put(f"{CHUNKS}/{name}.json", json.dumps(stats.__dict__).encode(), sync=False)

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

    def _put(self, relative: str, data: bytes, *, sync: bool = True) -> str:
        """Write under a temporary name, then rename: readers never see half a file. On a local
        file system the data is flushed to disk before the rename (unless ``sync`` is False);
        the caller flushes the folder when the name must last. Returns the final path."""
        final = self._path(relative)
        temporary = self._path(f"{TMP}/{uuid.uuid4().hex}-{posixpath.basename(relative)}")
        try:
            self.fs.makedirs(posixpath.dirname(temporary), exist_ok=True)
            self.fs.makedirs(posixpath.dirname(final), exist_ok=True)
            if self.local:
                with open(temporary, "wb") as handle:
                    handle.write(data)
                    if sync:
                        handle.flush()
                        os.fsync(handle.fileno())
                os.replace(temporary, final)
            else:
                with self.fs.open(temporary, "wb") as handle:
                    handle.write(data)
                self.fs.mv(temporary, final)
        except OSError as exc:
            raise ArtifactStoreError(f"cannot write {final} in the output folder: {exc}") from exc
        return final

    def _sync_folder(self, folder: str) -> None:
        """Flush a local folder's entries (the names renamed into it) to disk."""
        if not self.local:
            return
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise ArtifactStoreError(f"cannot flush {folder} in the output folder: {exc}") from exc


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
