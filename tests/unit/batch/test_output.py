"""The output folder's commits: on a local file system a marker never outlives its part's data."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from seaway.batch import output
from seaway.batch.output import ChunkStats, OutputFolder


def _events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Every fsync (the path its descriptor names) and rename (from, to), in order."""
    events: list[tuple[str, str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"), ""))
        real_fsync(fd)

    def replace(source: str, target: str) -> None:
        events.append(("rename", str(source), str(target)))
        real_replace(source, target)

    monkeypatch.setattr(output.os, "fsync", fsync)
    monkeypatch.setattr(output.os, "replace", replace)
    return events


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names descriptors through /proc")
def test_parts_and_their_folders_reach_the_disk_before_the_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = OutputFolder(str(tmp_path / "out"))
    events = _events(monkeypatch)
    predictions = pa.table({"predict": [1.0, 2.0]})
    rejects = pa.table({"_row": [2], "_reason": ["bad"]})
    folder.commit(0, 3, predictions, rejects, ChunkStats(3, 2, 1))

    root, part = tmp_path / "out", "part-00000-000003"
    renames = {
        target: (i, source) for i, (kind, source, target) in enumerate(events) if kind == "rename"
    }
    flushed = {
        path: i for i, (kind, path, _) in reversed(list(enumerate(events))) if kind == "fsync"
    }
    marker, _ = renames[str(root / "_chunks" / f"{part}.json")]
    assert marker == len(events) - 1  # the marker comes last (and is not flushed itself)
    for where in (root, root / "_rejects"):
        renamed, source = renames[str(where / f"{part}.parquet")]
        assert flushed[source] < renamed, events  # the part's data, before its name
        assert renamed < flushed[str(where)] < marker, events  # its name, before the marker


def test_a_marker_left_empty_by_a_crash_means_the_chunk_is_redone(tmp_path: Path) -> None:
    folder = OutputFolder(str(tmp_path / "out"))
    folder.commit(0, 0, pa.table({"predict": [1.0]}), None, ChunkStats(1, 1, 0))
    folder.commit(0, 1, pa.table({"predict": [2.0]}), None, ChunkStats(1, 1, 0))
    (tmp_path / "out" / "_chunks" / "part-00000-000001.json").write_bytes(b"")
    assert folder.committed() == {(0, 0): ChunkStats(1, 1, 0)}
