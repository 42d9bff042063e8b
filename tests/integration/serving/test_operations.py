"""Running `seaway serve` in production: request ids, JSON and access logs, the config file,
backpressure, deadlines, and the model's own serving config. Real server processes throughout.

Most tests use a `SleepFor` model (tests/integration/serving/testmodels.py): it sleeps as many
seconds as the first value of a batch, so the request decides whether the model is fast or hangs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import testmodels
from servers import Server, free_port, replica_pids, start_server

import seaway
from seaway.protocol.grpc import inference_pb2 as pb
from seaway.protocol.grpc import inference_pb2_grpc as pb_grpc

MODEL = "sleepy"


def _body(first: float, second: float = 1.0) -> dict[str, Any]:
    """One row [first, second]: the model sleeps ``first`` seconds and answers their sum."""
    return {
        "inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [first, second]}]
    }


def _infer(
    server: Server,
    first: float,
    second: float = 1.0,
    *,
    model: str = MODEL,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v2/models/{model}/infer",
        json=_body(first, second),
        headers=headers,
        timeout=timeout,
    )


def _answer(response: httpx.Response) -> list[float]:
    return list(response.json()["outputs"][0]["data"])


def _grpc_request(first: float, second: float = 1.0, model: str = MODEL) -> Any:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input",
        datatype="FP64",
        shape=[1, 2],
        contents=pb.InferTensorContents(fp64_contents=[first, second]),
    )
    return pb.ModelInferRequest(model_name=model, inputs=[tensor])


def _grpc_answer(reply: Any) -> list[float]:
    """The one FP64 output, from raw_output_contents or from contents."""
    if reply.raw_output_contents:
        return np.frombuffer(reply.raw_output_contents[0], dtype="<f8").tolist()
    return list(reply.outputs[0].contents.fp64_contents)


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _serves_fast(server: Server) -> bool:
    try:
        answer = _infer(server, 0, 5, timeout=10)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200 and _answer(answer) == [5.0]


def _json_lines(server: Server) -> list[dict[str, Any]]:
    """The server's log lines that are JSON objects (all of them, with --log-format json)."""
    lines = []
    for text in server.output().splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            continue
    return [line for line in lines if isinstance(line, dict)]


def _concurrently(server: Server, firsts: list[float]) -> list[tuple[int, httpx.Response]]:
    """One request per value, all released at once; (index, response) pairs."""
    barrier = threading.Barrier(len(firsts))
    results: list[tuple[int, httpx.Response]] = []
    errors: list[BaseException] = []

    def send(index: int, first: float) -> None:
        try:
            with httpx.Client(timeout=60) as client:
                barrier.wait(30)
                answer = client.post(
                    f"{server.url}/v2/models/{MODEL}/infer", json=_body(first, float(index))
                )
            results.append((index, answer))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i, f)) for i, f in enumerate(firsts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    return sorted(results, key=lambda pair: pair[0])


def _batch_rows(server: Server, model: str = MODEL) -> tuple[float, float]:
    """(model calls with at most 1 row, all model calls) from /metrics' seaway_batch_rows."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    single = total = None
    for line in text.splitlines():
        if f'model="{model}"' not in line:
            continue
        if line.startswith("seaway_batch_rows_bucket") and 'le="1.0"' in line:
            single = float(line.rsplit(" ", 1)[1])
        elif line.startswith("seaway_batch_rows_count"):
            total = float(line.rsplit(" ", 1)[1])
    assert single is not None and total is not None, text
    return single, total


def _queue_depth(server: Server, model: str = MODEL) -> float:
    """Requests waiting for a batch now, from /metrics' seaway_queue_depth."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("seaway_queue_depth") and f'model="{model}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no queue depth for {model} in:\n{text}")


@contextmanager
def _held(server: Server, gate: Path) -> Iterator[None]:
    """The only replica held busy at the gate (testmodels.Gated) until the block ends: requests
    sent meanwhile queue, observably, whatever the machine's speed."""
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(_infer, server, -1, 0)
        _wait_for(lambda: (gate / "entered").exists() or held.done(), "the gate to be reached")
        assert not held.done(), held.result().text
        try:
            yield
        finally:
            (gate / "open").touch()
        answer = held.result()
    assert answer.status_code == 200 and _answer(answer) == [-1.0], answer.text


def _queued_burst(server: Server, gate: Path, count: int) -> list[tuple[int, httpx.Response]]:
    """``count`` requests (first value 0: no sleep) queued together behind the gate, then let go:
    the batcher sees them all waiting at once."""
    with ThreadPoolExecutor(1) as pool:
        with _held(server, gate):
            burst = pool.submit(_concurrently, server, [0.0] * count)
            _wait_for(lambda: _queue_depth(server) == count, f"{count} queued requests")
        return burst.result()


# ---- one server for request ids, logs and deadlines ---------------------------------------------


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`--timeout 1 --access-log --log-format json`, serving the SleepFor model from a folder."""
    root = tmp_path_factory.mktemp("ops")
    testmodels.save_sleep_for(root / MODEL)
    server = start_server(
        [str(root / MODEL), "--trusted", "--timeout", "1", "--access-log"],
        root / "home",
        root / "server.log",
        log_format="json",
    )
    yield server
    server.stop(signal.SIGKILL)


def test_a_client_request_id_is_echoed_and_a_missing_one_generated(ops: Server) -> None:
    given = _infer(ops, 0, 2, headers={"X-Request-ID": "req-ops-given-1"})
    assert given.status_code == 200 and _answer(given) == [2.0]
    assert given.headers["x-request-id"] == "req-ops-given-1"
    first, second = _infer(ops, 0, 2), _infer(ops, 0, 2)
    ids = [first.headers.get("x-request-id"), second.headers.get("x-request-id")]
    assert all(ids) and ids[0] != ids[1], ids
    # an id that cannot go into logs and headers as it is gets replaced
    odd = _infer(ops, 0, 2, headers={"X-Request-ID": "has spaces in it"})
    assert odd.headers["x-request-id"] not in ("", "has spaces in it")
    # errors carry it too
    missing = _infer(ops, 0, 2, model="nope", headers={"X-Request-ID": "req-ops-404"})
    assert missing.status_code == 404 and missing.headers["x-request-id"] == "req-ops-404"


def _server_lines_with(server: Server, rid: str) -> list[dict[str, Any]]:
    """Log lines that carry ``rid``, other than the access log's."""
    return [
        line
        for line in _json_lines(server)
        if line.get("request_id") == rid and line.get("logger") != "seaway.access"
    ]


def test_the_request_id_of_a_failing_request_is_in_the_json_logs(ops: Server) -> None:
    timed_out = _infer(ops, 3, headers={"X-Request-ID": "req-ops-hang-1"})
    assert timed_out.status_code == 504, timed_out.text
    assert timed_out.headers["x-request-id"] == "req-ops-hang-1"
    _wait_for(lambda: bool(_server_lines_with(ops, "req-ops-hang-1")), "a log line with the id")
    _wait_for(lambda: _serves_fast(ops), "the restarted replica")

    # a model bug found while encoding its answer: a 500 without details, logged with its id
    broken = _infer(ops, -1, headers={"X-Request-ID": "req-ops-500-1"})
    assert broken.status_code == 500, broken.text
    assert broken.headers["x-request-id"] == "req-ops-500-1"
    assert "Traceback" not in broken.text and "complex" not in broken.text
    _wait_for(lambda: bool(_server_lines_with(ops, "req-ops-500-1")), "the 500's log line")
    logged = _server_lines_with(ops, "req-ops-500-1")
    assert any(
        line["level"] == "error" and "Traceback" in line.get("exception", "") for line in logged
    )
    # --log-format json: every line the server wrote is one JSON object with the basics
    for text in ops.output().splitlines():
        line = json.loads(text)
        assert {"time", "level", "logger", "message"} <= set(line), text


def test_grpc_returns_the_request_id_in_trailing_metadata(ops: Server) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{ops.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        reply, call = stub.ModelInfer.with_call(
            _grpc_request(0, 4), metadata=(("x-request-id", "req-ops-grpc-1"),), timeout=30
        )
        assert _grpc_answer(reply) == [4.0]
        assert ("x-request-id", "req-ops-grpc-1") in tuple(call.trailing_metadata())

        _, call = stub.ModelInfer.with_call(_grpc_request(0, 4), timeout=30)
        generated = dict(call.trailing_metadata()).get("x-request-id")
        assert generated and generated != "req-ops-grpc-1"

        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer.with_call(
                _grpc_request(0, 4, model="nope"),
                metadata=(("x-request-id", "req-ops-grpc-404"),),
                timeout=30,
            )
    error: Any = info.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert ("x-request-id", "req-ops-grpc-404") in tuple(error.trailing_metadata())


def _access_lines(server: Server, rid: str) -> list[dict[str, Any]]:
    return [
        line
        for line in _json_lines(server)
        if line.get("logger") == "seaway.access" and line.get("request_id") == rid
    ]


def test_the_access_log_has_one_json_line_per_request(ops: Server) -> None:
    sent = {
        "acc-infer": _infer(ops, 0, 7, headers={"X-Request-ID": "acc-infer"}),
        "acc-bad": httpx.post(
            f"{ops.url}/v2/models/{MODEL}/infer",
            content=b"{not json",
            headers={"X-Request-ID": "acc-bad"},
            timeout=30,
        ),
        "acc-missing": _infer(ops, 0, model="nope", headers={"X-Request-ID": "acc-missing"}),
        "acc-live": httpx.get(
            f"{ops.url}/v2/health/live", headers={"X-Request-ID": "acc-live"}, timeout=30
        ),
        "acc-meta": httpx.get(
            f"{ops.url}/v2/models/{MODEL}", headers={"X-Request-ID": "acc-meta"}, timeout=30
        ),
    }
    assert [a.status_code for a in sent.values()] == [200, 400, 404, 200, 200]
    _wait_for(lambda: all(_access_lines(ops, rid) for rid in sent), "the access log lines")
    for rid, answer in sent.items():
        lines = _access_lines(ops, rid)
        assert len(lines) == 1, (rid, lines)
        line = lines[0]
        request = answer.request
        assert line["method"] == request.method and line["path"] == request.url.path, line
        assert line["status"] == answer.status_code, line
        assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0, line
    for rid in ("acc-infer", "acc-bad"):
        line = _access_lines(ops, rid)[0]
        assert (line["model"], line["model_version"]) == (MODEL, "1"), line
    assert "model" not in _access_lines(ops, "acc-missing")[0]  # unknown names are not logged


def test_the_access_log_covers_grpc_requests_too(ops: Server) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{ops.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        stub.ModelInfer.with_call(
            _grpc_request(0, 4), metadata=(("x-request-id", "acc-grpc-1"),), timeout=30
        )
    _wait_for(lambda: bool(_access_lines(ops, "acc-grpc-1")), "a gRPC access log line", 5)
    lines = _access_lines(ops, "acc-grpc-1")
    assert len(lines) == 1, lines
    assert (lines[0]["model"], lines[0]["model_version"]) == (MODEL, "1")
    assert "duration_ms" in lines[0] and "status" in lines[0]


def test_a_request_over_the_timeout_gets_504_and_the_server_recovers(ops: Server) -> None:
    pids = replica_pids(ops.process.pid)
    # the model would sleep 10 minutes and the client waits 30 s at most: an answer at all means
    # it came at the deadline, not when the model finished
    answer = _infer(ops, 600, timeout=30)
    assert answer.status_code == 504, answer.text
    assert "0.25 s (its call timeout)" in answer.json()["error"], answer.text  # 1 s / 4
    _wait_for(lambda: _serves_fast(ops), "the server to answer again")
    assert replica_pids(ops.process.pid) != pids  # the hung replica was replaced
    assert all(_serves_fast(ops) for _ in range(3))
    metrics = httpx.get(f"{ops.url}/metrics", timeout=10).text
    restarts = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("seaway_replica_restarts_total") and f'model="{MODEL}"' in line
    ]
    assert restarts and restarts[0] >= 1, metrics


def test_a_grpc_request_over_the_timeout_gets_deadline_exceeded(ops: Server) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{ops.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(_grpc_request(3), timeout=30)
        error: Any = info.value
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "0.25 s (its call timeout)" in error.details()  # --timeout 1, a quarter
        _wait_for(lambda: _serves_fast(ops), "the server to answer again")
        reply = stub.ModelInfer(_grpc_request(0, 2), timeout=30)
        assert _grpc_answer(reply) == [2.0]


# ---- backpressure --------------------------------------------------------------------------------


def test_a_full_queue_answers_429_with_retry_after_and_never_500(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    testmodels.save_gated(tmp_path / MODEL)
    gate = tmp_path / "gate"
    gate.mkdir()
    server = serve(
        str(tmp_path / MODEL),
        "--trusted",
        "--max-queue",
        "1",
        "--max-batch-size",
        "1",
        "--timeout",
        "120",  # a model call may take a quarter of it: the gate holds one that long at most
        env={"SEAWAY_TEST_GATE": str(gate)},
    )
    with ThreadPoolExecutor(1) as pool, _held(server, gate):  # one request runs,
        queued = pool.submit(_infer, server, 0, 7)  # one waits: the queue is full,
        _wait_for(lambda: _queue_depth(server) == 1, "the queued request")
        results = _concurrently(server, [0.0] * 6)  # so these are refused at once
    for index, answer in results:
        assert answer.status_code == 429, (index, answer.status_code, answer.text)
        after = answer.headers.get("retry-after", "")
        assert after.isdigit() and int(after) >= 1, answer.headers
        assert "retry" in answer.json()["error"].lower(), answer.text
    assert queued.result().status_code == 200 and _answer(queued.result()) == [7.0]
    assert _serves_fast(server)


# ---- the config file ------------------------------------------------------------------------------

SETTINGS: dict[str, Any] = {
    "trusted": True,
    "replicas": 2,
    "max_batch_size": 1,
    "timeout": 2,
    "access_log": True,
}
FLAGS = ["--trusted", "--replicas", "2", "--max-batch-size", "1", "--timeout", "2", "--access-log"]


def _write_config(path: Path, settings: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.mark.parametrize("how", ["config file", "flags"])
def test_a_config_file_sets_what_the_flags_set(
    serve: Callable[..., Server], tmp_path: Path, how: str
) -> None:
    testmodels.save_sleep_for(tmp_path / MODEL)
    if how == "flags":
        server = serve(str(tmp_path / MODEL), *FLAGS)
    else:
        config = _write_config(
            tmp_path / "serve.yaml", {"models": [str(tmp_path / MODEL)], **SETTINGS}
        )
        server = serve("--config", str(config))
    assert len(replica_pids(server.process.pid)) == 2  # replicas
    results = _concurrently(server, [0.2] * 6)
    assert [a.status_code for _, a in results] == [200] * 6
    assert [_answer(a) for _, a in results] == [[0.2 + i] for i in range(6)]
    single, total = _batch_rows(server)
    assert total >= 6 and single == total, (single, total)  # max_batch_size 1: never batched
    slow = _infer(server, 600)  # far past the deadline, however slow the machine
    assert slow.status_code == 504 and "0.5 s" in slow.json()["error"], slow.text  # timeout / 4
    assert "seaway.access" in server.output()  # access_log


def test_flags_override_the_config_file(serve: Callable[..., Server], tmp_path: Path) -> None:
    testmodels.save_gated(tmp_path / MODEL)
    gate = tmp_path / "gate"
    gate.mkdir()
    config = _write_config(
        tmp_path / "serve.yaml",
        {"models": [str(tmp_path / MODEL)], "port": free_port(), **SETTINGS},
    )
    server = serve(
        "--config",
        str(config),
        "--replicas",
        "1",
        "--timeout",
        "120",  # a model call may take a quarter of it: the gate holds one that long at most
        "--max-batch-size",
        "8",
        "--no-access-log",
        env={"SEAWAY_TEST_GATE": str(gate)},
    )  # and start_server's --port beats the file's port: the server answers there
    assert len(replica_pids(server.process.pid)) == 1
    slow = _infer(server, 2.5, 1)
    assert slow.status_code == 200 and _answer(slow) == [3.5], slow.text
    results = _queued_burst(server, gate, 6)
    assert [a.status_code for _, a in results] == [200] * 6
    assert [_answer(a) for _, a in results] == [[float(i)] for i in range(6)]
    single, total = _batch_rows(server)
    assert total - single == 1, (single, total)  # the six queued requests left in one call
    assert "seaway.access" not in server.output()


def _serve_and_exit(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEAWAY_HOME": str(home)}
    command = [sys.executable, "-m", "seaway", "serve", *args]
    command += ["--port", str(free_port()), "--grpc-port", str(free_port())]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("max_batch: 4\n", "max_batch"),  # unknown key
        ("replicas: 0\n", "replicas"),
        ("timeout: soon\n", "timeout"),
        ("max_queue: [1, 2]\n", "max_queue"),
        ("access_log: maybe\n", "access_log"),
    ],
)
def test_a_bad_config_file_exits_with_a_message_naming_the_key(
    tmp_path: Path, content: str, named: str
) -> None:
    testmodels.save_sleep_for(tmp_path / MODEL)
    config = tmp_path / "serve.yaml"
    config.write_text(f"models: [{json.dumps(str(tmp_path / MODEL))}]\ntrusted: true\n{content}")
    result = _serve_and_exit(tmp_path / "home", "--config", str(config))
    assert result.returncode != 0, result.stderr
    assert named in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_a_missing_config_file_exits_with_a_message_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = _serve_and_exit(tmp_path / "home", "--config", str(missing))
    assert result.returncode != 0
    assert "nowhere.yaml" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


# ---- the model's own serving config --------------------------------------------------------------


@pytest.fixture
def unbatched_model() -> str:
    """models:/sleepy/1, logged with serving={"max_batch_size": 1}: it asks not to be batched."""
    with seaway.Registry.from_settings() as registry:
        version = seaway.log_model(
            testmodels.Gated(),
            MODEL,
            sample_input=np.zeros((1, 2)),
            code_paths=[testmodels.__file__],
            serving={"max_batch_size": 1},
            registry=registry,
        )
    return f"models:/{MODEL}/{version.version}"


def test_the_models_serving_config_turns_batching_off(
    serve: Callable[..., Server], unbatched_model: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    server = serve(
        unbatched_model, "--trusted", "--timeout", "120", env={"SEAWAY_TEST_GATE": str(gate)}
    )
    results = _queued_burst(server, gate, 8)
    assert [a.status_code for _, a in results] == [200] * 8
    assert [_answer(a) for _, a in results] == [[float(i)] for i in range(8)]
    single, total = _batch_rows(server)
    assert total >= 9 and single == total, (single, total)  # 8 waited together, went alone


def test_a_flag_overrides_the_models_serving_config(
    serve: Callable[..., Server], unbatched_model: str, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    server = serve(
        unbatched_model,
        "--trusted",
        "--max-batch-size",
        "8",
        "--timeout",
        "120",
        env={"SEAWAY_TEST_GATE": str(gate)},
    )
    results = _queued_burst(server, gate, 8)
    assert [a.status_code for _, a in results] == [200] * 8
    assert [_answer(a) for _, a in results] == [[float(i)] for i in range(8)]
    single, total = _batch_rows(server)
    assert total - single == 1, (single, total)  # the eight queued requests left in one call
