"""Two or more servers measured at the same time on one core: CPU per request, side by side.

    .venv/bin/python bench/sidebyside.py --servers floor-isolated,seaway
    git archive HEAD~1 seaway | tar -x -C /tmp/before   # another commit's package
    .venv/bin/python bench/sidebyside.py --servers seaway@/tmp/before,seaway

Alternating runs (``bench/serving.py``) compare servers seconds apart, and this machine's speed
moves by ±25% between 3-second windows, which hides changes of a few percent. Here every server
runs at once, pinned to the same core, each under its own ``wrk -c1`` (on the other core): a slow
spell hits them alike, and the figure compared is the CPU each server's process tree spent per
request it answered (from /proc), not a latency. Contention inflates every figure (caches are
shared three or four ways), so read the ratios, not the microseconds.

Servers: ``floor`` and ``floor-isolated`` (bench/floor.py), ``seaway`` (this checkout), and
``seaway@DIR``: ``seaway serve`` importing the ``seaway`` package found in ``DIR`` first. Each
round prints each server's CPU per request (its processes' shares after the ``=``) and wrk's p50;
the summary gives medians and the median of each round's ratio to the first server.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import serving  # bench/serving.py, beside this file


def build(spec: str, tmp: Path) -> serving.Server:
    kind, _, tree = spec.partition("@")
    if kind not in ("floor", "floor-isolated", "seaway", "seaway-log") or (
        tree and not kind.startswith("seaway")
    ):
        raise serving.BenchError(
            f"unknown server {spec!r}: floor, floor-isolated, seaway[@DIR], seaway-log[@DIR]"
        )
    port = serving.free_port()
    argv = serving.server_argv(kind, port, ["lr"], tmp)
    if tree:
        argv = ["env", f"PYTHONPATH={Path(tree).resolve()}", *argv]
    return serving.Server(spec, port, argv, tmp / f"{spec.replace('/', '_')}.log")


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / serving.CLK_TCK


def one_round(
    servers: list[serving.Server],
    script: Path,
    seconds: int,
    client_core: int,
    connections: int = 1,
) -> list[tuple[float, list[float], float]]:
    """(CPU µs per request, per process, p50 ms) of each server, all loaded at once."""
    before = [[process_cpu(pid) for pid in s.pids] for s in servers]
    loads = []
    for server in servers:
        argv = ["taskset", "-c", str(client_core), "wrk", "-t1", f"-c{connections}"]
        argv += [f"-d{seconds}s"]
        argv += ["-s", str(script), server.url("")]
        loads.append(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True))
    outputs = [load.communicate(timeout=seconds + 60)[0] for load in loads]
    found = []
    for server, start, output in zip(servers, before, outputs, strict=True):
        lines = [line for line in output.splitlines() if line.startswith("WRK_RESULT ")]
        if not lines:
            raise serving.BenchError(f"wrk failed against {server.name}:\n{output}")
        result = json.loads(lines[-1].removeprefix("WRK_RESULT "))
        if result["non2xx"] or not result["requests"]:
            raise serving.BenchError(f"{server.name} answered errors: {result}")
        shares = [
            (process_cpu(pid) - cpu) / result["requests"] * 1e6
            for pid, cpu in zip(server.pids, start, strict=True)
        ]
        found.append((sum(shares), shares, result["p50_us"] / 1000))
    return found


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="floor-isolated,seaway", help="comma-separated")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=5, help="per round [5]")
    parser.add_argument(
        "--connections", type=int, default=1, help="wrk's connections per server [1]"
    )
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.client_core})
    with tempfile.TemporaryDirectory(prefix="seaway-sidebyside-") as tmp_name:
        tmp = Path(tmp_name)
        os.chdir(tmp)  # `python -m seaway` puts the working directory first on sys.path
        env = {**os.environ, "SEAWAY_HOME": str(tmp / "home"), "PYTHONUNBUFFERED": "1"}
        os.environ["SEAWAY_HOME"] = env["SEAWAY_HOME"]
        models, x = serving.train_models()
        import seaway

        seaway.log_model(models["lr"], "lr", sample_input=x[:20], reference_data=x)
        (tmp / "lr.pkl").write_bytes(pickle.dumps(models["lr"]))
        servers = [build(spec, tmp) for spec in args.servers.split(",")]
        rng = random.Random(0)
        bodies = [
            serving.request_body([float(v) for v in x[rng.randrange(len(x))]])
            for _ in range(serving.BODY_POOL)
        ]
        script = serving.wrk_script(tmp / "lr.lua", "/v2/models/lr/infer", bodies)
        rounds: list[list[tuple[float, list[float], float]]] = []
        with serving.servers_running(servers, args.server_core, env):
            one_round(servers, script, 2, args.client_core, args.connections)  # warm-up
            for index in range(args.rounds):
                rounds.append(
                    one_round(servers, script, args.seconds, args.client_core, args.connections)
                )
                cells = [
                    f"{s.name}: {cpu:.0f} µs (= {' + '.join(f'{v:.0f}' for v in shares)}), "
                    f"p50 {p50:.3f} ms"
                    for s, (cpu, shares, p50) in zip(servers, rounds[-1], strict=True)
                ]
                print(f"round {index + 1}: " + " | ".join(cells), flush=True)
    print(
        f"\nmedians over {args.rounds} rounds (LogisticRegression, c={args.connections} each, "
        "one core):"
    )
    for column, server in enumerate(servers):
        cpu = statistics.median(r[column][0] for r in rounds)
        shares = [
            statistics.median(r[column][1][i] for r in rounds) for i in range(len(server.pids))
        ]
        ratio = statistics.median(r[column][0] / r[0][0] for r in rounds)
        p50 = statistics.median(r[column][2] for r in rounds)
        print(
            f"  {server.name:<24} {cpu:6.0f} µs/request  (processes {[round(v) for v in shares]})"
            f"  x{ratio:.3f} of {servers[0].name}  p50 {p50:.3f} ms"
        )


def main() -> None:
    try:
        run()
    except serving.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
