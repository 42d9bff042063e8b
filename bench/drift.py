"""How long drift takes on a large window: 1M rows of 50 features (25 numeric, 25 categorical)
against a reference profile of 100k rows.

    .venv/bin/python bench/drift.py              # about a minute, most of it making the data
    .venv/bin/python bench/drift.py --rows 100000 --json out.json

Timed in one process (imports first, as a server or the CLI has them): the reference profile
(``build_profile``, what ``log_model(reference_data=...)`` does once), summarizing the 1M rows
(``summarize``: one call over an in-memory frame, and the same rows as parts merged, as the
prediction log's per-part summaries are), and ``drift()`` from the merged summary (cold: its first
call imports scipy.special; warm; and with the simulated Wasserstein test, first and again, when
its simulated nulls are remembered). The issue's target:
summarizing and drift together in under 5 s. The window is shifted in a few features so that
drift has something to find. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine

NUMERIC, CATEGORICAL = 25, 25


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="window rows [1,000,000]")
    parser.add_argument("--reference", type=int, default=100_000, help="reference rows [100,000]")
    parser.add_argument("--parts", type=int, default=100, help="parts merged [100]")
    parser.add_argument("--repeat", type=int, default=3, help="runs per step; the best counts [3]")
    parser.add_argument("--json", type=Path, help="write every figure here")
    return parser.parse_args()


def frame(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    """Numeric: pairs of correlated normals, exponentials, integers and a timestamp; categorical:
    strings with 3 to 51 categories (Zipf-like), as read back from Parquet (pandas' str dtype)."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    base = rng.normal(size=rows)
    for j in range(NUMERIC):
        kind = j % 5
        if kind in (0, 1):
            values = 0.6 * base + 0.8 * rng.normal(size=rows)
        elif kind == 2:
            values = rng.exponential(2.0, size=rows)
        elif kind == 3:
            values = rng.integers(0, 20, size=rows).astype(np.float64)
        else:
            values = rng.normal(50, 10, size=rows).round(1)
        if shifted and j < 3:
            values = values + 0.05 * values.std()
        values[rng.random(rows) < 0.01] = np.nan
        columns[f"n{j:02d}"] = values
    for j in range(CATEGORICAL):
        k = 3 + 2 * j
        p = 1.0 / np.arange(1, k + 1)
        p /= p.sum()
        codes = rng.choice(k, size=rows, p=p)
        if shifted and j == 0:
            codes[rng.random(rows) < 0.02] = k - 1
        labels = np.array([f"c{j}_{i}" for i in range(k)], dtype=object)
        columns[f"c{j:02d}"] = pd.array(labels[codes], dtype="str")
    return pd.DataFrame(columns)


def best(repeat: int, step: Any) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> int:
    args = parse_args()
    info = machine.describe("numpy", "pandas", "scipy")
    from seaway.monitoring.drift import drift
    from seaway.monitoring.summary import merge_all, summarize
    from seaway.packaging.profile import build_profile

    print(f"making {args.reference:,} reference rows and {args.rows:,} window rows ...", flush=True)
    reference = frame(args.reference, seed=1, shifted=False)
    window = frame(args.rows, seed=2, shifted=True)
    figures: dict[str, Any] = {"machine": info, "rows": args.rows, "reference": args.reference}

    figures["profile_s"], profile = best(1, lambda: build_profile(reference))
    figures["summarize_s"], summary = best(args.repeat, lambda: summarize(window, profile))
    size = -(-args.rows // args.parts)
    parts = [window.iloc[i : i + size] for i in range(0, args.rows, size)]
    figures["summarize_parts_s"], summaries = best(
        1, lambda: [summarize(part, profile) for part in parts]
    )
    figures["merge_s"], merged = best(args.repeat, lambda: merge_all(summaries))
    figures["drift_cold_s"], result = best(1, lambda: drift(profile, merged))
    figures["drift_s"], result = best(args.repeat, lambda: drift(profile, merged))
    figures["drift_wasserstein_s"], _ = best(
        1, lambda: drift(profile, merged, numeric_test="wasserstein")
    )
    figures["drift_wasserstein_warm_s"], _ = best(
        args.repeat, lambda: drift(profile, merged, numeric_test="wasserstein")
    )
    figures["total_s"] = figures["summarize_s"] + figures["drift_cold_s"]
    figures["profile_json_bytes"] = len(json.dumps(profile.model_dump(mode="json")))
    figures["summary_json_bytes"] = len(summary.to_json())
    figures["drifted_features"] = list(result.drifted_features)
    figures["multivariate_drifted"] = bool(result.multivariate and result.multivariate.drifted)

    print(f"machine: {info['cpu']}, {info['usable_cores']} cores, load {info['load_avg']}")
    print(f"reference profile ({args.reference:,} rows):       {figures['profile_s']:.2f} s")
    print(f"summarize {args.rows:,} rows (one frame):      {figures['summarize_s']:.2f} s")
    print(
        f"summarize the same in {len(parts)} parts:          {figures['summarize_parts_s']:.2f} s"
    )
    print(f"merge {len(parts)} summaries:                      {figures['merge_s']:.3f} s")
    print(f"drift() from the summary, first call:     {figures['drift_cold_s']:.3f} s")
    print(f"drift() from the summary, warm:           {figures['drift_s']:.3f} s")
    print(f"drift() with the Wasserstein test:        {figures['drift_wasserstein_s']:.3f} s")
    print(f"  again (its nulls remembered):           {figures['drift_wasserstein_warm_s']:.3f} s")
    print(
        f"profile JSON {figures['profile_json_bytes']:,} bytes, "
        f"summary JSON {figures['summary_json_bytes']:,} bytes"
    )
    print(f"drifted: {', '.join(result.drifted_features) or 'none'}; multivariate: "
          f"{'drift' if figures['multivariate_drifted'] else 'no drift'}")  # fmt: skip
    passed = figures["total_s"] < 5.0
    print(f"summarize + drift: {figures['total_s']:.2f} s (target < 5 s): "
          f"{'PASS' if passed else 'FAIL'}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
