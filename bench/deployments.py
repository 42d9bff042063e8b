"""Deployments' cost: a 90/10 canary against the same model served directly, and a shadow
against no shadow, side by side in one run.

    .venv/bin/python bench/deployments.py            # about 4 minutes
    .venv/bin/python bench/deployments.py --quick    # smoke run, about 2 minutes

The LogisticRegression of the serving benchmark (bench/serving.py: same training, same single-row
V2 JSON bodies, same pinning: servers on one core, wrk on the other), registered twice: version 1
as there, version 2 trained with a stronger penalty (``C=0.1``; the same cost per call). Four
servers run at once, each ``seaway serve`` as shipped (gRPC on, default batching, one replica per
version), each pinned to the server core:

- ``direct``: ``seaway serve models:/lr/1``;
- ``canary``: ``seaway serve --deployment lr-canary`` (routes 1:90, 2:10);
- ``plain``: ``seaway serve --deployment lr-plain`` (routes 1:100, no shadow);
- ``shadow``: ``seaway serve --deployment lr-shadow`` (routes 1:100, ``shadow: {version: 2}``),
  its shadow's replica moved to the load generator's core (``--shadow-core``; ``same`` leaves it
  on the server core): the one core left free on a two-core machine, shared with wrk (which uses
  a few percent of it at concurrency 1). Which replica is the shadow's is found by stopping each
  replica in turn (SIGSTOP, then SIGCONT) while one request is sent: the primary's answer waits
  for its replica, the shadow's does not.

Cells: direct, canary and plain at concurrency 64 (the issue's goal: the canary serves at least
97% of the direct throughput; plain splits the gap into the deployment path's share and the
second version's); plain, shadow and direct at concurrency 1 (the goal: the shadow's p50 at most
1.10x the plain deployment's). Within a cell, rounds alternate the servers (A B A B ...) so
a slow spell of this shared machine hits them alike; each round gives a ratio, and the summary
prints the ratio over all rounds (throughput over the summed time, the median of the rounds'
p50) with the median and range of the per-round ratios. ``us/req`` (server CPU per answered
request, from /proc, the whole process tree) is the steadier figure under noise; it is also
printed split into the server process's and its replicas' share. At the end each
deployment's own counts (flushed to the registry) are read with ``seaway deploy results``: the
canary's share of version 2 and the shadow's copies, drops, errors and agreement.

Exit status: 0 when both goals pass, 1 when one fails, 2 when the benchmark could not run.
``--profile DIR`` records the c=64 servers with py-spy (bench/layers.py) in the first round.
Another checkout's code: ``PYTHONPATH=DIR`` (a folder holding its ``seaway`` package) is what
the CLI and the servers import.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import layers  # bench/layers.py, beside this file
import serving  # bench/serving.py, beside this file

DEPLOYMENTS = {
    "lr-canary": {"routes": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]},
    "lr-plain": {"routes": [{"version": 1, "weight": 100}]},
    "lr-shadow": {"routes": [{"version": 1, "weight": 100}], "shadow": {"version": 2}},
}
#: server name -> the deployment it serves (None: the model directly)
SERVERS = {
    "direct": None,
    "canary": "lr-canary",
    "plain": "lr-plain",
    "shadow": "lr-shadow",
}
CANARY_GOAL = 0.97  # canary req/s over direct, at c=64
SHADOW_GOAL = 1.10  # shadow p50 over plain, at c=1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s rounds, 4 rounds per cell")
    parser.add_argument("--seconds", type=int, help="seconds per round [3]")
    parser.add_argument("--rounds", type=int, help="rounds per cell, alternating servers [10]")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per server [2]")
    parser.add_argument(
        "--cells", default="64,1", help="which cells: 64 (canary), 1 (shadow) [64,1]"
    )
    parser.add_argument(
        "--shadow-core",
        default="client",
        choices=("client", "same"),
        help="where the shadow's replica runs: the load generator's core, or the server's [client]",
    )
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR", help="py-spy the c=64 servers; stacks go to DIR"
    )
    args = parser.parse_args()
    args.seconds = args.seconds or (2 if args.quick else 3)
    args.rounds = args.rounds or (4 if args.quick else 10)
    args.cells = [int(c) for c in args.cells.split(",")]
    if set(args.cells) - {1, 64} or args.seconds < 1 or args.rounds < 1:
        parser.error("--cells takes 64 and/or 1; --seconds and --rounds must be positive")
    args.concurrency = [64]  # serving.measure profiles at the highest of these
    args.json = args.json.resolve() if args.json else None  # the run works in a temporary folder
    args.profile = args.profile.resolve() if args.profile else None
    return args


# ---- set-up -------------------------------------------------------------------------------------


def register(x: Any, models: dict[str, Any], tmp: Path) -> None:
    """Versions 1 and 2 of model ``lr``, and the three deployments (with the CLI, as a user)."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    import seaway

    _, y = make_classification(
        n_samples=5000, n_features=serving.FEATURES, n_informative=10, random_state=0
    )
    seaway.log_model(models["lr"], "lr", sample_input=x[:20], reference_data=x)
    second = LogisticRegression(max_iter=1000, C=0.1).fit(x, y)
    seaway.log_model(second, "lr", sample_input=x[:20], reference_data=x)
    for name, body in DEPLOYMENTS.items():
        path = tmp / f"{name}.json"  # JSON is YAML
        path.write_text(json.dumps({"name": name, "model": "lr", **body}))
        cli("deploy", "apply", str(path))


def cli(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "seaway", *argv], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise serving.BenchError(f"seaway {' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def server_argv(name: str, port: int, tmp: Path) -> list[str]:
    deployment = SERVERS[name]
    argv = serving.server_argv("seaway", port, ["lr"], tmp)
    if deployment is not None:
        argv[argv.index("models:/lr/1")] = "--deployment"
        argv.insert(argv.index("--deployment") + 1, deployment)
    return argv


def route(name: str, version: str | None = None) -> str:
    model = SERVERS[name] or "lr"
    return (
        f"/v2/models/{model}/versions/{version}/infer" if version else f"/v2/models/{model}/infer"
    )


def comm(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return ""


def answers(server: serving.Server, body: bytes, timeout: float) -> bool:
    request = urllib.request.Request(
        server.url(route(server.name.removeprefix("seaway-"))),
        body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            reply.read()
            return reply.status == 200
    except (urllib.error.URLError, TimeoutError, OSError):
        return False


def find_shadow_replica(server: serving.Server, body: bytes) -> int:
    """The pid of the shadow's replica: the one whose stop does not hold up an answer."""
    replicas = [pid for pid in server.pids if comm(pid).startswith("replica")]
    if len(replicas) != 2:
        raise serving.BenchError(
            f"{server.name}: expected 2 replica processes (primary, shadow), found {replicas}"
        )
    free = []
    for pid in replicas:
        os.kill(pid, signal.SIGSTOP)
        try:
            answered = answers(server, body, timeout=3.0)
        finally:
            os.kill(pid, signal.SIGCONT)
        if answered:
            free.append(pid)
        time.sleep(0.5)  # the held request and its copy finish
    if len(free) != 1:
        raise serving.BenchError(
            f"{server.name}: could not tell the shadow's replica from the primary's ({free} "
            "answered while stopped); rerun on a quieter machine"
        )
    return free[0]


# ---- measurement --------------------------------------------------------------------------------


@dataclass
class Cell:
    concurrency: int
    servers: list[str]
    runs: list[serving.Run]  # combined, one per server
    rounds: list[list[serving.Run]]  # per server, per round
    #: per server, per round: CPU µs per request of the server process, and of its replicas
    split: list[list[tuple[float, float]]]


def measure_cell(
    args: argparse.Namespace,
    servers: dict[str, serving.Server],
    scripts: dict[str, Path],
    names: list[str],
    concurrency: int,
) -> Cell:
    quiet = argparse.Namespace(**{**vars(args), "warmup": 0})  # warmed up here, not per round
    parts: list[list[serving.Run]] = [[] for _ in names]
    split: list[list[tuple[float, float]]] = [[] for _ in names]
    for index in range(args.rounds):
        for name, done, shares in zip(names, parts, split, strict=True):
            server = servers[name]
            cores = (args.server_core, args.client_core)
            if index == 0 and args.warmup:
                serving.wrk(scripts[name], server, concurrency, args.warmup, cores, "lr")
            before = [serving.cpu_seconds([pid]) for pid in server.pids]
            run = serving.measure(
                quiet, scripts[name], server, "lr", concurrency, args.seconds, index == 0
            )
            spent = [serving.cpu_seconds([p]) - b for p, b in zip(server.pids, before, strict=True)]
            main = spent[0] / run.requests * 1e6 if run.requests else math.nan
            rest = sum(spent[1:]) / run.requests * 1e6 if run.requests else math.nan
            done.append(run)
            shares.append((main, rest))
        line = "  ".join(
            f"{name} {done[-1].rps:.0f}/s p50 {done[-1].p50_ms:.3f}"
            for name, done in zip(names, parts, strict=True)
        )
        print(f"  c={concurrency} round {index + 1}: {line}", flush=True)
    runs = []
    for name, done in zip(names, parts, strict=True):
        combined = serving.combine(done)
        combined.server = name
        runs.append(combined)
    return Cell(concurrency, names, runs, parts, split)


@dataclass
class Ratio:
    name: str
    overall: float
    median: float
    low: float
    high: float
    goal: str
    passed: bool | None  # None: reported only


def ratio(cell: Cell, top: str, bottom: str, what: str, goal: float | None, above: bool) -> Ratio:
    """``top`` over ``bottom`` in ``cell``: ``what`` is rps, p50 or cpu (µs per request)."""

    def value(run: serving.Run) -> float:
        if what == "rps":
            return run.rps
        if what == "p50":
            return run.p50_ms
        return run.server_cpu / run.rps * 1e6 if run.rps else math.nan

    i, j = cell.servers.index(top), cell.servers.index(bottom)
    per_round = [value(a) / value(b) for a, b in zip(cell.rounds[i], cell.rounds[j], strict=True)]
    overall = value(cell.runs[i]) / value(cell.runs[j])
    label = {"rps": "req/s", "p50": "p50", "cpu": "CPU/request"}[what]
    if goal is None:
        verdict, passed = "(reported)", None
    else:
        verdict = f"{'>=' if above else '<='} {goal:.2f}"
        passed = overall >= goal if above else overall <= goal
    return Ratio(
        f"c={cell.concurrency} {label}, {top} / {bottom}",
        overall,
        statistics.median(per_round),
        min(per_round),
        max(per_round),
        verdict,
        passed,
    )


def deployment_counts(served: list[str]) -> dict[str, Any]:
    """What each deployment served counted (flushed to the registry by its server)."""
    return {
        name: json.loads(cli("deploy", "results", name, "--json"))
        for name in DEPLOYMENTS
        if name in served
    }


def counts_check(counts: dict[str, Any]) -> list[str]:
    """Lines about the canary's split and the shadow's copies; problems start with 'PROBLEM'."""
    lines = []
    if "lr-canary" in counts:
        arms = {arm["version"]: arm["requests"] for arm in counts["lr-canary"]["arms"]}
        total = sum(arms.values())
        share = arms.get("2", 0) / total if total else 0.0
        tolerance = 4 * math.sqrt(0.1 * 0.9 / max(total, 1))  # four standard errors
        flag = "" if total and abs(share - 0.1) <= tolerance else "PROBLEM: "
        lines.append(
            f"{flag}canary: {total} requests counted, version 2 answered {share:.2%} "
            f"(weight 10%, tolerance ±{tolerance:.2%})"
        )
    if "lr-shadow" in counts:
        shadow = counts["lr-shadow"]["shadow"] or {}
        primary = sum(arm["requests"] for arm in counts["lr-shadow"]["arms"])
        copies, dropped = shadow.get("copies", 0), shadow.get("dropped", 0)
        whole = copies and copies + dropped == primary and not shadow.get("errors")
        lines.append(
            f"{'' if whole else 'PROBLEM: '}shadow: {primary} primary answers, {copies} copies "
            f"sent, {dropped} dropped, {shadow.get('errors', 0)} errors, agreement "
            f"{shadow.get('agreement')}"
        )
    return lines


# ---- main ---------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    serving.preflight(args)
    os.sched_setaffinity(0, {args.client_core})
    info = serving.machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['load_avg']}")
    print(f"date: {info['date']} (shared machine: other work may run beside the benchmark)")
    if args.profile is not None:
        if not layers.available():
            raise serving.BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seaway-bench-deploy-") as tmp_name:
        tmp = Path(tmp_name)
        os.chdir(tmp)  # `python -m seaway` puts the working directory first on sys.path
        env = {**os.environ, "SEAWAY_HOME": str(tmp / "home"), "PYTHONUNBUFFERED": "1"}
        os.environ.update(SEAWAY_HOME=env["SEAWAY_HOME"], PYTHONUNBUFFERED="1")
        models, x = serving.train_models()
        register(x, models, tmp)
        rng = random.Random(0)
        bodies = [
            serving.request_body([float(v) for v in x[rng.randrange(len(x))]])
            for _ in range(serving.BODY_POOL)
        ]
        names = sorted({n for c in args.cells for n in cell_servers(c)}, key=list(SERVERS).index)
        servers = {}
        for name in names:
            port = serving.free_port()
            servers[name] = serving.Server(
                f"seaway-{name}", port, server_argv(name, port, tmp), tmp / f"{name}.log"
            )
        scripts = {
            name: serving.wrk_script(tmp / f"{name}.lua", route(name), bodies) for name in names
        }
        cells: list[Cell] = []
        with serving.servers_running(list(servers.values()), args.server_core, env):
            # every server answers version 1's prediction before anything is timed
            first = {
                name: serving.post(s.url(route(name, None if name == "direct" else "1")), bodies[0])
                for name, s in servers.items()
            }
            if len({json.dumps(a["outputs"][0]["data"]) for a in first.values()}) != 1:
                raise serving.BenchError(f"the servers disagree on version 1: {first}")
            if "shadow" in servers:
                shadow = servers["shadow"]
                pid = find_shadow_replica(shadow, bodies[0])
                if args.shadow_core == "client":
                    os.sched_setaffinity(pid, {args.client_core})
                    shadow.cores = (args.server_core, args.client_core)  # its `other` counts both
                where = sorted(os.sched_getaffinity(pid))
                print(f"shadow: its replica (pid {pid}) runs on core(s) {where}")
            for server in servers.values():
                print(
                    f"{server.name}: {len(server.pids)} processes "
                    f"({', '.join(comm(p) for p in server.pids)})"
                )
            for concurrency in args.cells:
                cells.append(
                    measure_cell(args, servers, scripts, cell_servers(concurrency), concurrency)
                )
            time.sleep(5.0)  # two polls: each server flushes its counts to the registry
            counts = deployment_counts([SERVERS[name] or "" for name in servers])
    print()
    serving.print_table([run for cell in cells for run in cell.runs])
    found = []
    for cell in cells:
        if cell.concurrency == 64:
            found.append(ratio(cell, "canary", "direct", "rps", CANARY_GOAL, above=True))
            found.append(ratio(cell, "canary", "direct", "cpu", None, above=False))
            found.append(ratio(cell, "plain", "direct", "rps", None, above=True))
            found.append(ratio(cell, "canary", "plain", "rps", None, above=True))
        else:
            found.append(ratio(cell, "shadow", "plain", "p50", SHADOW_GOAL, above=False))
            found.append(ratio(cell, "plain", "direct", "p50", None, above=False))
            found.append(ratio(cell, "shadow", "plain", "cpu", None, above=False))
    print(f"\nratios over {args.rounds} alternating rounds of {args.seconds} s (overall; median "
          "and range of the per-round ratios)")  # fmt: skip
    for r in found:
        verdict = "" if r.passed is None else ("PASS" if r.passed else "FAIL")
        print(
            f"  {r.name:<34}{r.overall:>7.3f}  rounds {r.median:.3f} [{r.low:.3f}, {r.high:.3f}]"
            f"  goal {r.goal:<10}{verdict}"
        )
    print("\nCPU per request (median of rounds): server process + its replicas, in µs")
    for cell in cells:
        for name, shares in zip(cell.servers, cell.split, strict=True):
            main = statistics.median(m for m, _ in shares)
            rest = statistics.median(r for _, r in shares)
            print(f"  c={cell.concurrency:<3} {name:<8} {main:7.1f} + {rest:6.1f}")
    errors = sum(run.errors for cell in cells for run in cell.runs)
    notes = counts_check(counts)
    print("\ndeployments' own counts:")
    for line in notes:
        print(f"  {line}")
    print(f"failed requests: {errors}")
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.json:
        doc = {
            "machine": info,
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "cells": [
                {
                    "concurrency": c.concurrency,
                    "runs": [asdict(r) for r in c.runs],
                    "rounds": {
                        n: [asdict(r) for r in rs]
                        for n, rs in zip(c.servers, c.rounds, strict=True)
                    },
                    "cpu_us_main_replicas": dict(zip(c.servers, c.split, strict=True)),
                }
                for c in cells
            ],
            "ratios": [asdict(r) for r in found],
            "counts": counts,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {args.json}")
    problems = errors or any(line.startswith("PROBLEM") for line in notes)
    return 0 if all(r.passed is not False for r in found) and not problems else 1


def cell_servers(concurrency: int) -> list[str]:
    return ["direct", "canary", "plain"] if concurrency == 64 else ["plain", "shadow", "direct"]


if __name__ == "__main__":
    try:
        sys.exit(main())
    except serving.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
