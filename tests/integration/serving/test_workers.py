"""`seaway serve --workers 2`: two front processes behind the same ports (seaway/serving/workers.py).

Every request goes over a fresh connection, so the kernel's SO_REUSEPORT hashing picks a worker for
each; the access log's ``worker`` field says which worker answered."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import tritonclient.grpc as triton_grpc
from servers import Server, free_port
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import seaway

ROW = [0.1, -0.2, 0.3, 0.4]
BODY = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}


def _register() -> LogisticRegression:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(80, 4))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(np.int64))
    with seaway.Registry.from_settings() as registry:
        seaway.log_model(model, "lr", sample_input=x[:5], registry=registry)
    return model


def _rest(server: Server, count: int) -> None:
    for _ in range(count):  # no client object: a new connection per request
        answer = httpx.post(f"{server.url}/v2/models/lr/infer", json=BODY, timeout=60)
        assert answer.status_code == 200, answer.text


def _grpc(server: Server, count: int) -> list[int]:
    answers = []
    for _ in range(count):  # a new channel (connection) per request
        client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
        try:
            tensor = triton_grpc.InferInput("input", [1, 4], "FP64")
            tensor.set_data_from_numpy(np.array([ROW]))
            result = client.infer("lr", [tensor], client_timeout=60)
            answers.append(int(result.as_numpy("predict")[0]))
        finally:
            client.close()
    return answers


def _log_lines(server: Server) -> list[dict[str, object]]:
    lines = []
    for line in server.output().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def _answered_by(server: Server, path: str) -> list[object]:
    return [
        line.get("worker")
        for line in _log_lines(server)
        if line.get("logger") == "seaway.access" and line.get("path") == path
    ]


def _requests_counted(server: Server) -> dict[str, float]:
    page = httpx.get(f"{server.url}/metrics", timeout=30).text
    counts: dict[str, float] = {}
    for line in page.splitlines():
        if line.startswith("seaway_requests_total{") and 'status="' in line:
            protocol = line.split('protocol="')[1].split('"')[0]
            counts[protocol] = counts.get(protocol, 0.0) + float(line.split()[-1])
    return counts


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _workers(server: Server) -> list[int]:
    """The supervisor's worker processes (its children that are not a replica zygote)."""
    pid = server.process.pid
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        children = [int(p) for p in handle.read().split()]
    found = []
    for child in children:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"zygote" not in cmdline:
            found.append(child)
    return found


def test_two_workers_share_the_ports_count_together_and_drain_on_sigterm(
    serve: Callable[..., Server],
) -> None:
    model = _register()
    server = serve("models:/lr/1", "--workers", "2", "--access-log", log_format="json")
    workers = _workers(server)
    assert len(workers) == 2
    expected = int(model.predict(np.array([ROW]))[0])

    _rest(server, 40)
    assert _grpc(server, 12) == [expected] * 12
    _wait_for(lambda: len(_answered_by(server, "/v2/models/lr/infer")) == 40, "access log")
    # 40 fresh connections hashed over two listeners all landing on one: 2 in 2**40
    assert set(_answered_by(server, "/v2/models/lr/infer")) == {0, 1}
    assert set(_answered_by(server, "/inference.GRPCInferenceService/ModelInfer")) <= {0, 1}

    # a scrape reaches one worker, which reports the requests of both
    _wait_for(lambda: _requests_counted(server) == {"rest": 40.0, "grpc": 12.0}, "metrics")

    assert server.stop(signal.SIGTERM) == 0
    stopped = [line.get("worker") for line in _log_lines(server) if line["message"] == "stopped"]
    assert sorted(w for w in stopped if w is not None) == [0, 1]
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists()


def test_a_killed_worker_is_replaced_and_the_counts_go_on(serve: Callable[..., Server]) -> None:
    _register()
    # --scheduler: the batch scheduler runs in worker 0 only, and the others start without it
    server = serve(
        "models:/lr/1", "--workers", "2", "--scheduler", "--access-log", log_format="json"
    )
    _rest(server, 10)
    _wait_for(lambda: _requests_counted(server).get("rest") == 10.0, "metrics before the kill")
    before = _workers(server)
    victim = before[0]
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        now = _workers(server)
        return len(now) == 2 and victim not in now

    _wait_for(replaced, "a new worker")

    def supervisor_said_ready() -> int:
        return sum(
            str(line["message"]).startswith("worker ") and " ready " in str(line["message"])
            for line in _log_lines(server)
        )

    _wait_for(lambda: supervisor_said_ready() == 3, "the new worker to be ready")
    _rest(server, 30)
    _wait_for(lambda: len(_answered_by(server, "/v2/models/lr/infer")) == 40, "access log")
    assert set(_answered_by(server, "/v2/models/lr/infer")[10:]) == {0, 1}
    # the killed worker's counts were kept: totals never go back
    _wait_for(lambda: _requests_counted(server).get("rest") == 40.0, "metrics after the restart")
    assert server.stop(signal.SIGTERM) == 0


def test_a_model_that_cannot_load_fails_the_start_once_with_the_reason(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    x = np.ones((4, 2))
    untrusted = make_pipeline(FunctionTransformer(_negate), LogisticRegression())
    untrusted.fit(np.vstack([x, -x]), [0, 0, 0, 0, 1, 1, 1, 1])
    folder = tmp_path / "untrusted"
    seaway.save_model(untrusted, folder, sample_input=x)
    server = serve(str(folder), "--workers", "2", wait_ready=False)
    assert server.process.wait(120) == 1
    output = server.output()
    assert "_negate" in output and "trusted=True" in output
    assert "Error:" in output  # the CLI's one line, as with one process
    # no restart loop: each worker was started once
    assert output.count("worker 0 started") == 1 and output.count("worker 1 started") == 1


def test_a_port_in_use_is_refused_not_shared(seaway_home: Path, tmp_path: Path) -> None:
    """SO_REUSEPORT would let two servers split one port's connections: the supervisor checks."""
    folder = tmp_path / "lr"
    x = np.random.default_rng(1).normal(size=(20, 4))
    seaway.save_model(LogisticRegression().fit(x, x[:, 0] > 0), folder, sample_input=x)
    with socket.socket() as taken:  # as another `seaway serve --workers` would hold it
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "seaway", "serve", str(folder), "--workers", "2"]
        done = subprocess.run(
            [*command, "--port", str(port), "--grpc-port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (--port)" in done.stderr
    assert "worker 0 started" not in done.stderr


def _negate(x):  # type: ignore[no-untyped-def]
    return -x
