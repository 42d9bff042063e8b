"""The gRPC codec against the real client: requests are built by tritonclient and serialized with
Triton's own generated modules, responses are read back with tritonclient's ``InferResult``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from google.protobuf import descriptor_pb2
from tritonclient.grpc import _utils as triton_utils
from tritonclient.grpc import service_pb2 as triton_pb2
from tritonclient.utils import InferenceServerException

from seaway.errors import InvalidInputError, PredictionError
from seaway.protocol.grpc import inference_pb2 as pb
from seaway.protocol.grpc import inference_pb2_grpc as pb_grpc
from seaway.protocol.grpc_codec import (
    decode_infer_request,
    decode_parameters,
    encode_infer_response,
    encode_model_metadata,
    encode_parameters,
)
from seaway.protocol.types import InferResponse, ModelMetadata, Tensor, TensorMetadata
from seaway.types import Datatype

SAMPLES: dict[str, np.ndarray[Any, Any]] = {
    "BOOL": np.array([[True, False, True], [False, False, True]]),
    "UINT8": np.array([[0, 1, 255], [7, 8, 9]], dtype=np.uint8),
    "UINT16": np.array([0, 65535, 3], dtype=np.uint16),
    "UINT32": np.array([0, 2**32 - 1], dtype=np.uint32),
    "UINT64": np.array([0, 2**64 - 1], dtype=np.uint64),
    "INT8": np.array([-128, 0, 127], dtype=np.int8),
    "INT16": np.array([[-32768], [32767]], dtype=np.int16),
    "INT32": np.array([-(2**31), 0, 2**31 - 1], dtype=np.int32),
    "INT64": np.array([-(2**63), 2**63 - 1], dtype=np.int64),
    "FP16": np.array([[0.5, -1.25], [65504.0, np.inf]], dtype=np.float16),
    "FP32": np.arange(12, dtype=np.float32).reshape(2, 3, 2) / 3,
    "FP64": np.array([np.pi, -0.0, 1e300]),
    "BYTES": np.array([[b"a", b""], ["é".encode(), b"\x00\xff"]], dtype=object),
}


def triton_request(
    arrays: dict[str, tuple[str, np.ndarray[Any, Any]]],
    *,
    outputs: list[triton.InferRequestedOutput] | None = None,
    model_version: str = "",
    request_id: str = "",
    sequence_id: int | str = 0,
    priority: int = 0,
    timeout: int | None = None,
    parameters: dict[str, Any] | None = None,
) -> triton_pb2.ModelInferRequest:
    """A request exactly as ``InferenceServerClient.infer`` builds it."""
    inputs = []
    for name, (datatype, array) in arrays.items():
        infer_input = triton.InferInput(name, list(array.shape), datatype)
        infer_input.set_data_from_numpy(array)
        inputs.append(infer_input)
    return triton_utils._get_inference_request(
        "model", inputs, model_version, request_id, outputs, sequence_id, False, False,
        priority, timeout, parameters,
    )  # fmt: skip


def over_the_wire(msg: Any) -> pb.ModelInferRequest:
    return pb.ModelInferRequest.FromString(msg.SerializeToString())


def read_with_triton(msg: pb.ModelInferResponse) -> triton.InferResult:
    return triton.InferResult(triton_pb2.ModelInferResponse.FromString(msg.SerializeToString()))


# --- the proto file -------------------------------------------------------------------------------


def test_messages_and_methods_match_triton_exactly() -> None:
    def message_proto(d: Any) -> descriptor_pb2.DescriptorProto:
        proto = descriptor_pb2.DescriptorProto()
        d.CopyToProto(proto)
        return proto

    def service_proto(d: Any) -> descriptor_pb2.ServiceDescriptorProto:
        proto = descriptor_pb2.ServiceDescriptorProto()
        d.CopyToProto(proto)
        return proto

    theirs = triton_pb2.DESCRIPTOR
    assert pb.DESCRIPTOR.package == theirs.package == "inference"
    for name, ours in pb.DESCRIPTOR.message_types_by_name.items():
        assert message_proto(ours) == message_proto(theirs.message_types_by_name[name]), name
    service = service_proto(pb.DESCRIPTOR.services_by_name["GRPCInferenceService"])
    triton_methods = {
        m.name: m for m in service_proto(theirs.services_by_name["GRPCInferenceService"]).method
    }
    assert [m.name for m in service.method] == [
        "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata",
        "ModelInfer", "RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload",
    ]  # fmt: skip
    for method in service.method:
        assert method == triton_methods[method.name]


@pytest.mark.parametrize(
    "imports",
    [
        "import tritonclient.grpc; from seaway.protocol.grpc import inference_pb2_grpc",
        "from seaway.protocol.grpc import inference_pb2_grpc; import tritonclient.grpc",
    ],
)
def test_our_stubs_and_tritonclient_share_a_process(imports: str) -> None:
    # A fresh interpreter: in this one the import order is already fixed.
    code = (
        imports
        + "; print(inference_pb2_grpc.inference__pb2.ModelInferRequest.DESCRIPTOR.full_name)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "inference.ModelInferRequest"


# --- requests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_decodes_every_datatype_from_tritonclient(datatype: str) -> None:
    array = SAMPLES[datatype]
    request = decode_infer_request(over_the_wire(triton_request({"x": (datatype, array)})))
    (tensor,) = request.inputs
    assert tensor.name == "x"
    assert tensor.datatype is Datatype(datatype)
    assert tensor.shape == array.shape
    assert tensor.data.shape == array.shape
    assert tensor.data.dtype == Datatype(datatype).numpy_dtype
    np.testing.assert_array_equal(tensor.data, array)


def test_decodes_several_inputs_in_order_with_strings_and_empty_tensors() -> None:
    strings = np.array(["héllo", "", "wörld"], dtype=np.object_)
    fixed_bytes = np.array([b"ab", b"cd"], dtype=np.bytes_)  # equal lengths stay 1-D
    msg = triton_request(
        {
            "s": ("BYTES", strings),
            "f": ("BYTES", fixed_bytes),
            "e": ("FP32", np.zeros((0, 3), dtype=np.float32)),
            "eb": ("BYTES", np.zeros((2, 0), dtype=object)),
        }
    )
    s, f, e, eb = decode_infer_request(over_the_wire(msg)).inputs
    assert s.data.tolist() == [b"h\xc3\xa9llo", b"", b"w\xc3\xb6rld"]
    assert f.data.shape == (2,)
    assert f.data.tolist() == [b"ab", b"cd"]
    assert e.data.shape == (0, 3)
    assert e.data.dtype == np.float32
    assert eb.data.shape == (2, 0)


def test_decodes_request_fields_parameters_and_requested_outputs() -> None:
    msg = triton_request(
        {"x": ("INT64", np.array([1, 2]))},
        outputs=[triton.InferRequestedOutput("y", class_count=2), triton.InferRequestedOutput("z")],
        model_version="3",
        request_id="req-1",
        sequence_id="session-7",
        priority=2**64 - 1,
        timeout=5000,
        parameters={"flag": True, "n": -4, "ratio": 0.25, "label": "cat"},
    )
    request = decode_infer_request(over_the_wire(msg))
    assert request.model_name == "model"
    assert request.model_version == "3"
    assert request.id == "req-1"
    assert dict(request.parameters) == {
        "sequence_id": "session-7",
        "sequence_start": False,
        "sequence_end": False,
        "priority": 2**64 - 1,
        "timeout": 5000,
        "flag": True,
        "n": -4,
        "ratio": 0.25,
        "label": "cat",
    }
    assert [o.name for o in request.outputs] == ["y", "z"]
    assert dict(request.outputs[0].parameters) == {"classification": 2}
    assert request.outputs[0].binary is None
    assert request.binary_output is False


def test_empty_version_and_id_mean_unset() -> None:
    request = decode_infer_request(over_the_wire(triton_request({"x": ("FP32", SAMPLES["FP32"])})))
    assert request.model_version is None
    assert request.id is None
    assert request.outputs == ()
    assert dict(request.parameters) == {}


def test_raw_inputs_are_zero_copy_read_only_views() -> None:
    request = decode_infer_request(over_the_wire(triton_request({"x": ("FP32", SAMPLES["FP32"])})))
    assert not request.inputs[0].data.flags.writeable


def typed_request(datatype: str, shape: list[int], **contents: Any) -> pb.ModelInferRequest:
    msg = pb.ModelInferRequest(model_name="model")
    msg.inputs.add(
        name="x", datatype=datatype, shape=shape, contents=pb.InferTensorContents(**contents)
    )
    return msg


@pytest.mark.parametrize(
    ("datatype", "field", "values"),
    [
        ("BOOL", "bool_contents", [True, False]),
        ("INT8", "int_contents", [-128, 127]),
        ("INT16", "int_contents", [-32768, 32767]),
        ("INT32", "int_contents", [-(2**31), 2**31 - 1]),
        ("INT64", "int64_contents", [-(2**63), 2**63 - 1]),
        ("UINT8", "uint_contents", [0, 255]),
        ("UINT16", "uint_contents", [0, 65535]),
        ("UINT32", "uint_contents", [0, 2**32 - 1]),
        ("UINT64", "uint64_contents", [0, 2**64 - 1]),
        ("FP32", "fp32_contents", [0.5, -2.0]),
        ("FP64", "fp64_contents", [np.pi, 1e300]),
        ("BYTES", "bytes_contents", [b"ab", b"cd"]),
    ],
)
def test_decodes_typed_contents(datatype: str, field: str, values: list[Any]) -> None:
    msg = typed_request(datatype, [2, 1], **{field: values})
    (tensor,) = decode_infer_request(over_the_wire(msg)).inputs
    assert tensor.data.shape == (2, 1)
    assert tensor.data.dtype == Datatype(datatype).numpy_dtype
    assert tensor.data.ravel().tolist() == values


def test_typed_contents_with_empty_shape_need_no_data() -> None:
    (tensor,) = decode_infer_request(typed_request("FP32", [0, 4])).inputs
    assert tensor.data.shape == (0, 4)
    assert tensor.data.dtype == np.float32


# --- request errors -------------------------------------------------------------------------------


def test_raw_count_must_match_inputs() -> None:
    msg = over_the_wire(
        triton_request({"a": ("FP32", SAMPLES["FP32"]), "b": ("INT8", SAMPLES["INT8"])})
    )
    del msg.raw_input_contents[1]
    with pytest.raises(
        InvalidInputError, match="raw_input_contents has 1 entries but the request has 2 inputs"
    ):
        decode_infer_request(msg)


def test_mixing_raw_and_typed_is_an_error() -> None:
    msg = over_the_wire(triton_request({"a": ("INT32", SAMPLES["INT32"])}))
    msg.inputs[0].contents.int_contents.extend([1, 2, 3])
    with pytest.raises(
        InvalidInputError, match="input 'a' sets contents.int_contents while the request uses raw"
    ):
        decode_infer_request(msg)


@pytest.mark.parametrize("shape", [[2, 2], [4]])
def test_raw_byte_size_must_match_shape(shape: list[int]) -> None:
    msg = over_the_wire(triton_request({"a": ("FP32", np.ones(3, dtype=np.float32))}))
    msg.inputs[0].ClearField("shape")
    msg.inputs[0].shape.extend(shape)
    with pytest.raises(
        InvalidInputError,
        match=r"input 'a' has 12 bytes of raw data, but shape .* of FP32 needs 16",
    ):
        decode_infer_request(msg)


def test_typed_element_count_must_match_shape() -> None:
    with pytest.raises(
        InvalidInputError,
        match=r"input 'x' has 3 elements in contents.fp32_contents, but its shape \[2, 2\] needs 4",
    ):
        decode_infer_request(typed_request("FP32", [2, 2], fp32_contents=[1.0, 2.0, 3.0]))


@pytest.mark.parametrize("datatype", ["BF16", "float32", "", "STRING"])
def test_unknown_datatype_names_tensor_and_choices(datatype: str) -> None:
    msg = over_the_wire(triton_request({"x": ("FP32", SAMPLES["FP32"])}))
    msg.inputs[0].datatype = datatype
    with pytest.raises(
        InvalidInputError,
        match=f"input 'x' has datatype '{datatype}', which Seaway does not support; use one of BOOL",
    ):
        decode_infer_request(msg)


def test_fp16_must_be_raw() -> None:
    with pytest.raises(
        InvalidInputError,
        match="input 'x' is FP16, which has no typed contents field; send it in raw_input_contents",
    ):
        decode_infer_request(typed_request("FP16", [1], fp32_contents=[1.0]))


def test_typed_field_must_match_datatype() -> None:
    with pytest.raises(
        InvalidInputError,
        match="input 'x' is INT64 but sets contents.fp32_contents; INT64 data goes in contents.int64_contents only",
    ):
        decode_infer_request(typed_request("INT64", [1], fp32_contents=[1.0]))
    with pytest.raises(InvalidInputError, match="sets contents.fp64_contents"):
        decode_infer_request(typed_request("FP32", [1], fp32_contents=[1.0], fp64_contents=[1.0]))


def test_input_without_data_is_an_error() -> None:
    with pytest.raises(
        InvalidInputError,
        match="input 'x' has no data; send it in raw_input_contents .* or in contents.int64_contents",
    ):
        decode_infer_request(typed_request("INT64", [2]))


def test_narrow_integers_must_fit_their_datatype() -> None:
    with pytest.raises(
        InvalidInputError,
        match=r"input 'x' is INT8 but contents.int_contents holds values outside \[-128, 127\]",
    ):
        decode_infer_request(typed_request("INT8", [2], int_contents=[1, 300]))
    with pytest.raises(InvalidInputError, match=r"outside \[0, 255\]"):
        decode_infer_request(typed_request("UINT8", [1], uint_contents=[256]))


def test_negative_dimensions_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match=r"input 'x' has shape \[-1, 2\]"):
        decode_infer_request(typed_request("FP32", [-1, 2], fp32_contents=[1.0, 2.0]))


def raw_bytes_request(raw: bytes, shape: list[int]) -> pb.ModelInferRequest:
    msg = pb.ModelInferRequest(model_name="model", raw_input_contents=[raw])
    msg.inputs.add(name="s", datatype="BYTES", shape=shape)
    return msg


def test_bytes_raw_errors_name_the_problem() -> None:
    with pytest.raises(
        InvalidInputError, match=r"input 's' \(BYTES\) has raw data for 1 of the 2 elements"
    ):
        decode_infer_request(raw_bytes_request(b"\x01\x00\x00\x00a\x01\x00", [2]))
    with pytest.raises(
        InvalidInputError, match=r"input 's' \(BYTES\) element 0 declares 5 bytes but only 2 remain"
    ):
        decode_infer_request(raw_bytes_request(b"\x05\x00\x00\x00ab", [1]))
    with pytest.raises(
        InvalidInputError,
        match=r"input 's' \(BYTES\) has 3 bytes of raw data left over after the 1 elements",
    ):
        decode_infer_request(raw_bytes_request(b"\x01\x00\x00\x00abcd", [1]))


def test_raw_bool_bytes_must_be_zero_or_one() -> None:
    msg = pb.ModelInferRequest(model_name="model", raw_input_contents=[b"\x00\x02"])
    msg.inputs.add(name="b", datatype="BOOL", shape=[2])
    with pytest.raises(
        InvalidInputError, match="input 'b' is BOOL but its raw data holds bytes other than 0 and 1"
    ):
        decode_infer_request(msg)


def test_unnamed_and_duplicate_tensors_are_rejected() -> None:
    msg = typed_request("FP32", [1], fp32_contents=[1.0])
    msg.inputs.add(
        name="x", datatype="FP32", shape=[1], contents=pb.InferTensorContents(fp32_contents=[2.0])
    )
    with pytest.raises(InvalidInputError, match="input 'x' appears twice"):
        decode_infer_request(msg)
    msg = typed_request("FP32", [1], fp32_contents=[1.0])
    msg.inputs[0].name = ""
    with pytest.raises(InvalidInputError, match="input #0 has no name"):
        decode_infer_request(msg)
    msg = typed_request("FP32", [1], fp32_contents=[1.0])
    msg.outputs.add(name="")
    with pytest.raises(InvalidInputError, match="requested output #0 has no name"):
        decode_infer_request(msg)


def test_parameter_without_value_is_rejected() -> None:
    msg = typed_request("FP32", [1], fp32_contents=[1.0])
    msg.inputs[0].parameters["empty"].SetInParent()
    with pytest.raises(InvalidInputError, match="parameter 'empty' of input 'x' has no value"):
        decode_infer_request(msg)


# --- responses ------------------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_tritonclient_reads_every_datatype_we_encode(datatype: str) -> None:
    array = SAMPLES[datatype]
    response = InferResponse(
        "model", (Tensor("y", Datatype(datatype), array.shape, array),), model_version="2", id="r"
    )
    msg = encode_infer_response(response)
    assert len(msg.raw_output_contents) == 1
    assert not msg.outputs[0].HasField("contents")
    result = read_with_triton(msg)
    np.testing.assert_array_equal(result.as_numpy("y"), array)
    assert result.get_response().model_version == "2"
    assert result.get_response().id == "r"
    assert result.get_output("y").datatype == datatype


def test_encodes_non_contiguous_data_string_arrays_and_parameters() -> None:
    transposed = np.arange(6, dtype=np.int32).reshape(2, 3).T
    words = np.array([["a", "bé"], ["", "c"]])  # numpy unicode, not object
    response = InferResponse(
        "model",
        (
            Tensor("t", Datatype.INT32, (3, 2), transposed, parameters={"unit": "cm"}),
            Tensor("w", Datatype.BYTES, (2, 2), words),
            Tensor("n", Datatype.BYTES, (2,), np.array([1, None], dtype=object)),
            Tensor("i", Datatype.INT64, (2,), np.array([1, 2], dtype=np.int32)),
        ),
        parameters={"big": 2**64 - 1, "neg": -1, "ok": True, "ratio": 0.5, "np": np.int64(3)},  # type: ignore[dict-item]
    )
    result = read_with_triton(encode_infer_response(response))
    np.testing.assert_array_equal(result.as_numpy("t"), transposed)
    assert result.as_numpy("w").tolist() == [[b"a", "bé".encode()], [b"", b"c"]]
    assert result.as_numpy("n").tolist() == [b"1", b"None"]
    assert result.as_numpy("i").dtype == np.int64
    ours = pb.ModelInferResponse.FromString(result.get_response().SerializeToString())
    assert decode_parameters(ours.parameters) == {
        "big": 2**64 - 1, "neg": -1, "ok": True, "ratio": 0.5, "np": 3,
    }  # fmt: skip
    assert ours.parameters["big"].WhichOneof("parameter_choice") == "uint64_param"
    assert ours.parameters["ok"].WhichOneof("parameter_choice") == "bool_param"
    assert decode_parameters(ours.outputs[0].parameters) == {"unit": "cm"}


def test_unset_version_and_id_encode_as_empty() -> None:
    msg = encode_infer_response(InferResponse("model", ()))
    assert (msg.model_version, msg.id, len(msg.outputs)) == ("", "", 0)


def test_output_that_does_not_fit_its_shape_is_a_prediction_error() -> None:
    response = InferResponse("m", (Tensor("y", Datatype.FP32, (3,), np.zeros(2)),))
    with pytest.raises(
        PredictionError, match=r"output 'y' has 2 elements but its shape \[3\] needs 3"
    ):
        encode_infer_response(response)
    response = InferResponse(
        "m", (Tensor("y", Datatype.FP32, (1,), np.array(["x"], dtype=object)),)
    )
    with pytest.raises(PredictionError, match="output 'y' cannot be sent as FP32"):
        encode_infer_response(response)


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, None, b"bytes", [1]])
def test_encode_parameters_rejects_what_the_protocol_cannot_carry(value: Any) -> None:
    with pytest.raises(TypeError, match="parameter 'p'"):
        encode_parameters({"p": value}, pb.ModelInferResponse().parameters)


def test_model_metadata_reads_back_with_triton_modules() -> None:
    meta = ModelMetadata(
        name="iris",
        versions=("1", "2"),
        platform="seaway_sklearn",
        inputs=(TensorMetadata("x", Datatype.FP64, (-1, 4)),),
        outputs=(TensorMetadata("label", Datatype.BYTES, (-1,)),),
    )
    theirs = triton_pb2.ModelMetadataResponse.FromString(
        encode_model_metadata(meta).SerializeToString()
    )
    assert (theirs.name, list(theirs.versions), theirs.platform) == (
        "iris",
        ["1", "2"],
        "seaway_sklearn",
    )
    assert [(t.name, t.datatype, list(t.shape)) for t in theirs.inputs] == [("x", "FP64", [-1, 4])]
    assert [(t.name, t.datatype, list(t.shape)) for t in theirs.outputs] == [
        ("label", "BYTES", [-1])
    ]


# --- a real server --------------------------------------------------------------------------------


class EchoServicer(pb_grpc.GRPCInferenceServiceServicer):
    """Live, and answers ModelInfer with its inputs as outputs, through the codec."""

    def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.ServicerContext
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.ServicerContext
    ) -> pb.ModelInferResponse:
        try:
            decoded = decode_infer_request(request)
        except InvalidInputError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        response = InferResponse(decoded.model_name, decoded.inputs, id=decoded.id)
        return encode_infer_response(response)


@pytest.fixture
def server_url() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(EchoServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait(timeout=10)


def test_tritonclient_talks_to_a_server_built_on_our_stubs(server_url: str) -> None:
    client = triton.InferenceServerClient(url=server_url)
    try:
        assert client.is_server_live(client_timeout=10) is True
        inputs = []
        for datatype, array in SAMPLES.items():
            infer_input = triton.InferInput(datatype.lower(), list(array.shape), datatype)
            infer_input.set_data_from_numpy(array)
            inputs.append(infer_input)
        result = client.infer("echo", inputs, request_id="abc", client_timeout=10)
        assert result.get_response().id == "abc"
        for datatype, array in SAMPLES.items():
            np.testing.assert_array_equal(result.as_numpy(datatype.lower()), array)

        # Methods the servicer does not override answer UNIMPLEMENTED, as gRPC should.
        with pytest.raises(InferenceServerException, match="(?i)unimplemented"):
            client.is_server_ready(client_timeout=10)

        # A request the codec rejects comes back as INVALID_ARGUMENT with the codec's message.
        bad = triton.InferInput("x", [3], "FP32")
        bad.set_data_from_numpy(np.ones(3, dtype=np.float32))
        bad.set_shape([4])
        with pytest.raises(InferenceServerException, match="12 bytes of raw data") as caught:
            client.infer("echo", [bad], client_timeout=10)
        assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
    finally:
        client.close()
