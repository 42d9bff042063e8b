"""Start-up and memory benchmark: how fast `seaway serve` becomes ready, how fast a replica starts,
how long a hot swap takes to switch, and how much memory the server takes, beside the floor.

    .venv/bin/python bench/startup.py                 # three rounds, about three minutes
    .venv/bin/python bench/startup.py --rounds 1 --json startup.json

Every Seaway figure is measured twice in each round, side by side: replicas forked from the
preloaded zygote (``fork``, the default) and spawned from scratch (``spawn``,
``SEAWAY_REPLICA_START=spawn``, how Seaway started replicas before the zygote). Figures:

- **ready**: from starting the server process to the first 200 from ``/v2/health/ready`` (polled
  every 10 ms), with one model (the RandomForest) and with two (RandomForest, LogisticRegression);
- **memory**: proportional set size (``Pss`` of ``/proc/PID/smaps_rollup``) summed over the
  server's process tree once every model has answered a request, with its parts (server, zygote,
  replicas, other: multiprocessing's resource tracker when replicas are spawned);
- **replica start**: ``Replica.start`` of the RandomForest package in this process (load and warm,
  until the replica says ready), after one start that is not counted (the zygote is up);
- **hot-swap switch**: ``seaway serve models:/rf@prod --poll-interval 0.2`` under a light load (4
  client threads); the alias is moved from version 1 to 2 and the figure is the time from the move
  to the first answer from version 2 (it includes up to one poll interval).

The floor (``bench/floor.py``, models unpickled in the server process) gives ready time and memory
for the same models. Medians over the rounds; read the ratios: the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import serving  # bench/serving.py, beside this file
from machine import describe

MODES = ("fork", "spawn")
POLL = 0.2


def pss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total / 1024


def roles(root: int) -> dict[str, list[int]]:
    """The server's process tree by role: server, zygote, replicas, other."""
    found: dict[str, list[int]] = {"server": [], "zygote": [], "replicas": [], "other": []}
    zygotes = set()
    for pid in serving.tree(root):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if pid == root:
            found["server"].append(pid)
        elif b"seaway.runtime.zygote" in cmdline and parent == root:
            found["zygote"].append(pid)
            zygotes.add(pid)
        elif parent in zygotes or b"spawn_main" in cmdline:
            found["replicas"].append(pid)
        else:
            found["other"].append(pid)
    return found


def seaway_argv(port: int, refs: list[str], *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "seaway", "serve", *refs, "--port", str(port),
        "--grpc-port", str(serving.free_port()), "--no-access-log", "--log-level", "warning",
        *extra,
    ]  # fmt: skip


def floor_argv(port: int, tmp: Path, models: list[str]) -> list[str]:
    pickles = [f"--model={n}={tmp / f'{n}.pkl'}" for n in models]
    return [sys.executable, str(serving.HERE / "floor.py"), "--port", str(port), *pickles]


def launch(name: str, argv: list[str], env: dict[str, str], tmp: Path) -> tuple[Any, float]:
    """Start a server and wait for readiness; returns (server, seconds to ready)."""
    server = serving.Server(name, int(argv[argv.index("--port") + 1]), argv, tmp / f"{name}.log")
    started = time.monotonic()
    with server.log.open("wb") as log:
        server.process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    deadline = started + 180
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise serving.BenchError(f"{name} exited:\n{serving.tail(server)}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(server.url("/v2/health/ready"), timeout=2) as reply,
        ):
            if reply.status == 200:
                return server, time.monotonic() - started
        time.sleep(0.01)
    serving.stop(server)
    raise serving.BenchError(f"{name} not ready after 180 s:\n{serving.tail(server)}")


def infer(server: Any, model: str, body: bytes) -> dict[str, Any]:
    return serving.post(server.url(f"/v2/models/{model}/infer"), body)


def ready_and_memory(
    kind: str, mode: str, models: list[str], env: dict[str, str], tmp: Path, body: bytes
) -> tuple[float, float, str]:
    port = serving.free_port()
    refs = [f"models:/{n}/1" for n in models]
    argv = floor_argv(port, tmp, models) if kind == "floor" else seaway_argv(port, refs)
    server, ready = launch(f"{kind}-{mode}", argv, {**env, "SEAWAY_REPLICA_START": mode}, tmp)
    try:
        for name in models:
            infer(server, name, body)
        assert server.process is not None
        parts = roles(server.process.pid)
        memory = sum(pss_mib(pids) for pids in parts.values())
        detail = ", ".join(
            f"{role} {pss_mib(pids):.0f}" + (f" ({len(pids)})" if len(pids) > 1 else "")
            for role, pids in parts.items()
            if pids
        )
    finally:
        serving.stop(server)
    return ready, memory, detail


def replica_starts(package: Path, mode: str, count: int) -> list[float]:
    from seaway.runtime.replica import Replica, ReplicaSpec

    os.environ["SEAWAY_REPLICA_START"] = mode

    async def main() -> list[float]:
        times = []
        for index in range(count + 1):
            replica = Replica(ReplicaSpec(str(package)), index)
            started = time.monotonic()
            await replica.start()
            times.append(time.monotonic() - started)
            await replica.stop()
        return times[1:]  # the first start may wait for the zygote's imports

    try:
        return asyncio.run(main())
    finally:
        del os.environ["SEAWAY_REPLICA_START"]


def hot_swap(mode: str, env: dict[str, str], tmp: Path, body: bytes) -> tuple[float, int]:
    """Seconds from moving rf@prod to 1 -> 2 to the first answer from version 2; errors seen."""
    import seaway

    registry = seaway.Registry.from_settings()
    registry.set_alias("rf", "prod", 1)
    port = serving.free_port()
    argv = seaway_argv(port, ["models:/rf@prod"], "--poll-interval", str(POLL))
    server, _ = launch(f"swap-{mode}", argv, {**env, "SEAWAY_REPLICA_START": mode}, tmp)
    first_new: list[float] = []
    errors = [0]
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                answer = infer(server, "rf", body)
            except Exception:
                errors[0] += 1
                continue
            if answer.get("model_version") == "2" and not first_new:
                first_new.append(time.monotonic())

    threads = [threading.Thread(target=client) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # the load is running
        registry.set_alias("rf", "prod", 2)
        moved = time.monotonic()
        deadline = moved + 120
        while not first_new and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        serving.stop(server)
    if not first_new:
        raise serving.BenchError(f"swap-{mode}: no answer from version 2 within 120 s")
    return first_new[0] - moved, errors[0]


def run(args: argparse.Namespace) -> dict[str, Any]:
    info = describe("seaway", "sklearn", "numpy")
    print(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['load_avg']}")
    print(f"date: {info['date']} (shared machine: other work may run beside the benchmark)")
    results: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        results.setdefault(key, []).append(value)

    with tempfile.TemporaryDirectory(prefix="seaway-startup-") as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "SEAWAY_HOME": str(tmp / "home"), "PYTHONUNBUFFERED": "1"}
        os.environ["SEAWAY_HOME"] = env["SEAWAY_HOME"]
        import seaway

        models, x = serving.train_models()
        for name, model in models.items():
            seaway.log_model(model, name, sample_input=x[:20])
            (tmp / f"{name}.pkl").write_bytes(pickle.dumps(model))
        seaway.log_model(models["rf"], "rf", sample_input=x[:20])  # rf/2, for the hot swap
        package = tmp / "rf-package"
        seaway.save_model(models["rf"], package, sample_input=x[:20])
        body = serving.request_body([float(v) for v in x[0]])
        for round_index in range(args.rounds):
            print(f"round {round_index + 1}/{args.rounds}", flush=True)
            for kind, mode in (("floor", "-"), *(("seaway", m) for m in MODES)):
                for models_served in (["rf"], ["rf", "lr"]):
                    ready, memory, detail = ready_and_memory(
                        kind, mode, models_served, env, tmp, body
                    )
                    label = f"{kind}-{mode}" if kind == "seaway" else kind
                    add(f"{label} ready {len(models_served)}", ready)
                    add(f"{label} pss {len(models_served)}", memory)
                    print(
                        f"  {label:<13} {len(models_served)} model(s): ready {ready:.2f} s, "
                        f"PSS {memory:.0f} MiB ({detail})",
                        flush=True,
                    )
            for mode in MODES:
                starts = replica_starts(package, mode, args.starts)
                for value in starts:
                    add(f"seaway-{mode} replica start", value)
                switch, errors = hot_swap(mode, env, tmp, body)
                add(f"seaway-{mode} swap", switch)
                print(
                    f"  seaway-{mode:<6} replica start median {statistics.median(starts):.3f} s, "
                    f"hot-swap switch {switch:.2f} s ({errors} errors)",
                    flush=True,
                )
    medians = {key: statistics.median(values) for key, values in results.items()}
    print_summary(medians)
    return {"machine": info, "rounds": args.rounds, "runs": results, "medians": medians}


def print_summary(m: dict[str, float]) -> None:
    print("\nmedians:")
    print(f"{'':<28}{'floor':>10}{'fork':>10}{'spawn':>10}{'spawn/fork':>12}{'fork/floor':>12}")
    rows = [
        ("ready, 1 model (s)", "ready 1"),
        ("ready, 2 models (s)", "ready 2"),
        ("PSS, 1 model (MiB)", "pss 1"),
        ("PSS, 2 models (MiB)", "pss 2"),
    ]
    for title, key in rows:
        floor, fork, spawn = m[f"floor {key}"], m[f"seaway-fork {key}"], m[f"seaway-spawn {key}"]
        print(
            f"{title:<28}{floor:>10.2f}{fork:>10.2f}{spawn:>10.2f}{spawn / fork:>11.1f}x"
            f"{fork / floor:>11.1f}x"
        )
    for title, key in (("replica start (s)", "replica start"), ("hot-swap switch (s)", "swap")):
        fork, spawn = m[f"seaway-fork {key}"], m[f"seaway-spawn {key}"]
        print(f"{title:<28}{'':>10}{fork:>10.3f}{spawn:>10.3f}{spawn / fork:>11.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every figure [3]")
    parser.add_argument("--starts", type=int, default=5, help="replica starts per round [5]")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    args = parser.parse_args()
    if args.rounds < 1 or args.starts < 1:
        parser.error("--rounds and --starts must be positive")
    try:
        results = run(args)
    except serving.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
