"""`seaway serve` over REST, with real clients: tritonclient (binary tensors by default), httpx."""

from __future__ import annotations

import gzip
import json
import os
import signal
import threading
import time
from collections.abc import Callable

import httpx
import numpy as np
import pytest
import testmodels
import tritonclient.http as triton
from servers import Server, replica_pids
from sklearn.linear_model import LogisticRegression


def test_tritonclient_binary_and_json(serve: Callable[..., Server], fraud_model) -> None:
    model, frame = fraud_model
    server = serve("models:/fraud@production")
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=30)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("fraud")
    meta = client.get_model_metadata("fraud")
    assert [i["name"] for i in meta["inputs"]] == list(frame.columns)
    assert {o["name"] for o in meta["outputs"]} == {"predict", "predict_proba"}

    rows = frame.head(7)
    for binary in (True, False):
        inputs = []
        for column in rows.columns:
            tensor = triton.InferInput(column, [len(rows)], "FP64")
            tensor.set_data_from_numpy(rows[column].to_numpy(), binary_data=binary)
            inputs.append(tensor)
        outputs = [
            triton.InferRequestedOutput(n, binary_data=binary) for n in ("predict", "predict_proba")
        ]
        result = client.infer("fraud", inputs, outputs=outputs, request_id="r-1")
        np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(rows))
        np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(rows))
        response = result.get_response()
        assert response["model_version"] == "1" and response["id"] == "r-1"

    # one 2-D tensor with the columns in order works too, with no outputs named (predict alone)
    matrix = triton.InferInput("input", list(rows.shape), "FP64")
    matrix.set_data_from_numpy(rows.to_numpy())
    result = client.infer("fraud", [matrix])
    np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(rows))
    client.close()


def test_version_pinning_and_json_body(serve: Callable[..., Server], fraud_model, tabular) -> None:
    model, frame = fraud_model
    server = serve("models:/fraud/1")
    body = {
        "inputs": [
            {"name": c, "shape": [2], "datatype": "FP64", "data": frame[c].head(2).tolist()}
            for c in frame.columns
        ],
        "outputs": [{"name": "predict"}],
    }
    answer = httpx.post(f"{server.url}/v2/models/fraud/versions/1/infer", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["model_version"] == "1"
    assert [o["name"] for o in data["outputs"]] == ["predict"]
    assert data["outputs"][0]["data"] == model.predict(frame.head(2)).tolist()
    gone = httpx.post(f"{server.url}/v2/models/fraud/versions/7/infer", json=body, timeout=30)
    assert gone.status_code == 404 and "version '7'" in gone.json()["error"]
    zipped = httpx.post(
        f"{server.url}/v2/models/fraud/infer",
        content=gzip.compress(json.dumps(body).encode()),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        timeout=30,
    )
    assert (
        zipped.status_code == 200
        and zipped.json()["outputs"][0]["data"] == data["outputs"][0]["data"]
    )


def test_mlflow_invocations_json_and_csv(serve: Callable[..., Server], fraud_model) -> None:
    model, frame = fraud_model
    server = serve("models:/fraud@production")
    rows = frame.head(3)
    expected = model.predict(rows).tolist()
    assert httpx.get(f"{server.url}/ping", timeout=10).status_code == 200
    bodies = [
        {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}},
        {"dataframe_records": rows.to_dict("records")},
        {"instances": rows.to_dict("records")},
        {"inputs": {c: rows[c].tolist() for c in rows.columns}},
    ]
    for body in bodies:
        answer = httpx.post(f"{server.url}/invocations", json=body, timeout=30)
        assert answer.status_code == 200, (body, answer.text)
        assert answer.json() == {"predictions": expected}
        assert answer.headers["x-model-version"] == "1"
    csv = httpx.post(
        f"{server.url}/invocations",
        content=rows.to_csv(index=False),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert csv.status_code == 200 and csv.json() == {"predictions": expected}
    wrong = httpx.post(
        f"{server.url}/invocations",
        content=b"{}",
        headers={"Content-Type": "text/plain"},
        timeout=30,
    )
    assert wrong.status_code == 415


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"{not json", {}, 400, "JSON"),
        (
            b'{"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [1.0]}]}',
            {},
            400,
            "income",
        ),
        (
            b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP99", "data": [1, 2]}]}',
            {},
            400,
            "FP99",
        ),
        (
            b'{"inputs": [{"name": "age", "shape": [3], "datatype": "FP64", "data": [1.0]}]}',
            {},
            400,
            "age",
        ),
        (
            b'{"inputs": []}',
            {"Inference-Header-Content-Length": "999"},
            400,
            "Inference-Header-Content-Length",
        ),
        (b'{"inputs": []}', {"Content-Encoding": "br"}, 400, "br"),
    ],
)
def test_bad_requests_get_4xx_that_name_the_problem(
    serve: Callable[..., Server],
    fraud_model,
    body: bytes,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    server = serve("models:/fraud@production")
    answer = httpx.post(
        f"{server.url}/v2/models/fraud/infer", content=body, headers=headers, timeout=30
    )
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


def test_unknown_model_and_oversized_body(serve: Callable[..., Server], fraud_model) -> None:
    server = serve("models:/fraud@production", "--max-body-size", "2048")
    missing = httpx.post(f"{server.url}/v2/models/nope/infer", json={"inputs": []}, timeout=30)
    assert missing.status_code == 404 and "fraud" in missing.json()["error"]
    big = httpx.post(f"{server.url}/v2/models/fraud/infer", content=b" " * 5000, timeout=30)
    assert big.status_code == 413 and "2048" in big.json()["error"]
    assert (
        "/v2/models/{name}/infer"
        in httpx.get(f"{server.url}/openapi.json", timeout=10).json()["paths"]
    )
    wrong_method = httpx.request("DELETE", f"{server.url}/ping", timeout=10)
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["allow"]
    assert "DELETE" in wrong_method.json()["error"]
    unknown = httpx.get(f"{server.url}/v3/nothing", timeout=10)
    assert unknown.status_code == 404 and "/openapi.json" in unknown.json()["error"]


def test_a_killed_replica_loses_no_request(serve: Callable[..., Server], fraud_model) -> None:
    model, frame = fraud_model
    server = serve("models:/fraud@production", "--replicas", "2")
    body = {
        "inputs": [
            {
                "name": "input",
                "shape": [1, 4],
                "datatype": "FP64",
                "data": frame.head(1).to_numpy().ravel().tolist(),
            }
        ]
    }
    expected = model.predict(frame.head(1)).tolist()
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                answer = client.post(f"{server.url}/v2/models/fraud/infer", json=body)
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    assert answer.json()["outputs"][0]["data"] == expected

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    children = replica_pids(server.process.pid)
    assert len(children) >= 2
    os.kill(children[0], signal.SIGKILL)
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert statuses and set(statuses) == {200}, (
        f"{len(statuses)} requests, statuses {set(statuses)}"
    )
    assert children[0] not in replica_pids(server.process.pid)


def test_sigterm_finishes_in_flight_requests(serve: Callable[..., Server], tmp_path) -> None:
    folder = tmp_path / "slow"
    testmodels.save(testmodels.Slow(), folder)
    server = serve(str(folder), "--trusted")
    results: list[httpx.Response] = []
    body = {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
    thread = threading.Thread(
        target=lambda: results.append(
            httpx.post(f"{server.url}/v2/models/slow/infer", json=body, timeout=30)
        )
    )
    thread.start()

    def in_flight() -> bool:  # the model call is running on a replica (it takes 1.5 s)
        page = httpx.get(f"{server.url}/metrics", timeout=30).text
        return any(
            line.startswith("seaway_batches_in_flight{") and float(line.split()[-1]) >= 1
            for line in page.splitlines()
        )

    deadline = time.monotonic() + 60
    while not in_flight():
        assert time.monotonic() < deadline and thread.is_alive(), "the request never started"
        time.sleep(0.02)
    assert server.stop(signal.SIGTERM) == 0
    thread.join(30)
    assert results and results[0].status_code == 200
    assert results[0].json()["outputs"][0]["data"] == [3.0]


def test_a_model_that_cannot_load_stops_the_server_with_the_reason(
    serve: Callable[..., Server], tmp_path
) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    import seaway

    x = np.ones((4, 2))
    untrusted = make_pipeline(FunctionTransformer(_negate), LogisticRegression())
    untrusted.fit(np.vstack([x, -x]), [0, 0, 0, 0, 1, 1, 1, 1])
    folder = tmp_path / "untrusted"
    seaway.save_model(untrusted, folder, sample_input=x)
    server = serve(str(folder), wait_ready=False)
    assert server.process.wait(120) != 0
    assert "_negate" in server.output() and "trusted=True" in server.output()


def _negate(x):  # type: ignore[no-untyped-def]
    return -x
