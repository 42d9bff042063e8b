"""A model, inputs with bad rows, and output-folder readers shared by the Ray engine's tests."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.errors import SeawayError

FEATURES = ["age", "income", "tenure"]
#: rows of the Parquet input files, and the rows whose tenure is missing (rejected)
PARQUET_ROWS = {"a.parquet": 230, "b.parquet": 120}
PARQUET_NULL_TENURE = {"a.parquet": [3, 97, 229], "b.parquet": [0, 61]}
#: rows of the CSV input whose values cannot be read as the signature says
CSV_ROWS = 150
CSV_BAD = {7: ("income", "abc"), 88: ("tenure", "2.5"), 141: ("age", "x1")}
CHUNK_ROWS = 40


def register_model(registry: seaway.Registry, name: str = "churn") -> LogisticRegression:
    """models:/NAME/1: a classifier on two float columns and one integer column."""
    train = rows(300, seed=1)
    fitted = LogisticRegression().fit(train[FEATURES], (train["age"] > 0).astype(np.int64))
    seaway.log_model(fitted, name, sample_input=train[FEATURES].head(5), registry=registry)
    return fitted


def rows(n: int, start: int = 0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "id": np.arange(start, start + n, dtype=np.int64),
            "age": rng.normal(size=n),
            "income": rng.normal(size=n),
            "tenure": rng.integers(0, 20, size=n, dtype=np.int64),
            "note": [f"n{i}" for i in range(start, start + n)],
        }
    )
    return data


def write_parquet_inputs(folder: Path) -> pd.DataFrame:
    """Two Parquet files (small row groups) with missing tenures; every row, as written."""
    folder.mkdir(parents=True)
    frames, start = [], 0
    for seed, (name, count) in enumerate(PARQUET_ROWS.items()):
        data = rows(count, start, seed=seed + 10)
        tenure = pd.array(data["tenure"], dtype="Int64")
        tenure[PARQUET_NULL_TENURE[name]] = pd.NA
        data["tenure"] = tenure
        pq.write_table(pa.Table.from_pandas(data, preserve_index=False), folder / name, 64)
        frames.append(data)
        start += count
    return pd.concat(frames, ignore_index=True)


def write_csv_input(path: Path, bad: dict[int, tuple[str, str]] = CSV_BAD) -> None:
    data = rows(CSV_ROWS, seed=20).astype({name: object for name in FEATURES})
    for row, (column, value) in bad.items():
        data.loc[row, column] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    data.to_csv(path, index=False)


def contents(folder: Path) -> dict[str, Any]:
    """Every part, reject and chunk marker of an output folder, by relative path, as Python."""
    found: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if (
            path.is_dir()
            or relative.startswith("_tmp")
            or not relative.split("/")[-1].startswith("part-")
        ):
            continue
        if path.suffix == ".parquet":
            found[relative] = pq.read_table(path).to_pylist()
        elif path.suffix == ".json":
            found[relative] = json.loads(path.read_text())
        else:
            found[relative] = path.read_text()
    return found


def scored(folder: Path) -> pd.DataFrame:
    parts = sorted(folder.glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def rejected(folder: Path) -> pd.DataFrame:
    parts = sorted((folder / "_rejects").glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


class StopAfter:
    """A progress display that stops the job when it hears of the ``n``-th committed chunk."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0
        self.rows = 0

    def update(self, rows: int, fraction: float | None) -> None:
        # the job also calls it every second while no chunk commits (a heartbeat): only calls
        # that report more rows count
        if rows > self.rows:
            self.rows = rows
            self.calls += 1
        if self.calls >= self.n:
            raise RuntimeError("stopped by the test")

    def close(self) -> None:
        pass


class TwoArgumentError(SeawayError):
    """An error whose ``__init__`` does not take its message: plain pickling cannot rebuild it."""

    def __init__(self, path: str, need: str) -> None:
        super().__init__(f"{path} needs {need}")


def ray_processes_gone(parent_pid: int, timeout: float = 10.0) -> list[str]:
    """Ray processes (raylet, gcs_server, workers) still running below ``parent_pid``."""
    deadline = time.monotonic() + timeout
    while True:
        left = [name for pid, name in _descendants(parent_pid) if "ray" in name.lower()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def _descendants(parent_pid: int) -> list[tuple[int, str]]:
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        pid = int(entry.name)
        children.setdefault(ppid, []).append(pid)
        names[pid] = cmdline or stat.split("(", 1)[1].rsplit(")", 1)[0]
    found: list[tuple[int, str]] = []
    stack = list(children.get(parent_pid, []))
    while stack:
        pid = stack.pop()
        found.append((pid, names.get(pid, "")))
        stack.extend(children.get(pid, []))
    return found
