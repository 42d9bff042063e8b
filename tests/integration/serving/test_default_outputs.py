"""What a request that names no outputs costs: ``predict`` alone, one model call, on a classifier.

The model (testmodels.CountingClassifier) writes one line per method called to a file, so each
request's model calls are counted, not inferred from timings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import testmodels
from servers import Server

from seaway.protocol.grpc import inference_pb2 as pb
from seaway.protocol.grpc import inference_pb2_grpc as pb_grpc

ROWS = [[1.0, 2.0], [-3.0, 1.0]]
FLAT = [value for row in ROWS for value in row]


class Calls:
    """The model methods called since the last ``new()``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = 0

    def new(self) -> list[str]:
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        fresh, self.seen = lines[self.seen :], len(lines)
        return fresh


def _serve_counting(serve: Callable[..., Server], tmp_path: Path) -> tuple[Server, Calls]:
    folder = tmp_path / "clf"
    testmodels.save_counting_classifier(folder)
    calls = Calls(tmp_path / "calls.log")
    server = serve(str(folder), "--trusted", env={"SEAWAY_TEST_CALLS": str(calls.path)})
    calls.new()  # the warm-up's calls
    return server, calls


def _infer(server: Server, outputs: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP64", "data": FLAT}]
    }
    if outputs is not None:
        body["outputs"] = [{"name": name} for name in outputs]
    answer = httpx.post(f"{server.url}/v2/models/clf/infer", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return {o["name"]: o["data"] for o in answer.json()["outputs"]}


def test_a_plain_request_to_a_classifier_costs_one_model_call_and_gets_predict(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    server, calls = _serve_counting(serve, tmp_path)
    model = testmodels.CountingClassifier()
    expected_proba = np.asarray(model.predict_proba(ROWS)).ravel().tolist()

    assert _infer(server) == {"predict": [1, 0]}
    assert calls.new() == ["predict"]

    # probabilities when asked for, alone or beside the labels
    assert _infer(server, ["predict_proba"]) == {"predict_proba": expected_proba}
    assert calls.new() == ["predict_proba"]
    both = _infer(server, ["predict", "predict_proba"])
    assert both == {"predict": [1, 0], "predict_proba": expected_proba}
    assert sorted(calls.new()) == ["predict", "predict_proba"]

    # the metadata still lists every output
    meta = httpx.get(f"{server.url}/v2/models/clf", timeout=30).json()
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]

    # gRPC: the same default
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input",
        datatype="FP64",
        shape=[2, 2],
        contents=pb.InferTensorContents(fp64_contents=FLAT),
    )
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        reply = stub.ModelInfer(pb.ModelInferRequest(model_name="clf", inputs=[tensor]), timeout=30)
    assert [o.name for o in reply.outputs] == ["predict"]
    assert calls.new() == ["predict"]

    # MLflow scoring answers predictions alone, as it always did
    scored = httpx.post(f"{server.url}/invocations", json={"inputs": ROWS}, timeout=30)
    assert scored.status_code == 200, scored.text
    assert scored.json() == {"predictions": [1, 0]}
    assert calls.new() == ["predict"]
