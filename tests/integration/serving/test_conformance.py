"""One conformance suite, run over both transports with the real clients: tritonclient.http
(binary tensors by default) and tritonclient.grpc (raw contents). Both must answer alike."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import testmodels
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from servers import Server, start_server
from sklearn.linear_model import LogisticRegression
from tritonclient.utils import InferenceServerException

import seaway

STATUS = {
    "http": {"invalid": "400", "not_found": "404"},
    "grpc": {"invalid": "StatusCode.INVALID_ARGUMENT", "not_found": "StatusCode.NOT_FOUND"},
}
TRITON_DTYPES = {
    "bool": "BOOL",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "fp16": "FP16",
    "fp32": "FP32",
    "fp64": "FP64",
    "text": "BYTES",
}


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, LogisticRegression, pd.DataFrame]]:
    """One server for the whole suite: 'fraud' (a scikit-learn dataframe model, from the
    registry) and 'echo' (a Python model over every datatype, from a folder)."""
    root = tmp_path_factory.mktemp("conformance")
    home = root / "home"
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(120, 4)), columns=["age", "income", "score", "tenure"])
    target = (frame["age"] > 0).astype(np.int64).to_numpy()
    model = LogisticRegression().fit(frame, target)
    with seaway.Registry.from_settings(seaway.Settings.resolve(home=home)) as registry:
        seaway.log_model(model, "fraud", sample_input=frame.head(10), registry=registry)
    testmodels.save_echo(root / "echo")
    server = start_server(
        ["models:/fraud/latest", str(root / "echo"), "--trusted"], home, root / "server.log"
    )
    yield server, model, frame
    server.stop(signal.SIGKILL)


@pytest.fixture(params=["http", "grpc"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(served: tuple[Server, Any, Any], transport: str) -> Iterator[Any]:
    server = served[0]
    if transport == "http":
        client: Any = triton_http.InferenceServerClient(
            f"127.0.0.1:{server.port}", network_timeout=30, connection_timeout=30
        )
    else:
        client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    yield client
    client.close()


def _module(transport: str) -> Any:
    return triton_http if transport == "http" else triton_grpc


def _metadata(client: Any, transport: str, name: str) -> dict[str, Any]:
    if transport == "http":
        return dict(client.get_model_metadata(name))
    return dict(client.get_model_metadata(name, as_json=True))


def _columns(transport: str, rows: pd.DataFrame, datatype: str = "FP64") -> list[Any]:
    inputs = []
    for column in rows.columns:
        tensor = _module(transport).InferInput(column, [len(rows)], datatype)
        tensor.set_data_from_numpy(rows[column].to_numpy())
        inputs.append(tensor)
    return inputs


def test_health_and_server_metadata(client: Any, transport: str) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("fraud") and client.is_model_ready("echo")
    meta = client.get_server_metadata() if transport == "http" else None
    if transport == "grpc":
        meta = client.get_server_metadata(as_json=True)
    assert meta["name"] == "seaway" and "model_repository" in meta["extensions"]


def test_model_metadata(client: Any, transport: str) -> None:
    meta = _metadata(client, transport, "fraud")
    assert meta["name"] == "fraud" and meta["versions"] == ["1"]
    assert [(i["name"], i["datatype"]) for i in meta["inputs"]] == [
        (c, "FP64") for c in ("age", "income", "score", "tenure")
    ]
    assert {o["name"] for o in meta["outputs"]} == {"predict", "predict_proba"}
    echo = _metadata(client, transport, "echo")
    assert {i["name"]: i["datatype"] for i in echo["inputs"]} == {
        name: TRITON_DTYPES[name] for name in testmodels.ECHO_SAMPLE
    }


def test_infer_matches_the_model(client: Any, transport: str, served: Any) -> None:
    _, model, frame = served
    rows = frame.head(9)
    result = client.infer("fraud", _columns(transport, rows), request_id="req-7")
    np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(rows))
    assert result.as_numpy("predict_proba") is None  # no outputs named: predict alone
    response = result.get_response(as_json=True) if transport == "grpc" else result.get_response()
    assert response["model_name"] == "fraud"
    assert response["model_version"] == "1" and response["id"] == "req-7"
    wanted = [_module(transport).InferRequestedOutput(n) for n in ("predict", "predict_proba")]
    both = client.infer("fraud", _columns(transport, rows), outputs=wanted)
    np.testing.assert_array_equal(both.as_numpy("predict"), model.predict(rows))
    np.testing.assert_allclose(both.as_numpy("predict_proba"), model.predict_proba(rows))


def test_requested_outputs_and_version_pinning(client: Any, transport: str, served: Any) -> None:
    _, model, frame = served
    rows = frame.tail(4)
    wanted = [_module(transport).InferRequestedOutput("predict_proba")]
    result = client.infer("fraud", _columns(transport, rows), model_version="1", outputs=wanted)
    np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(rows))
    assert result.as_numpy("predict") is None


def test_every_datatype_round_trips(client: Any, transport: str) -> None:
    inputs = []
    for name, array in testmodels.ECHO_SAMPLE.items():
        tensor = _module(transport).InferInput(name, list(array.shape), TRITON_DTYPES[name])
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    result = client.infer("echo", inputs)
    for name, array in testmodels.ECHO_SAMPLE.items():
        got = result.as_numpy(name)
        if name == "text":  # BYTES come back as bytes
            got = np.vectorize(lambda b: b.decode())(got).astype(object)
        np.testing.assert_array_equal(got, array, err_msg=name)
        assert got.dtype == array.dtype, name


def _error(call: Any) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value


def test_unknown_model_and_version(client: Any, transport: str, served: Any) -> None:
    rows = served[2].head(2)
    missing = _error(lambda: client.infer("nope", _columns(transport, rows)))
    assert missing.status() == STATUS[transport]["not_found"]
    assert "'nope'" in missing.message() and "fraud" in missing.message()
    version = _error(lambda: client.infer("fraud", _columns(transport, rows), model_version="9"))
    assert version.status() == STATUS[transport]["not_found"] and "'9'" in version.message()


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("missing input", "income"),
        ("wrong datatype", "income"),
        ("wrong shape", "int8"),
        ("unknown output", "nope"),
    ],
)
def test_bad_requests_name_the_problem(
    client: Any, transport: str, served: Any, case: str, fragment: str
) -> None:
    module = _module(transport)
    rows = served[2].head(3)
    model = "fraud"
    outputs = None
    inputs = _columns(transport, rows)
    if case == "missing input":
        inputs = _columns(transport, rows.drop(columns=["income"]))
    elif case == "wrong datatype":
        inputs[1] = module.InferInput("income", [3], "BYTES")
        inputs[1].set_data_from_numpy(np.array([b"a", b"b", b"c"], dtype=object))
    elif case == "wrong shape":
        model = "echo"
        inputs = []
        for name, array in testmodels.ECHO_SAMPLE.items():
            if name == "int8":
                array = np.zeros((2, 4), dtype=np.int8)
            tensor = module.InferInput(name, list(array.shape), TRITON_DTYPES[name])
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
    else:
        outputs = [module.InferRequestedOutput("nope")]
    error = _error(lambda: client.infer(model, inputs, outputs=outputs))
    assert error.status() == STATUS[transport]["invalid"], error
    assert fragment in error.message()


def test_metrics_count_both_transports(served: Any) -> None:
    import httpx

    server = served[0]
    text = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
    lines = [line for line in text.splitlines() if line.startswith("seaway_requests_total")]
    assert any('protocol="rest"' in line and 'model="fraud"' in line for line in lines), lines
    assert any('protocol="grpc"' in line and 'status="OK"' in line for line in lines), lines
    # unknown model names never become label values
    assert not any('model="nope"' in line for line in lines)
    assert "seaway_batch_rows_bucket" in text and "seaway_replicas_healthy" in text
    assert 'seaway_model_load_seconds{model="fraud",version="1"}' in text
