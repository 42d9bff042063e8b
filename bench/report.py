"""How long `seaway monitor report` (and `seaway monitor drift`) take on a large window: a model
of 50 features (40 numeric, 10 categorical) and a prediction log of 1M rows over 7 days.

    .venv/bin/python bench/report.py             # about 3 minutes, most of it writing the log
    .venv/bin/python bench/report.py --quick     # 100k rows

The log is written by the log's own writer (``PredictionLog``, ``ModelLog.write_rows``: Parquet
parts with their window summaries), ``--parts`` parts spread evenly over the window (the writer
flushes by rows, 10,000 by default, or by time: many small parts are the costly case for the
report, which merges one summary per part). The last two days are shifted. Then, in this process
(imports done once, as a server's would be), each step of the report is timed, and the whole
command is run as a user runs it, in a fresh process. The issue's target: the report in under
10 s for 50 features. See bench/README.md.
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

NUMERIC, CATEGORICAL = 40, 10


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k rows in 100 parts")
    parser.add_argument("--rows", type=int, help="logged rows [1,000,000]")
    parser.add_argument("--parts", type=int, default=None, help="parts over the window [1008]")
    parser.add_argument("--reference", type=int, default=50_000, help="reference rows [50,000]")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (median) [5]")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument(
        "--home", type=Path, help="keep the home (and the log) here; reused if it has one"
    )
    args = parser.parse_args()
    args.rows = args.rows or (100_000 if args.quick else 1_000_000)
    args.parts = args.parts or (100 if args.quick else 1008)
    return args


def features(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    for i in range(NUMERIC):
        columns[f"x{i:02d}"] = rng.normal(shift if i < 5 else 0.0, 1.0, n)
    for i in range(CATEGORICAL):
        columns[f"c{i}"] = rng.choice([f"v{k}" for k in range(8)], n)
    return pd.DataFrame(columns)


def setup(home: Path, args: argparse.Namespace) -> None:
    """Register the model and write the log (not timed)."""
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
    record = seaway.log_model(
        model, "bench", sample_input=reference.head(), reference_data=reference,
        reference_labels=target,
    )  # fmt: skip
    with seaway.Registry.from_settings() as registry:
        profile = ReferenceProfile.model_validate(
            read_reference_profile(open_package(registry.fetch(record)))
        )
    now = datetime.now(UTC)
    start = now - timedelta(days=7)
    clock = [start.timestamp()]
    log = PredictionLog(
        LogConfig(logstore.default_root(home), retention=None),
        source="batch", start=False, clock=lambda: clock[0],
    )  # fmt: skip
    handle = log.model("bench", "1", sample=1.0, classes=[0, 1], profile=lambda: profile)
    assert handle is not None
    per_part = args.rows // args.parts
    step = timedelta(days=7) / args.parts
    began = time.perf_counter()
    for part in range(args.parts):
        when = start + step * part + step / 2
        rows = features(rng, per_part, shift=0.2 if when > now - timedelta(days=2) else 0.0)
        clock[0] = when.timestamp()
        outputs = {"predict": model.predict(rows), "predict_proba": model.predict_proba(rows)}
        ids = [f"{part}-{i}" for i in range(per_part)]
        handle.write_rows(rows, outputs, request_ids=ids, rows=list(range(per_part)), when=when)
    print(
        f"log: {per_part * args.parts:,} rows in {args.parts} parts written in "
        f"{time.perf_counter() - began:.0f} s"
    )


def timed_steps(home: Path) -> dict[str, float]:
    """Each step of ``seaway monitor report`` in this process."""
    from seaway.config import Settings
    from seaway.monitoring import logstore
    from seaway.monitoring.performance import ModelFacts, performance
    from seaway.monitoring.report import render_report
    from seaway.monitoring.report_view import pick_bucket, report_view
    from seaway.monitoring.window import assess, load_reference, pick_version, window_bounds
    from seaway.registry import Registry

    root = logstore.default_root(home)
    times: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        times[name] = now - mark
        mark = now

    since, until = window_bounds(timedelta(days=7))
    with Registry.from_settings(Settings.resolve(home=home)) as registry:
        reference = load_reference(
            registry, pick_version(registry, "bench", None, since=since, root=root)
        )
    lap("reference profile from the registry")
    bucket = pick_bucket(until - since)
    assessed = assess(reference, since=since, until=until, root=root, bucket=bucket, keep_rows=True)
    lap("drift (summaries merged by bucket; outputs read once for predictions and performance)")
    assert reference.package is not None
    facts = ModelFacts.from_package(reference.package)
    figures = performance(
        "bench", since=since, until=until, every=bucket, version="1", facts=lambda _: facts,
        log_root=root, rows=assessed.rows,
    )  # fmt: skip
    lap("performance per time bucket")
    view = report_view(assessed, window="7d", bucket=bucket, performance=figures)
    lap("drift per time bucket, charts and view")
    html = render_report(view)
    lap("HTML")
    times["report size (KiB)"] = len(html.encode()) / 1024
    return times


def cli(home: Path, *args: str) -> float:
    env = {**os.environ, "SEAWAY_HOME": str(home)}
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "seaway", *args], check=True, env=env,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - began


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="seaway-bench-report-") as tmp:
        home = args.home or Path(tmp) / "home"
        os.environ["SEAWAY_HOME"] = str(home)
        if not (home / "monitoring").exists():
            setup(home, args)
        rounds = [timed_steps(home) for _ in range(args.rounds)]
        steps = {k: float(np.median([r[k] for r in rounds])) for k in rounds[0]}
        out = Path(tmp) / "report.html"
        whole = [cli(home, "monitor", "report", "bench", "--window", "7d", "--out", str(out))
                 for _ in range(args.rounds)]  # fmt: skip
        table = [cli(home, "monitor", "drift", "bench", "--window", "7d")
                 for _ in range(args.rounds)]  # fmt: skip
        empty = [cli(home, "--version") for _ in range(args.rounds)]
    print(f"{args.rows:,} rows, {args.parts} parts, {NUMERIC + CATEGORICAL} features, "
          f"median of {args.rounds} rounds, load average {os.getloadavg()[0]:.1f} at the end")  # fmt: skip
    for name, value in steps.items():
        print(f"  {name:<60} {value:8.2f}")
    figures = {
        "seaway monitor report (fresh process)": float(np.median(whole)),
        "seaway monitor drift (fresh process)": float(np.median(table)),
        "seaway --version (interpreter and CLI start)": float(np.median(empty)),
    }
    for name, value in figures.items():
        print(f"  {name:<60} {value:8.2f}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "steps": steps, "commands": figures}, indent=2))  # fmt: skip
    target = figures["seaway monitor report (fresh process)"] < 10
    print(f"target: report under 10 s for 50 features: {'pass' if target else 'FAIL'}")
    return 0 if target else 1


if __name__ == "__main__":
    sys.exit(main())
