"""A matrix of malformed and valid-but-wrong gRPC messages against a real server, sent on a raw
channel (identity serializers, so any bytes go): each is INVALID_ARGUMENT (NOT_FOUND for unknown
models and versions), never INTERNAL or UNKNOWN, and its message stays short. The server still
answers a good request afterwards."""

from __future__ import annotations

import struct
import time
from collections import Counter

import grpc
import numpy as np
from servers import Server

from seaway.protocol.grpc import inference_pb2 as pb

INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
LONG = "n" * 200_000


def _infer(model: str = "fraud", **fields: object) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(model_name=model, **fields)  # type: ignore[arg-type]


def _fraud(columns: tuple[str, ...] = ("a", "b", "c")) -> pb.ModelInferRequest:
    """A good request to 'fraud': one FP64 column per feature, raw contents."""
    msg = _infer()
    for name in columns:
        msg.inputs.add(name=name, datatype="FP64", shape=[2])
        msg.raw_input_contents.append(np.array([0.5, -1.0]).tobytes())
    return msg


def _with(msg: pb.ModelInferRequest, edit: object) -> pb.ModelInferRequest:
    edit(msg)  # type: ignore[operator]
    return msg


def _wrong_cases() -> list[tuple[str, bytes, grpc.StatusCode]]:
    """(label, bytes on the wire, expected code) for ModelInfer."""
    cases: list[tuple[str, pb.ModelInferRequest | bytes, grpc.StatusCode]] = [
        ("garbage bytes", b"\xff\xff\xff\xff", INVALID),
        ("truncated message", _fraud().SerializeToString()[:-3], INVALID),
        ("a field tag of wire type 7", b"\x0f\x01", INVALID),
        ("invalid UTF-8 in a string field", b"\x0a\x03\xff\xfe\xfd", INVALID),
        ("length past the end", b"\x0a\x7fabc", INVALID),
        ("no inputs", _infer(), INVALID),
        ("unknown model", _with(_fraud(), lambda m: setattr(m, "model_name", "nope")), NOT_FOUND),
        ("unknown version", _with(_fraud(), lambda m: setattr(m, "model_version", "9")), NOT_FOUND),
        ("huge model name", _with(_fraud(), lambda m: setattr(m, "model_name", LONG)), NOT_FOUND),
        (
            "wrong datatype",
            _with(_fraud(), lambda m: setattr(m.inputs[0], "datatype", "FP8")),
            INVALID,
        ),
        ("BYTES where FP64 is due", _bytes_for_number(), INVALID),
        (
            "shape and data disagree",
            _with(_fraud(), lambda m: m.inputs[0].shape.append(3)),
            INVALID,
        ),
        (
            "negative dimension",
            _with(_fraud(), lambda m: m.inputs[0].shape.__setitem__(0, -1)),
            INVALID,
        ),
        ("70 dimensions", _with(_fraud(), lambda m: m.inputs[0].shape.extend([1] * 69)), INVALID),
        ("empty with a huge dimension", _empty_huge(), INVALID),
        ("raw contents short by a byte", _with(_fraud(), _short_raw), INVALID),
        (
            "more raw contents than inputs",
            _with(_fraud(), lambda m: m.raw_input_contents.append(b"")),
            INVALID,
        ),
        ("raw and typed contents mixed", _with(_fraud(), _typed_too), INVALID),
        ("typed contents of the wrong field", _typed_wrong_field(), INVALID),
        ("no data at all", _no_data(), INVALID),
        ("duplicate input", _with(_fraud(), _duplicate), INVALID),
        (
            "input without a name",
            _with(_fraud(), lambda m: setattr(m.inputs[0], "name", "")),
            INVALID,
        ),
        ("huge input name", _with(_fraud(), lambda m: setattr(m.inputs[0], "name", LONG)), INVALID),
        ("missing column", _fraud(("a", "b")), INVALID),
        ("100k unknown inputs", _many_inputs(), INVALID),
        ("100k unknown outputs", _many_outputs(), INVALID),
        (
            "parameter without a value",
            _with(_fraud(), lambda m: m.parameters["p"].Clear()),
            INVALID,
        ),
        (
            "input parameter without a value",
            _with(_fraud(), lambda m: m.inputs[0].parameters["p"].Clear()),
            INVALID,
        ),
        ("output parameter without a value", _with(_fraud(), _output_parameter), INVALID),
        ("BOOL raw bytes other than 0 and 1", _bool_bytes(), INVALID),
        ("BYTES lengths past the end", _bytes_lengths(), INVALID),
        ("echo: text that is not UTF-8", _echo_not_utf8(), INVALID),
    ]
    return [
        (label, msg if isinstance(msg, bytes) else msg.SerializeToString(), code)
        for label, msg, code in cases
    ]


def _bytes_for_number() -> pb.ModelInferRequest:
    msg = _fraud()
    msg.inputs[0].datatype = "BYTES"
    msg.raw_input_contents[0] = struct.pack("<I", 1) + b"x" + struct.pack("<I", 1) + b"y"
    return msg


def _empty_huge() -> pb.ModelInferRequest:
    msg = _fraud()
    del msg.inputs[0].shape[:]
    msg.inputs[0].shape.extend([0, 2**62])
    msg.raw_input_contents[0] = b""
    return msg


def _short_raw(msg: pb.ModelInferRequest) -> None:
    msg.raw_input_contents[0] = msg.raw_input_contents[0][:-1]


def _typed_too(msg: pb.ModelInferRequest) -> None:
    msg.inputs[0].contents.fp64_contents.extend([1.0, 2.0])


def _typed_wrong_field() -> pb.ModelInferRequest:
    msg = _infer()
    for name in ("a", "b", "c"):
        msg.inputs.add(name=name, datatype="FP64", shape=[1]).contents.int_contents.append(1)
    return msg


def _no_data() -> pb.ModelInferRequest:
    msg = _infer()
    for name in ("a", "b", "c"):
        msg.inputs.add(name=name, datatype="FP64", shape=[1])
    return msg


def _duplicate(msg: pb.ModelInferRequest) -> None:
    msg.inputs.add(name="a", datatype="FP64", shape=[2])
    msg.raw_input_contents.append(np.zeros(2).tobytes())


def _many_inputs() -> pb.ModelInferRequest:
    msg = _infer()
    for index in range(100_000):
        msg.inputs.add(name=f"x{index}", datatype="FP64", shape=[1])
        msg.raw_input_contents.append(b"\0" * 8)
    return msg


def _many_outputs() -> pb.ModelInferRequest:
    msg = _fraud()
    for index in range(100_000):
        msg.outputs.add(name=f"y{index}")
    return msg


def _output_parameter(msg: pb.ModelInferRequest) -> None:
    msg.outputs.add(name="predict").parameters["p"].Clear()


def _bool_bytes() -> pb.ModelInferRequest:
    msg = _infer("echo")
    msg.inputs.add(name="bool", datatype="BOOL", shape=[1, 3])
    msg.raw_input_contents.append(b"\x00\x02\x01")
    return msg


def _bytes_lengths() -> pb.ModelInferRequest:
    msg = _infer("echo")
    msg.inputs.add(name="text", datatype="BYTES", shape=[1, 3])
    msg.raw_input_contents.append(struct.pack("<I", 1000) + b"abc")
    return msg


def _echo_not_utf8() -> pb.ModelInferRequest:
    msg = _infer("echo")
    msg.inputs.add(name="text", datatype="BYTES", shape=[1, 1])
    msg.raw_input_contents.append(struct.pack("<I", 2) + b"\xff\xfe")
    return msg


def _raw_call(channel: grpc.Channel, rpc: str) -> grpc.UnaryUnaryMultiCallable:
    return channel.unary_unary(
        f"/inference.GRPCInferenceService/{rpc}",
        request_serializer=None,
        response_deserializer=None,
    )


def test_malformed_and_wrong_messages_are_invalid_argument(server: Server) -> None:
    started = time.monotonic()
    answered: Counter[str] = Counter()
    wrong: list[str] = []
    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}", options=options) as channel:
        infer = _raw_call(channel, "ModelInfer")
        cases = _wrong_cases()
        for rpc in ("ModelReady", "ModelMetadata", "RepositoryIndex", "RepositoryModelLoad"):
            cases.append((f"{rpc}: garbage bytes", b"\xff\xff\xff\xff", INVALID))
        cases.append(
            (
                "ModelMetadata: unknown model",
                pb.ModelMetadataRequest(name="nope").SerializeToString(),
                NOT_FOUND,
            )
        )
        for label, payload, expected in cases:
            call = (
                infer
                if ":" not in label or label.startswith("echo")
                else _raw_call(channel, label.split(":")[0])
            )
            try:
                call(payload, timeout=60)
                code, details = grpc.StatusCode.OK, ""
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details() or ""
            answered[code.name] += 1
            if code is not expected or len(details) > 1024:
                wrong.append(f"{label}: {code.name} ({len(details)} chars) {details[:300]}")
        good = infer(_fraud().SerializeToString(), timeout=60)
        answered["OK (good request after)"] += 1
    print(
        f"\ngrpc malformed: {len(cases)} cases sent in {time.monotonic() - started:.1f} s; "
        f"answered by status: {dict(answered)}"
    )
    assert not wrong, "\n".join(wrong)
    assert pb.ModelInferResponse.FromString(good).outputs[0].name == "predict"
