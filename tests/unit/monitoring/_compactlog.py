"""A prediction log of many small parts, for the compaction tests: one part a minute, written by
the log's own writer with an injected clock, each with its window summary."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from seaway.monitoring import logstore
from seaway.monitoring.predlog import LogConfig, PredictionLog
from seaway.packaging.profile import ReferenceProfile, build_profile

#: an hour boundary: parts written from here on, one a minute
START = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 50.0, 2000),
            "hour": rng.integers(0, 24, 2000).astype(float),
            "country": rng.choice(["fr", "de", "es"], 2000),
        }
    )
    return build_profile(frame)


class Clock:
    def __init__(self, start: datetime = START) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def at(self, moment: datetime) -> None:
        self.now = moment.timestamp()


def root(kind: str, tmp: Any) -> str:
    """A fresh store: a local folder, or memory:// (one fsspec store in the process)."""
    return str(tmp / "log") if kind == "local" else f"memory://compact-{uuid.uuid4().hex}"


def write_minutes(
    store: str,
    minutes: int,
    *,
    start: datetime = START,
    seed: int = 0,
    model: str = "fraud",
    version: str = "1",
    with_profile: bool = True,
    frame: Any = None,
) -> PredictionLog:
    """``minutes`` parts, one a minute from ``start``, of 1 to 4 requests of 1 to 3 rows each
    (``frame(rng, n)`` makes a request's inputs). The log is returned open, its clock at the
    last part."""
    rng = np.random.default_rng(seed)
    clock = Clock(start)
    log = PredictionLog(
        LogConfig(store, retention=None, compact_seconds=None),
        clock=clock,
        rng=random.Random(seed),
        start=False,
    )
    made = profile()
    handle = log.model(
        model, version, sample=1.0, classes=[0, 1], profile=(lambda: made) if with_profile else None
    )
    assert handle is not None
    make = frame or _frame
    for minute in range(minutes):
        clock.at(start + timedelta(minutes=minute, seconds=30))
        for request in range(int(rng.integers(1, 5))):
            rows = int(rng.integers(1, 4))
            inputs = make(rng, rows)
            outputs = {"predict": rng.integers(0, 2, rows), "predict_proba": rng.random((rows, 2))}
            handle.record(inputs, outputs, rows, 0.001, f"m{minute}-r{request}")
        log.poll(force=True)
    return log


def _frame(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 50.0, rows),
            "hour": rng.integers(0, 24, rows).astype(float),
            "country": rng.choice(["fr", "de", "es", "it"], rows),
        }
    )


def parts(store: str, model: str = "fraud") -> list[str]:
    """Every part file present (replaced or not), by name."""
    fs, base = logstore.open_store(store)
    return sorted(p.rsplit("/", 1)[-1] for p in fs.find(base) if "/part-" in p)


def folder(store: str, day: str = "2025-03-10", model: str = "fraud", version: str = "1") -> str:
    _, base = logstore.open_store(store)
    return f"{logstore.version_path(base, model, version)}/date={day}"
