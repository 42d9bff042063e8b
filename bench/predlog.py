"""The prediction log's cost: the same `seaway serve` with logging off and with every request
logged (`--log-sample 1.0`), side by side in one run.

    .venv/bin/python bench/predlog.py            # about 2 minutes
    .venv/bin/python bench/predlog.py --quick    # smoke run

The LogisticRegression of the serving benchmark (bench/serving.py: same training, same single-row
V2 JSON bodies, same pinning: servers on one core, wrk on the other). Rounds alternate the two
servers, so a slow spell of this shared machine hits both; each cell reports the median of its
rounds' p50 and the throughput over all rounds. The issue's targets: logging every request costs
at most 10% of throughput at concurrency 64 and at most 5% of p50 latency at concurrency 1.
``us/req`` (server CPU per answered request, from /proc) is the steadier figure under noise.
After the load, the logging server is stopped and its Parquet files are counted: every request
answered must be there (or counted as dropped). See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import urllib.request
from pathlib import Path

import serving  # bench/serving.py, beside this file


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per cell in 3 rounds")
    parser.add_argument("--duration", type=int, help="seconds measured per cell [20]")
    parser.add_argument("--rounds", type=int, help="rounds per cell, alternating servers [5]")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per cell [2]")
    parser.add_argument("--concurrency", default="1,64", help="comma-separated [1,64]")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args()
    args.duration = args.duration or (3 if args.quick else 20)
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.profile = None  # serving.measure's options
    return args


def in_process(x: object, requests: int = 20_000, repeat: int = 3) -> None:
    """The log's own cost per single-row request of the benchmark's model, without a server:
    ``record`` (the request path) and the writer's flush (Arrow, Parquet, commit; with and
    without the window summary of the reference profile), in CPU time of the process, native
    threads included (a busy machine stretches wall time). Best of ``repeat``."""
    import time

    import numpy as np

    from seaway.monitoring.predlog import LogConfig, PredictionLog
    from seaway.packaging.profile import build_profile

    profile = build_profile(x)
    rows = [np.asarray(x)[i : i + 1].copy() for i in range(1000)]
    outputs = [{"predict": np.array([i % 2])} for i in range(1000)]
    with tempfile.TemporaryDirectory(prefix="seaway-bench-predlog-") as root:
        for summary in (False, True):
            best_record = best_flush = float("inf")
            for _ in range(repeat):
                log = PredictionLog(
                    LogConfig(root, flush_rows=10**9, buffer_rows=10**9), start=False
                )
                handle = log.model(
                    "lr", "1", sample=1.0, classes=[0, 1],
                    profile=(lambda: profile) if summary else None,
                )  # fmt: skip
                assert handle is not None
                started = time.process_time()
                for i in range(requests):
                    handle.record(rows[i % 1000], outputs[i % 1000], 1, 0.001, "0" * 32)
                recorded = time.process_time()
                for handle_, pending in log.take():  # parts of 10,000 rows, as served
                    for start in range(0, len(pending), 10_000):
                        log.flush([(handle_, pending[start : start + 10_000])])
                flushed = time.process_time()
                best_record = min(best_record, (recorded - started) / requests * 1e6)
                best_flush = min(best_flush, (flushed - recorded) / requests * 1e6)
            label = "with window summary" if summary else "no profile"
            print(
                f"in process ({label}): record {best_record:.2f} us/request (request path), "
                f"writer {best_flush:.2f} us/request (its thread)"
            )


def metric(server: serving.Server, name: str) -> float:
    with urllib.request.urlopen(server.url("/metrics"), timeout=10) as reply:
        text = reply.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")
    )


def main() -> int:
    args = parse_args()
    serving.preflight(args)
    os.sched_setaffinity(0, {args.client_core})
    info = serving.machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['load_avg']}")
    print(f"date: {info['date']} (shared machine: other work may run beside the benchmark)")
    with tempfile.TemporaryDirectory(prefix="seaway-bench-predlog-") as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "SEAWAY_HOME": str(tmp / "home"), "PYTHONUNBUFFERED": "1"}
        os.environ["SEAWAY_HOME"] = env["SEAWAY_HOME"]
        models, x = serving.train_models()
        import seaway

        seaway.log_model(models["lr"], "lr", sample_input=x[:20], reference_data=x)
        in_process(x)
        servers = []
        for name in ("seaway", "seaway-log"):
            port = serving.free_port()
            argv = serving.server_argv(name, port, ["lr"], tmp)
            servers.append(serving.Server(name, port, argv, tmp / f"{name}.log"))
        store = Path(servers[1].argv[servers[1].argv.index("--log-store") + 1])
        rng = random.Random(0)
        bodies = [
            serving.request_body([float(v) for v in x[rng.randrange(len(x))]])
            for _ in range(serving.BODY_POOL)
        ]
        script = serving.wrk_script(tmp / "lr.lua", "/v2/models/lr/infer", bodies)
        runs: list[serving.Run] = []
        logged = 0.0
        with serving.servers_running(servers, args.server_core, env):
            for concurrency in args.concurrency:
                parts: list[list[serving.Run]] = [[] for _ in servers]
                seconds = max(1, args.duration // args.rounds)
                for index in range(args.rounds):
                    for server, done in zip(servers, parts, strict=True):
                        done.append(
                            serving.measure(
                                args, script, server, "lr", concurrency, seconds, index == 0
                            )
                        )
                for server, done in zip(servers, parts, strict=True):
                    result = serving.combine(done)
                    runs.append(result)
                    print(
                        f"  lr c={concurrency:<3} {server.name:<11} {result.rps:>8.0f} req/s  "
                        f"p50 {result.p50_ms:.3f} ms  p99 {result.p99_ms:.2f} ms  "
                        f"rounds p50 {[round(p, 3) for p in result.rounds_p50_ms]}",
                        flush=True,
                    )
            answered = metric(servers[1], "seaway_requests_total")
            dropped = metric(servers[1], "seaway_prediction_log_dropped_total")
            errors = metric(servers[1], "seaway_prediction_log_write_errors_total")
            serving.stop(servers[1])  # a clean stop writes what is buffered
            import pyarrow.dataset as ds

            logged = ds.dataset(str(store), format="parquet", partitioning="hive").count_rows()
            files = len(list(store.rglob("part-*.parquet")))
    print()
    serving.print_table(runs)
    by = {(r.concurrency, r.server): r for r in runs}
    checks = []
    if (64, "seaway") in by and (64, "seaway-log") in by:
        ratio = by[64, "seaway-log"].rps / by[64, "seaway"].rps
        checks.append(("c=64 req/s, logged / off", ratio, ">= 0.90", ratio >= 0.90))
    if (1, "seaway") in by and (1, "seaway-log") in by:
        ratio = by[1, "seaway-log"].p50_ms / by[1, "seaway"].p50_ms
        checks.append(("c=1 p50, logged / off", ratio, "<= 1.05", ratio <= 1.05))
    for concurrency in args.concurrency:
        off, on = by.get((concurrency, "seaway")), by.get((concurrency, "seaway-log"))
        if off and on and off.rps and on.rps:
            ratio = (on.server_cpu / on.rps) / (off.server_cpu / off.rps)
            checks.append((f"c={concurrency} CPU/request, logged / off", ratio, "(reported)", True))
    whole = logged + dropped == answered and not errors
    print(
        f"\nlog: {answered:.0f} requests answered, {logged} rows in {files} Parquet files, "
        f"{dropped:.0f} dropped, {errors:.0f} write errors"
    )
    checks.append(("every answered request logged or counted", float(whole), "1", whole))
    print("\ntargets (logging every request against logging off)")
    for name, value, goal, passed in checks:
        print(f"  {name:<42}{value:>7.3f}  goal {goal:<11}{'PASS' if passed else 'FAIL'}")
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0 if all(passed for *_, passed in checks) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except serving.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
