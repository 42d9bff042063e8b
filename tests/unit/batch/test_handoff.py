"""Chunks handed to local workers as Arrow files: written once, mapped, unlinked, cleaned up."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from seaway.batch import handoff
from seaway.batch.handoff import PREFIX, HandoffFolder


def _table(rows: int = 1000) -> pa.Table:
    return pa.table({"a": pa.array(range(rows), pa.float64()), "b": [f"r{i}" for i in range(rows)]})


def test_a_chunk_crosses_whole_and_its_file_is_gone_once_taken(tmp_path: Path) -> None:
    folder = HandoffFolder(str(tmp_path))
    table = _table()
    shared = folder.put(table)
    assert Path(shared.path).parent == Path(folder.folder) and Path(shared.path).is_file()
    taken = shared.take()
    assert taken.equals(table)
    assert not Path(shared.path).exists()  # unlinked at once; the mapping keeps the data
    assert taken.column("b")[999].as_py() == "r999"
    folder.close()
    assert not Path(folder.folder).exists()


def test_close_removes_chunks_never_taken(tmp_path: Path) -> None:
    folder = HandoffFolder(str(tmp_path))
    paths = [folder.put(_table(10)).path for _ in range(3)]
    folder.close()
    assert not any(Path(p).exists() for p in paths) and not Path(folder.folder).exists()


def test_the_folder_of_a_killed_driver_is_removed_by_the_next(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys\n"
        "from seaway.batch.handoff import HandoffFolder\n"
        "folder = HandoffFolder(sys.argv[1])\n"
        "print(folder.folder, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    left = Path(killed.stdout.strip())
    assert killed.returncode == -9 and left.is_dir()
    running = HandoffFolder(str(tmp_path))  # a live driver's folder: its lock is held
    other = tmp_path / "someone-else"
    unlocked = tmp_path / f"{PREFIX}123-nolock"  # no lock file: being made, or not ours
    other.mkdir()
    unlocked.mkdir()
    HandoffFolder(str(tmp_path)).close()
    assert not left.exists()
    assert Path(running.folder).is_dir() and other.is_dir() and unlocked.is_dir()
    running.close()


def test_a_full_memory_folder_falls_back_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    memory, disk = tmp_path / "shm", tmp_path / "disk"
    memory.mkdir()
    disk.mkdir()
    monkeypatch.setattr(handoff, "_roots", lambda: [str(memory), str(disk)])
    folder = HandoffFolder()
    assert Path(folder.folder).parent == memory
    real_write = HandoffFolder._write

    def write(self: HandoffFolder, table: Any) -> Any:
        if Path(self.folder).parent == memory:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, table)

    queued = folder.put(_table(10))  # written before memory filled up: a worker will take it
    monkeypatch.setattr(HandoffFolder, "_write", write)
    shared = folder.put(_table())
    assert Path(shared.path).parent.parent == disk and shared.take().num_rows == 1000
    assert "is full" in caplog.text
    # the memory folder stays until the job ends: a chunk queued there is still taken whole
    assert queued.take().num_rows == 10
    folder.put(_table(5))  # later chunks keep going to disk
    folder.close()
    assert not list(memory.iterdir()) and not list(disk.iterdir())  # both removed at the end


def test_other_write_errors_are_not_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handoff, "_roots", lambda: [str(tmp_path), str(tmp_path)])
    folder = HandoffFolder()

    def write(self: HandoffFolder, table: Any) -> Any:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(HandoffFolder, "_write", write)
    with pytest.raises(OSError, match="Input/output error"):
        folder.put(_table())
    folder.close()


def test_memory_is_used_only_where_there_is_room(monkeypatch: pytest.MonkeyPatch) -> None:
    usage = type("Usage", (), {"free": 64 << 20})()
    monkeypatch.setattr(handoff.shutil, "disk_usage", lambda path: usage)
    assert handoff._roots() == [handoff.tempfile.gettempdir()]  # Docker's 64 MiB /dev/shm
    usage.free = 8 << 30
    monkeypatch.setattr(handoff.os, "access", lambda path, mode: True)
    assert handoff._roots() == [handoff.SHM, handoff.tempfile.gettempdir()]

    def missing(path: str) -> Any:
        raise FileNotFoundError(path)

    monkeypatch.setattr(handoff.shutil, "disk_usage", missing)
    assert handoff._roots() == [handoff.tempfile.gettempdir()]
