"""Open Inference Protocol gRPC messages and service stubs, generated from ``inference.proto``.

Import the modules you need: ``inference_pb2`` (messages, protobuf only) and ``inference_pb2_grpc``
(servicer base class and client stub, needs ``grpcio``). This package imports neither, so loading
it costs nothing. Regenerate both with ``scripts/generate_grpc.sh``.

The messages keep the protocol's full names (``inference.ModelInferRequest`` ...) and the service
is ``inference.GRPCInferenceService``, so method paths match Triton and KServe. Those names are also
registered by ``tritonclient.grpc`` in protobuf's default descriptor pool, where a second file
defining them fails with "duplicate symbol"; ``inference_pb2`` therefore builds its descriptors in
a private pool. Messages never carry their names on the wire, so both sets interoperate by bytes.
One limit: under the pure-Python protobuf backend (``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``)
message classes are still entered in the default symbol database, so there the two cannot share a
process; the default ``upb`` backend has no such limit.
"""
