"""How much compaction speeds up reading a prediction log of many small parts: ``seaway monitor
drift`` over 2,000 one-minute parts, before and after ``seaway monitor compact``.

    .venv/bin/python bench/logcompact.py                   # a few minutes, most of it the log
    .venv/bin/python bench/logcompact.py --parts 500 --rounds 3

A part a minute is what the writer commits under a trickle of traffic (it flushes by time,
``log_flush_seconds`` 60); 2,000 is a day and a half. The model is the report benchmark's: 50
features (40 numeric, 10 categorical), a LogisticRegression pipeline, registered with its
reference profile. The log is written by the log's own writer (``ModelLog.write_rows``:
``--rows-per-part`` rows a part, with its window summary), a part a minute up to now; the last
two hours are shifted. Timed, median of ``--rounds``: in this process (imports done once),
``assess`` (the library call under ``seaway monitor drift``: the window summaries read and
merged, the outputs read for prediction drift) and its two reads apart; and the command itself in
a fresh process, as a user runs it. Then ``compact`` once (the library call under ``seaway monitor
compact``; the hour still open is left) and the same timings again. Drift must come out the same.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine

NUMERIC, CATEGORICAL = 40, 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=2000, help="one-minute parts [2,000]")
    parser.add_argument("--rows-per-part", type=int, default=5, help="rows a part [5]")
    parser.add_argument("--reference", type=int, default=20_000, help="reference rows [20,000]")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (median) [5]")
    parser.add_argument("--json", type=Path, help="write every figure here")
    return parser.parse_args()


def features(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    for i in range(NUMERIC):
        columns[f"x{i:02d}"] = rng.normal(shift if i < 5 else 0.0, 1.0, n)
    for i in range(CATEGORICAL):
        columns[f"c{i}"] = rng.choice([f"v{k}" for k in range(8)], n)
    return pd.DataFrame(columns)


def setup(home: Path, args: argparse.Namespace) -> datetime:
    """Register the model and write the log (not timed); returns the time of the last part."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    import seaway
    from seaway.monitoring import logstore
    from seaway.monitoring.predlog import LogConfig, PredictionLog
    from seaway.packaging.profile import ReferenceProfile
    from seaway.packaging.reader import open_package, read_reference_profile

    rng = np.random.default_rng(0)
    reference = features(rng, args.reference)
    target = (reference["x00"] + rng.normal(0, 1, len(reference)) > 0).astype(int).to_numpy()
    cats = [f"c{i}" for i in range(CATEGORICAL)]
    prepare = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), cats)], remainder="passthrough"
    )
    model = make_pipeline(prepare, LogisticRegression(max_iter=200)).fit(reference, target)
    record = seaway.log_model(model, "bench", sample_input=reference.head(),
                              reference_data=reference)  # fmt: skip
    with seaway.Registry.from_settings() as registry:
        profile = ReferenceProfile.model_validate(
            read_reference_profile(open_package(registry.fetch(record)))
        )
    last = datetime.now(UTC).replace(second=0, microsecond=0)
    clock = [0.0]
    log = PredictionLog(
        LogConfig(logstore.default_root(home), retention=None, compact_seconds=None),
        source="batch", start=False, clock=lambda: clock[0],
    )  # fmt: skip
    handle = log.model("bench", "1", sample=1.0, classes=[0, 1], profile=lambda: profile)
    assert handle is not None
    n = args.rows_per_part
    began = time.perf_counter()
    for part in range(args.parts):
        when = last - timedelta(minutes=args.parts - 1 - part)
        rows = features(rng, n, shift=0.5 if when > last - timedelta(hours=2) else 0.0)
        clock[0] = when.timestamp()
        outputs = {"predict": model.predict(rows), "predict_proba": model.predict_proba(rows)}
        ids = [f"{part}-{i}" for i in range(n)]
        handle.write_rows(rows, outputs, request_ids=ids, rows=list(range(n)), when=when)
    print(f"log: {n * args.parts:,} rows in {args.parts:,} one-minute parts written in "
          f"{time.perf_counter() - began:.0f} s")  # fmt: skip
    return last


def files(home: Path) -> int:
    return sum(1 for _ in (home / "monitoring" / "predictions").rglob("*") if _.is_file())


def timed(home: Path) -> tuple[dict[str, float], Any]:
    """One round of the reads under ``seaway monitor drift --window 7d``, in this process."""
    from seaway.config import Settings
    from seaway.monitoring import logstore
    from seaway.monitoring.window import (
        assess,
        load_reference,
        pick_version,
        read_outputs,
        window_bounds,
        window_summaries,
    )
    from seaway.registry import Registry

    root = logstore.default_root(home)
    since, until = window_bounds(timedelta(days=7))
    with Registry.from_settings(Settings.resolve(home=home)) as registry:
        reference = load_reference(
            registry, pick_version(registry, "bench", None, since=since, root=root)
        )
    times: dict[str, float] = {}
    began = time.perf_counter()
    summaries = window_summaries(reference, since=since, until=until, root=root)
    times["window summaries listed and read"] = time.perf_counter() - began
    began = time.perf_counter()
    outputs = read_outputs(reference, since=since, until=until, root=root)
    times["outputs read (prediction drift)"] = time.perf_counter() - began
    began = time.perf_counter()
    assessed = assess(reference, since=since, until=until, root=root)
    times["assess (all of drift)"] = time.perf_counter() - began
    times["parts read"] = float(assessed.parts)
    assert len(summaries) == assessed.parts
    assert len(outputs) == assessed.result.n_window
    return times, assessed


def cli(home: Path, *args: str) -> float:
    env = {**os.environ, "SEAWAY_HOME": str(home)}
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "seaway", *args], check=True, env=env,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - began


def measure(home: Path, rounds: int) -> tuple[dict[str, float], Any]:
    runs = [timed(home) for _ in range(rounds)]
    figures = {k: float(np.median([r[k] for r, _ in runs])) for k in runs[0][0]}
    command = [cli(home, "monitor", "drift", "bench", "--window", "7d") for _ in range(rounds)]
    figures["seaway monitor drift --window 7d (fresh process)"] = float(np.median(command))
    figures["files in the log"] = float(files(home))
    return figures, runs[-1][1]


def same_drift(before: Any, after: Any) -> bool:
    """The same verdicts and window counts, statistics equal up to rounding (moments merge in
    another order once hours are merged)."""
    pairs = [(before.result, after.result)]
    if before.predictions is not None and after.predictions is not None:
        pairs.append((before.predictions, after.predictions))
    for one, other in pairs:
        if [(f.feature, f.drifted, f.window_count) for f in one.features] != [
            (f.feature, f.drifted, f.window_count) for f in other.features
        ]:
            return False
        a = np.array([f.statistic or 0.0 for f in one.features])
        b = np.array([f.statistic or 0.0 for f in other.features])
        if not np.allclose(a, b, rtol=1e-9, atol=1e-12) or one.drifted != other.drifted:
            return False
    return True


def main() -> int:
    args = parse_args()
    info = machine.describe("numpy", "pandas", "pyarrow")
    with tempfile.TemporaryDirectory(prefix="seaway-bench-logcompact-") as tmp:
        home = Path(tmp) / "home"
        os.environ["SEAWAY_HOME"] = str(home)
        setup(home, args)
        before, assessed_before = measure(home, args.rounds)
        from seaway.monitoring import logstore
        from seaway.monitoring.compact import compact

        began = time.perf_counter()
        report = compact(logstore.default_root(home))
        took = time.perf_counter() - began
        after, assessed_after = measure(home, args.rounds)
    same = same_drift(assessed_before, assessed_after)
    print(f"{args.parts:,} one-minute parts of {args.rows_per_part} rows, "
          f"{NUMERIC + CATEGORICAL} features, median of {args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.1f} at the end")  # fmt: skip
    print(f"  {'':<52} {'before':>9} {'after':>9}")
    for name in before:
        print(f"  {name:<52} {before[name]:9.2f} {after[name]:9.2f}")
    print(f"  compaction: {report.parts:,} parts of {report.hours} hours merged in {took:.1f} s "
          f"({report.removed:,} files deleted); drift the same: {'yes' if same else 'NO'}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({
            "machine": info, "args": {k: str(v) for k, v in vars(args).items()},
            "before": before, "after": after, "compaction_s": took,
            "compaction": report.to_dict(), "same_drift": same,
        }, indent=2))  # fmt: skip
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
