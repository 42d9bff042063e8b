"""Readiness follows healthy capacity: live at once, ready only once every model is loaded and
warm, and not ready while a model has no healthy replica."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flagmodels
import grpc
import httpx
import numpy as np
import testmodels
import tritonclient.http as triton
from servers import Server

from seaway.protocol.grpc import inference_pb2 as pb
from seaway.protocol.grpc import inference_pb2_grpc as pb_grpc


def test_live_at_once_ready_only_after_loading(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    folder, gate = tmp_path / "slowload", tmp_path / "gate"
    gate.mkdir()
    testmodels.save(testmodels.SlowLoad(), folder)
    # the model loads only when the gate opens: the test decides when, not the machine's speed
    server = serve(str(folder), "--trusted", wait_ready=False, env={"SEAWAY_TEST_GATE": str(gate)})
    seen: list[tuple[int, int, int]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            live = httpx.get(f"{server.url}/v2/health/live", timeout=5).status_code
            ready = httpx.get(f"{server.url}/v2/health/ready", timeout=5).status_code
            ping = httpx.get(f"{server.url}/ping", timeout=5).status_code
        except httpx.TransportError:  # not listening yet
            assert server.process.poll() is None, server.output()
            time.sleep(0.1)
            continue
        seen.append((live, ready, ping))
        if ready == 200:
            break
        if (gate / "entered").exists():  # loading, and answering meanwhile: let it finish
            (gate / "open").touch()
        time.sleep(0.1)
    assert seen and seen[-1] == (200, 200, 200), seen[-5:]
    assert (200, 503, 503) in seen  # listening and live while the model was still loading
    assert all(live == 200 for live, _, _ in seen)
    body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}
    answer = httpx.post(f"{server.url}/v2/models/slowload/infer", json=body, timeout=30)
    assert answer.json()["outputs"][0]["data"] == [3.0]


def test_tritonclient_compressed_requests(serve: Callable[..., Server], fraud_model) -> None:
    model, frame = fraud_model
    server = serve("models:/fraud@production")
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=30)
    rows = frame  # 200 rows: answers over 4 KiB, which the server compresses too
    for algorithm in ("gzip", "deflate"):
        inputs = []
        for column in rows.columns:
            tensor = triton.InferInput(column, [len(rows)], "FP64")
            tensor.set_data_from_numpy(rows[column].to_numpy())
            inputs.append(tensor)
        result = client.infer(
            "fraud",
            inputs,
            outputs=[triton.InferRequestedOutput(n) for n in ("predict", "predict_proba")],
            request_compression_algorithm=algorithm,
            response_compression_algorithm=algorithm,
        )
        np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(rows))
        np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(rows))
    client.close()


def test_large_answers_are_compressed_when_the_client_accepts_it(
    serve: Callable[..., Server], fraud_model
) -> None:
    model, frame = fraud_model
    server = serve("models:/fraud@production")
    body = {
        "inputs": [
            {"name": c, "shape": [len(frame)], "datatype": "FP64", "data": frame[c].tolist()}
            for c in frame.columns
        ],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],  # an answer over 4 KiB
    }
    url = f"{server.url}/v2/models/fraud/infer"
    for encoding in ("gzip", "deflate"):
        answer = httpx.post(url, json=body, headers={"Accept-Encoding": encoding}, timeout=30)
        assert answer.headers["content-encoding"] == encoding
        outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}  # httpx inflates it
        assert outputs["predict"] == model.predict(frame).tolist()
    plain = httpx.post(url, json=body, headers={"Accept-Encoding": "identity"}, timeout=30)
    assert "content-encoding" not in plain.headers
    small = {"inputs": [dict(i, shape=[1], data=i["data"][:1]) for i in body["inputs"]]}
    tiny = httpx.post(url, json=small, headers={"Accept-Encoding": "gzip"}, timeout=30)
    assert "content-encoding" not in tiny.headers  # not worth it below 4 KiB


def test_raw_bytes_inputs_reach_a_model_that_takes_bytes(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    folder = tmp_path / "lengths"
    testmodels.save_byte_lengths(folder)  # sampled with raw bytes: the signature says binary
    server = serve(str(folder), "--trusted")  # warm-up runs the bytes example, so it loads
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=30)
    blobs = np.array([b"\x00\x01\x02\xff", b"", b"\xc3\x28 not utf-8"], dtype=object)
    tensor = triton.InferInput("input", [3], "BYTES")
    tensor.set_data_from_numpy(blobs)
    result = client.infer("lengths", [tensor])
    assert result.as_numpy("predict").tolist() == [4, 0, 12]
    client.close()


def _until(check: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    """Poll ``check`` until it returns something true (a bound for a broken server, not a
    timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_not_ready_while_no_replica_is_healthy_and_requests_fail_fast(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    flag = tmp_path / "refuse-to-load"
    folder = tmp_path / "flaky"
    flagmodels.save_fail_load_on_flag(folder)
    server = serve(str(folder), "--trusted", env={"SEAWAY_TEST_FLAG": str(flag)})
    url = server.url
    body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    assert stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready

    flag.touch()  # from now on the replica's restarts fail
    poison = {"inputs": [dict(body["inputs"][0], data=[-1, 0])]}
    crash = threading.Thread(  # kills the replica; its own answer does not matter here
        target=lambda: httpx.post(f"{url}/v2/models/flaky/infer", json=poison, timeout=60)
    )
    crash.start()

    def unready() -> httpx.Response | None:
        answer = httpx.get(f"{url}/v2/health/ready", timeout=30)
        return answer if answer.status_code == 503 else None

    answer = _until(unready, "readiness to turn false while the replica cannot restart")
    assert answer.json()["ready"] is False
    assert "no healthy replica" in answer.json()["reason"]
    model = httpx.get(f"{url}/v2/models/flaky/ready", timeout=30)
    assert model.status_code == 503 and "no healthy replica" in model.json()["reason"]
    assert httpx.get(f"{url}/v2/models/flaky/versions/1/ready", timeout=30).status_code == 503
    assert httpx.get(f"{url}/ping", timeout=30).status_code == 503
    assert not stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready
    assert not stub.ModelReady(pb.ModelReadyRequest(name="flaky"), timeout=30).ready
    [entry] = httpx.post(f"{url}/v2/repository/index", timeout=30).json()
    assert entry["state"] == "UNAVAILABLE" and "no healthy replica" in entry["reason"]
    # a request now is answered at once with the reason, not queued until its 30 s deadline
    refused = httpx.post(f"{url}/v2/models/flaky/infer", json=body, timeout=30)
    assert refused.status_code == 503, refused.text
    assert "no healthy replica" in refused.json()["error"]

    flag.unlink()  # the next restart succeeds
    _until(
        lambda: httpx.get(f"{url}/v2/health/ready", timeout=30).status_code == 200,
        "readiness to come back once a replica restarted",
    )
    assert stub.ModelReady(pb.ModelReadyRequest(name="flaky"), timeout=30).ready
    answer = httpx.post(f"{url}/v2/models/flaky/infer", json=body, timeout=30)
    assert answer.status_code == 200 and answer.json()["outputs"][0]["data"] == [3.0]
    channel.close()
    crash.join(60)


def test_requests_wait_for_an_ordinary_restart_instead_of_failing(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    """Not ready while the only replica restarts, but a request sent meanwhile is held for the
    restart and answered 200: only a restart that failed turns requests into a fast 503."""
    flag = tmp_path / "hold-the-load"
    folder = tmp_path / "slow"
    flagmodels.save_hold_load_on_flag(folder)
    server = serve(str(folder), "--trusted", env={"SEAWAY_TEST_FLAG": str(flag)})
    url = server.url
    body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}
    flag.touch()  # from now on a restart waits in load() until the flag goes
    poison = {"inputs": [dict(body["inputs"][0], data=[-1, 0])]}
    crashed = httpx.post(f"{url}/v2/models/slow/infer", json=poison, timeout=60)
    assert crashed.status_code == 400 and "crashed" in crashed.json()["error"]
    _until(
        lambda: httpx.get(f"{url}/v2/health/ready", timeout=30).status_code == 503,
        "readiness to turn false while the replica restarts",
    )
    answers: list[httpx.Response] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            httpx.post(f"{url}/v2/models/slow/infer", json=body, timeout=60)
        )
    )
    waiting.start()
    _until(lambda: _queued(url) >= 1 or answers, "the request to wait for the restarting replica")
    assert not answers, answers[0].text
    flag.unlink()  # the restart finishes
    waiting.join(60)
    [answer] = answers
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == [3.0]


def _queued(url: str) -> float:
    """Requests waiting or in flight for a replica, from the server's own metrics."""
    total = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith(("seaway_queue_depth", "seaway_batches_in_flight")):
            total += float(line.rsplit(" ", 1)[1])
    return total
