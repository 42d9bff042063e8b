"""Serving benchmark: `seaway serve` against the thinnest server we can write (bench/floor.py).

    .venv/bin/python bench/serving.py            # full run, about 3 minutes
    .venv/bin/python bench/serving.py --quick    # smoke run, about a minute
    .venv/bin/python bench/serving.py --json results.json --profile prof/   # py-spy: bench/layers.py

Trains a small RandomForest and a LogisticRegression on synthetic data, registers them with
``seaway.log_model`` in a temporary SEAWAY_HOME, starts ``seaway serve`` (default batching, replica
processes) and the floor, each pinned to one core with ``taskset`` (replicas inherit the
affinity), and drives single-row V2 JSON requests from the other core with ``wrk`` at each
concurrency. Prints requests/s, p50/p99 latency and errors per (model, concurrency, server), then
the issue's targets with PASS/FAIL; exits 1 when a target fails. Needs ``wrk`` (Debian:
``apt-get install -y wrk``). See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import layers  # bench/layers.py, beside this file
from machine import describe

HERE = Path(__file__).resolve().parent
FEATURES = 20
BODY_POOL = 64  # distinct single-row bodies the load generator cycles through
CLK_TCK = os.sysconf("SC_CLK_TCK")

LUA_DONE = r"""
done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%.0f,"duration_us":%.0f,"non2xx":%.0f,"connect":%.0f,' ..
    '"read":%.0f,"write":%.0f,"timeout":%.0f,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,' ..
    '"max_us":%.0f,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


class BenchError(Exception):
    """A precondition or a step failed; the message says what to do."""


# ---- models -------------------------------------------------------------------------------------


def train_models(seed: int = 0) -> tuple[dict[str, Any], Any]:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(
        n_samples=5000, n_features=FEATURES, n_informative=10, random_state=seed
    )
    models = {
        "rf": RandomForestClassifier(n_estimators=50, max_depth=8, random_state=seed).fit(x, y),
        "lr": LogisticRegression(max_iter=1000).fit(x, y),
    }
    return models, x


def predict_cost_us(model: Any, x: Any, rows: int, repeat: int = 200) -> float:
    batch = x[:rows].copy()
    for _ in range(10):
        model.predict(batch)
    started = time.perf_counter()
    for _ in range(repeat):
        model.predict(batch)
    return (time.perf_counter() - started) / repeat * 1e6


def request_body(row: Any) -> bytes:
    """One row as one FP64 [1, n] tensor (the shape Seaway's array signature takes), a plain
    request naming no outputs: Seaway then answers ``predict`` alone, as the floor does."""
    doc = {
        "inputs": [
            {"name": "input", "datatype": "FP64", "shape": [1, len(row)], "data": list(row)}
        ],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


# ---- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    #: the cores it is pinned to (two for the ``-2w`` servers: the load generator's core too);
    #: unset: the server core given to :func:`servers_running`
    cores: tuple[int, ...] = ()
    idle_cpu: float = 0.0
    pids: list[int] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def start(server: Server, env: dict[str, str]) -> None:
    with server.log.open("wb") as log:
        server.process = subprocess.Popen(
            ["taskset", "-c", ",".join(map(str, server.cores)), *server.argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: stopped whole, replicas included
        )


def wait_ready(server: Server, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    assert server.process is not None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited ({server.process.returncode}):\n{tail(server)}")
        try:
            with urllib.request.urlopen(server.url("/v2/health/ready"), timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise BenchError(f"{server.name} not ready after {timeout:.0f} s:\n{tail(server)}")


def tail(server: Server, lines: int = 30) -> str:
    try:
        return "\n".join(server.log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(server: Server) -> None:
    process = server.process
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    # replicas of a server that died first may be left in the group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLK_TCK


def core_busy(core: int) -> float:
    """CPU seconds core ``core`` spent busy (any process), from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, line.split()[1:9])
            return (user + nice + system + irq + softirq + steal) / CLK_TCK
    return 0.0


def check_pinned(server: Server) -> list[int]:
    assert server.process is not None
    pids = tree(server.process.pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            if os.sched_getaffinity(pid) != set(server.cores):
                raise BenchError(f"{server.name} process {pid} is not pinned to {server.cores}")
    return pids


# ---- load generator -----------------------------------------------------------------------------


def wrk_script(path: Path, route: str, bodies: list[bytes]) -> Path:
    items = ",\n".join(f"  [==[{body.decode()}]==]" for body in bodies)
    path.write_text(
        f"local bodies = {{\n{items}\n}}\n"
        f'local route = "{route}"\n'
        "local prepared = {}\nlocal n = 0\n"
        "init = function(args)\n"
        "  for k, body in ipairs(bodies) do\n"
        '    prepared[k] = wrk.format("POST", route, {["Content-Type"] = "application/json"}, body)\n'
        "  end\n"
        "end\n"
        "request = function()\n  n = n % #prepared + 1\n  return prepared[n]\nend\n" + LUA_DONE
    )
    return path


@dataclass
class Run:
    model: str
    concurrency: int
    server: str
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int
    error_detail: dict[str, int]
    server_cpu: float  # share of the server core the server used, 1.0 = saturated
    gen_cpu: float  # share of the load generator's core wrk used
    other_cpu: float  # share of the server core used by anything else (other work: noise)
    batch: float | None = None  # Seaway: mean requests per model call
    rounds_p50_ms: list[float] = field(default_factory=list)  # each round's p50 (see combine)


def combine(parts: list[Run]) -> Run:
    """One cell from its rounds: counts summed, throughput over the summed time, and each
    latency percentile the median of the rounds' (this machine has slow spells of seconds; the
    rounds of all servers alternate, so a spell hits them alike and the median steps over it)."""
    first = parts[0]
    requests = sum(p.requests for p in parts)
    seconds = sum(p.requests / p.rps for p in parts if p.rps)
    detail: dict[str, int] = {}
    for part in parts:
        for key, count in part.error_detail.items():
            detail[key] = detail.get(key, 0) + count
    batches = [p.batch for p in parts if p.batch is not None]
    return Run(
        model=first.model,
        concurrency=first.concurrency,
        server=first.server,
        rps=requests / seconds if seconds else 0.0,
        p50_ms=statistics.median(p.p50_ms for p in parts),
        p90_ms=statistics.median(p.p90_ms for p in parts),
        p99_ms=statistics.median(p.p99_ms for p in parts),
        max_ms=max(p.max_ms for p in parts),
        requests=requests,
        errors=sum(p.errors for p in parts),
        error_detail=detail,
        server_cpu=round(statistics.fmean(p.server_cpu for p in parts), 3),
        gen_cpu=round(statistics.fmean(p.gen_cpu for p in parts), 3),
        other_cpu=round(statistics.fmean(p.other_cpu for p in parts), 3),
        batch=round(statistics.fmean(batches), 2) if batches else None,
        rounds_p50_ms=[p.p50_ms for p in parts],
    )


def wrk(
    script: Path, server: Server, concurrency: int, seconds: int, cores: tuple[int, int], model: str
) -> Run:
    """Run wrk from ``cores[1]`` against ``server`` (pinned to ``server.cores``: ``cores[0]``,
    or both for a two-core server) and read its result. ``other``: the server's cores' time
    taken by processes not ours (wrk's excluded when it shares a core with the server)."""
    _, core = cores
    argv = [
        "taskset", "-c", str(core), "wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s",
        "--timeout", "10s", "-s", str(script), server.url(""),
    ]  # fmt: skip
    before_batch = batch_totals(server, model)
    before_gen = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_srv = cpu_seconds(server.pids)
    before_core = sum(core_busy(c) for c in server.cores)
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    wall = time.monotonic() - started
    srv = (cpu_seconds(server.pids) - before_srv) / wall
    busy = (sum(core_busy(c) for c in server.cores) - before_core) / wall
    after_gen = resource.getrusage(resource.RUSAGE_CHILDREN)
    gen = (
        after_gen.ru_utime + after_gen.ru_stime - before_gen.ru_utime - before_gen.ru_stime
    ) / wall
    other = max(busy - srv - (gen if core in server.cores else 0.0), 0.0)
    after_batch = batch_totals(server, model)
    calls = after_batch[1] - before_batch[1]
    batch = round((after_batch[0] - before_batch[0]) / calls, 2) if calls else None
    lines = [line for line in done.stdout.splitlines() if line.startswith("WRK_RESULT ")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    r = json.loads(lines[-1].removeprefix("WRK_RESULT "))
    detail = {k: int(r[k]) for k in ("non2xx", "connect", "read", "write", "timeout") if r[k]}
    return Run(
        model=model,
        concurrency=concurrency,
        server=server.name,
        rps=r["requests"] / (r["duration_us"] / 1e6),
        p50_ms=r["p50_us"] / 1000,
        p90_ms=r["p90_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        max_ms=r["max_us"] / 1000,
        requests=int(r["requests"]),
        errors=sum(detail.values()),
        error_detail=detail,
        server_cpu=round(srv, 3),
        gen_cpu=round(gen, 3),
        other_cpu=round(other, 3),
        batch=batch,
    )


def batch_totals(server: Server, model: str) -> tuple[float, float]:
    """(requests, model calls) so far for ``model`` from Seaway's /metrics; (0, 0) elsewhere."""
    if not server.name.startswith("seaway"):
        return 0.0, 0.0
    with urllib.request.urlopen(server.url("/metrics"), timeout=10) as reply:
        text = reply.read().decode()
    totals = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        for kind in totals:
            if line.startswith(f'seaway_batch_requests_{kind}{{model="{model}"'):
                totals[kind] += float(line.rsplit(" ", 1)[1])
    return totals["sum"], totals["count"]


def post(url: str, body: bytes) -> dict[str, Any]:
    request = urllib.request.Request(
        url, body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())  # type: ignore[no-any-return]


# ---- report -------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    value: float | None
    goal: str
    passed: bool | None


def targets(runs: list[Run], models: list[str], baseline: str, candidate: str) -> list[Target]:
    def get(model: str, concurrency: int, server: str) -> Run | None:
        return next(
            (r for r in runs if (r.model, r.concurrency, r.server) == (model, concurrency, server)),
            None,
        )

    found: list[Target] = []
    throughput_goal = {"rf": 10.0, "lr": 1.0}
    for model in models:
        floor, own = get(model, 64, baseline), get(model, 64, candidate)
        if floor and own:
            ratio = own.rps / floor.rps
            goal = throughput_goal[model]
            found.append(
                Target(f"{model} c=64 req/s vs floor", ratio, f">= {goal:g}x", ratio >= goal)
            )
    for model in models:
        floor, own = get(model, 1, baseline), get(model, 1, candidate)
        if floor and own:
            ratio = own.p50_ms / floor.p50_ms
            found.append(Target(f"{model} c=1 p50 vs floor", ratio, "<= 1.5x", ratio <= 1.5))
    for model in models:
        own = get(model, 64, candidate)
        if own:
            ratio = own.p99_ms / own.p50_ms
            found.append(Target(f"{model} c=64 p99 / own p50", ratio, "<= 5x", ratio <= 5.0))
    errors = sum(r.errors for r in runs)
    found.append(Target("no failed requests", float(errors), "0", errors == 0))
    return found


def print_table(runs: list[Run]) -> None:
    """One line per measurement. ``us/req``: server CPU per request; ``batch``: Seaway's mean
    requests per model call; ``other``: the server core's time taken by processes not ours."""
    head = (
        f"{'model':<6}{'conc':>5}  {'server':<15}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>7}{'batch':>7}{'us/req':>8}{'srv CPU':>8}{'wrk CPU':>8}{'other':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in runs:
        batch = "-" if r.batch is None else f"{r.batch:.1f}"
        cost = r.server_cpu / r.rps * 1e6 if r.rps else 0.0
        print(
            f"{r.model:<6}{r.concurrency:>5}  {r.server:<15}{r.rps:>8.0f}{r.p50_ms:>9.2f}"
            f"{r.p99_ms:>9.2f}{r.errors:>7}{batch:>7}{cost:>8.0f}{r.server_cpu:>8.0%}"
            f"{r.gen_cpu:>8.0%}{r.other_cpu:>7.0%}"
        )


def print_targets(found: list[Target], candidate: str) -> None:
    print(f"\ntargets ({candidate} against floor)")
    for t in found:
        value = "n/a" if t.value is None else f"{t.value:.2f}"
        verdict = "PASS" if t.passed else "FAIL"
        print(f"  {t.name:<28}{value:>9}  goal {t.goal:<9}{verdict}")


# ---- main ---------------------------------------------------------------------------------------


SERVERS = {
    "floor": "bench/floor.py: raw ASGI on uvicorn (httptools, uvloop)",
    "floor-isolated": "bench/floor.py --isolated: the floor with each model in a child process",
    "seaway": "seaway serve as shipped (gRPC on, default batching, 1 replica)",
    "seaway-nogrpc": "seaway serve --no-grpc",
    "seaway-log": "seaway serve --log-sample 1.0: every request in the prediction log",
    "floor-2w": "bench/floor.py --workers 2, on two cores (the load generator's too)",
    "seaway-2w": "seaway serve --workers 2, on two cores (the load generator's too)",
}
#: ``--two-core``: each server on one core and on two, side by side
TWO_CORE_SERVERS = "floor,seaway,floor-2w,seaway-2w"
#: two cores against one, at concurrency 64: the goal per model (None: reported only)
TWO_CORE_GOALS: dict[str, float | None] = {"lr": 1.5, "rf": None}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Seaway serving benchmark against a raw floor.")
    parser.add_argument("--quick", action="store_true", help="1 s warm-up, 3 s per measurement")
    parser.add_argument("--duration", type=int, help="seconds measured per cell [12]")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up per cell [2]")
    parser.add_argument(
        "--rounds",
        type=int,
        help="split each cell's seconds into this many rounds, alternating servers [6; 3 with "
        "--quick]",
    )
    parser.add_argument("--concurrency", help="comma-separated [1,32,64; 64 with --two-core]")
    parser.add_argument("--models", default="rf,lr", help="comma-separated, of rf,lr [rf,lr]")
    parser.add_argument(
        "--servers",
        help=f"comma-separated, of {', '.join(SERVERS)} [floor,seaway; {TWO_CORE_SERVERS} "
        "with --two-core]",
    )
    parser.add_argument(
        "--two-core",
        action="store_true",
        help="also each server with two workers on two cores, the load generator's core being "
        "one of them, and the ratios of two cores against one",
    )
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the Seaway servers at the highest concurrency; raw stacks go to DIR",
    )
    parser.add_argument("--keep-logs", action="store_true", help="print the end of server logs")
    args = parser.parse_args()
    args.duration = args.duration or (3 if args.quick else 12)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 6
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.concurrency = [
        int(c) for c in (args.concurrency or ("64" if args.two_core else "1,32,64")).split(",")
    ]
    args.models = args.models.split(",")
    args.servers = (args.servers or (TWO_CORE_SERVERS if args.two_core else "floor,seaway")).split(
        ","
    )
    if set(args.models) - {"rf", "lr"}:
        parser.error(f"unknown model in {args.models}; choose from rf, lr")
    if set(args.servers) - set(SERVERS) or "floor" not in args.servers:
        parser.error(f"--servers takes floor and any of {', '.join(SERVERS)}")
    if args.duration < 1 or args.rounds < 1 or any(c < 1 for c in args.concurrency):
        parser.error("durations and concurrencies must be positive")
    return args


def preflight(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        raise BenchError(
            "wrk is not installed: the benchmark drives load with it. "
            "On Debian/Ubuntu: apt-get install -y wrk (see bench/README.md)"
        )
    if shutil.which("taskset") is None:
        raise BenchError("taskset is missing (Debian: apt-get install -y util-linux)")
    cores = os.sched_getaffinity(0)
    if {args.server_core, args.client_core} - cores or args.server_core == args.client_core:
        raise BenchError(
            f"need two distinct usable cores for --server-core/--client-core; have {sorted(cores)}"
        )


def machine() -> dict[str, Any]:
    return describe("seaway", "sklearn", "uvicorn")


@contextlib.contextmanager
def servers_running(servers: list[Server], core: int, env: dict[str, str]) -> Iterator[None]:
    """Start ``servers``, each pinned to its ``cores`` (unset: ``core``), and stop them after."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}

    def on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # unwinds through the finally below

    for sig in previous:
        signal.signal(sig, on_signal)
    try:
        for server in servers:
            server.cores = server.cores or (core,)
            start(server, env)
        for server in servers:
            wait_ready(server)
            server.pids = check_pinned(server)
        yield
    finally:
        for server in servers:
            stop(server)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def server_argv(name: str, port: int, models: list[str], tmp: Path) -> list[str]:
    """The command line of server ``name`` (see SERVERS) for ``models`` pickled or registered
    in ``tmp``."""
    if name.startswith("floor"):
        pickles = [f"--model={n}={tmp / f'{n}.pkl'}" for n in models]
        argv = [sys.executable, str(HERE / "floor.py"), "--port", str(port), *pickles]
        if name == "floor-isolated":
            argv.append("--isolated")
        if name == "floor-2w":
            argv += ["--workers", "2"]
        return argv
    argv = [
        sys.executable, "-m", "seaway", "serve", *(f"models:/{n}/1" for n in models),
        "--port", str(port), "--grpc-port", str(free_port()),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    if name == "seaway-nogrpc":
        argv.append("--no-grpc")
    if name == "seaway-log":
        argv += ["--log-sample", "1.0", "--log-store", str(tmp / f"predictions-{port}")]
    if name == "seaway-2w":
        argv += ["--workers", "2"]
    return argv


def build_servers(args: argparse.Namespace, tmp: Path) -> list[Server]:
    servers = []
    for name in args.servers:
        port = free_port()
        argv = server_argv(name, port, args.models, tmp)
        two = name.endswith("-2w")
        cores = (args.server_core, args.client_core) if two else (args.server_core,)
        servers.append(Server(name, port, argv, tmp / f"{name}.log", cores=cores))
    return servers


def two_core_targets(runs: list[Run], models: list[str]) -> list[Target]:
    """Each server with two workers on two cores against itself on one core, at c=64."""
    by = {(r.model, r.concurrency, r.server): r for r in runs}
    found = []
    for base in ("seaway", "floor"):
        for model in models:
            one, two = by.get((model, 64, base)), by.get((model, 64, f"{base}-2w"))
            if not (one and two and one.rps):
                continue
            ratio = two.rps / one.rps
            goal = TWO_CORE_GOALS.get(model) if base == "seaway" else None
            found.append(
                Target(
                    f"{model} c=64 {base} 2 cores/1",
                    ratio,
                    "(reported)" if goal is None else f">= {goal:g}x",
                    goal is None or ratio >= goal,
                )
            )
    return found


def measure(
    args: argparse.Namespace,
    script: Path,
    server: Server,
    model: str,
    concurrency: int,
    seconds: int,
    warm: bool = True,
) -> Run:
    cores = (args.server_core, args.client_core)
    if args.warmup and warm:
        wrk(script, server, concurrency, args.warmup, cores, model)
    profiled = (
        warm  # the first round only
        and args.profile is not None
        and server.name.startswith("seaway")
        and concurrency == max(args.concurrency)
        and server.process is not None
    )
    if not profiled:
        return wrk(script, server, concurrency, seconds, cores, model)
    assert server.process is not None
    stem = f"{server.name}-{model}-c{concurrency}"
    main_out = args.profile / f"{stem}-server.txt"
    spies = [
        layers.record(
            pid,
            seconds,
            main_out if pid == server.process.pid else args.profile / f"{stem}-{pid}.txt",
            args.client_core,
        )
        for pid in server.pids
    ]
    try:
        result = wrk(script, server, concurrency, seconds, cores, model)
    finally:
        for spy in spies:
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
    if not main_out.exists():
        print(f"py-spy wrote nothing for {server.name} (is ptrace allowed here?)")
        return result
    # the server process's samples cover the whole busy core (its replica's turns included), so
    # shares are scaled by the CPU per request of the whole process tree
    print(layers.report(main_out, result.server_cpu / result.rps * 1e6 if result.rps else None))
    return result


def run(args: argparse.Namespace) -> int:
    preflight(args)
    os.sched_setaffinity(0, {args.client_core})  # this process and wrk stay off the server core
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['load_avg']}")
    print(f"date: {info['date']} (shared machine: other work may run beside the benchmark)")
    for name in args.servers:
        print(f"  {name}: {SERVERS[name]}")

    with tempfile.TemporaryDirectory(prefix="seaway-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "SEAWAY_HOME": str(tmp / "home"), "PYTHONUNBUFFERED": "1"}
        os.environ["SEAWAY_HOME"] = env["SEAWAY_HOME"]
        models, x = train_models()
        costs = {}
        import seaway

        for name in args.models:
            model = models[name]
            seaway.log_model(model, name, sample_input=x[:20], reference_data=x)
            (tmp / f"{name}.pkl").write_bytes(pickle.dumps(model))
            costs[name] = {rows: predict_cost_us(model, x, rows) for rows in (1, 64)}
            print(
                f"{name}: model.predict takes {costs[name][1]:.0f} us for 1 row, "
                f"{costs[name][64]:.0f} us for 64 rows (in process, core {args.client_core})"
            )

        servers = build_servers(args, tmp)
        rng = random.Random(0)
        bodies = [
            request_body([float(v) for v in x[rng.randrange(len(x))]]) for _ in range(BODY_POOL)
        ]
        runs: list[Run] = []
        with servers_running(servers, args.server_core, env):
            # every server answers, and answers the same thing, before anything is timed
            for name in args.models:
                route = f"/v2/models/{name}/infer"
                answers = {s.name: post(s.url(route), bodies[0])["outputs"] for s in servers}
                if len({json.dumps(a[0]["data"]) for a in answers.values()}) != 1:
                    raise BenchError(f"the servers disagree on {name}: {answers}")
            for server in servers:
                before = cpu_seconds(server.pids)
                time.sleep(1.0)
                server.idle_cpu = cpu_seconds(server.pids) - before
                print(
                    f"{server.name}: {len(server.pids)} processes pinned to cores "
                    f"{','.join(map(str, server.cores))}, idle CPU {server.idle_cpu:.0%}"
                )
            floor = servers[args.servers.index("floor")]
            script = wrk_script(tmp / "noop.lua", "/noop", bodies)
            wrk(script, floor, 64, args.warmup or 1, (args.server_core, args.client_core), "-")
            calibration = wrk(
                script, floor, 64, args.duration, (args.server_core, args.client_core), "noop"
            )
            print(
                f"load generator check (floor POST /noop, c=64): {calibration.rps:.0f} req/s, "
                f"wrk at {calibration.gen_cpu:.0%} of core {args.client_core}, floor at "
                f"{calibration.server_cpu:.0%} of core {args.server_core}\n"
            )
            if args.profile is not None:
                if not layers.available():
                    raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
                args.profile.mkdir(parents=True, exist_ok=True)
            for name in args.models:
                script = wrk_script(tmp / f"{name}.lua", f"/v2/models/{name}/infer", bodies)
                for concurrency in args.concurrency:
                    # side by side: each round runs every server in turn
                    parts: list[list[Run]] = [[] for _ in servers]
                    seconds = max(1, args.duration // args.rounds)
                    for index in range(args.rounds):
                        for server, done in zip(servers, parts, strict=True):
                            done.append(
                                measure(
                                    args, script, server, name, concurrency, seconds, index == 0
                                )
                            )
                    for server, done in zip(servers, parts, strict=True):
                        result = combine(done)
                        runs.append(result)
                        print(
                            f"  {name} c={concurrency:<3} {server.name:<14} {result.rps:>8.0f} "
                            f"req/s  p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms  "
                            f"errors {result.errors}",
                            flush=True,
                        )
            if args.keep_logs:
                for server in servers:
                    print(f"--- {server.name} log:\n{tail(server)}")

    print()
    print_table(runs)
    found = {}
    for name in args.servers:
        if name != "floor" and not name.endswith("-2w"):
            found[name] = targets(runs, args.models, "floor", name)
            print_targets(found[name], name)
    if any(name.endswith("-2w") for name in args.servers):
        found["two-core"] = two_core_targets(runs, args.models)
        print("\ntwo cores against one (-2w: two workers on cores "
              f"{args.server_core},{args.client_core}, wrk on core {args.client_core} too)")  # fmt: skip
        for t in found["two-core"]:
            value = "n/a" if t.value is None else f"{t.value:.2f}"
            print(f"  {t.name:<28}{value:>9}  goal {t.goal:<11}{'PASS' if t.passed else 'FAIL'}")
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.json:
        doc = {
            "machine": info,
            "settings": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "rounds": args.rounds,
                "server_core": args.server_core,
                "client_core": args.client_core,
                "servers": {s.name: s.argv[1:] for s in servers},
                "idle_cpu": {s.name: s.idle_cpu for s in servers},
            },
            "predict_cost_us": costs,
            "calibration": asdict(calibration),
            "runs": [asdict(r) for r in runs],
            "targets": {name: [asdict(t) for t in ts] for name, ts in found.items()},
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    main_targets = found.get("seaway", []) + found.get("two-core", [])
    return 0 if all(t.passed for t in main_targets) else 1


def main() -> None:
    args = parse_args()
    try:
        sys.exit(run(args))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
