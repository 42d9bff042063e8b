"""End to end over both transports: a request naming 100,000 inputs, or one name a megabyte long,
gets a short error (it was 988 KB, and broke gRPC clients), a 400 and INVALID_ARGUMENT alike."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import httpx
import numpy as np
import orjson
import pytest
from servers import Server

from seaway.protocol.grpc import inference_pb2 as pb
from seaway.protocol.grpc import inference_pb2_grpc as pb_grpc

MANY = 100_000


def _names() -> list[str]:
    return [f"feature_{index:06d}" for index in range(MANY)]


def test_errors_quoting_many_or_long_names_are_short(
    serve: Callable[..., Server], fraud_model: object
) -> None:
    server = serve("models:/fraud/1")
    url = f"{server.url}/v2/models/fraud/infer"
    inputs = [{"name": name, "datatype": "FP64", "shape": [1], "data": [1.0]} for name in _names()]
    answer = httpx.post(url, content=orjson.dumps({"inputs": inputs}), timeout=120)
    assert answer.status_code == 400
    assert len(answer.content) < 1100, len(answer.content)
    assert f"and {MANY - 5} more" in answer.json()["error"]
    long_name = [{"name": "n" * 1_000_000, "datatype": "FP64", "shape": [2], "data": [1.0]}]
    answer = httpx.post(url, content=orjson.dumps({"inputs": long_name}), timeout=120)
    assert answer.status_code == 400 and len(answer.content) < 400

    request = pb.ModelInferRequest(model_name="fraud")
    for name in _names():
        request.inputs.add(name=name, datatype="FP64", shape=[1])
        request.raw_input_contents.append(np.ones(1).tobytes())
    options = [("grpc.max_send_message_length", -1)]
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}", options=options) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request, timeout=120)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT, caught.value
        details = caught.value.details() or ""
        assert len(details) < 1024 and f"and {MANY - 5} more" in details
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(pb.ModelInferRequest(model_name="fraud"), timeout=60)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # no inputs: was INTERNAL
