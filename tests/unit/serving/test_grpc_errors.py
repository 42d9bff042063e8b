"""The gRPC adapter's error answers, in process: malformed messages are INVALID_ARGUMENT (grpc's
own deserializer made them UNKNOWN), checked after the API key, and long messages are cut."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from seaway.errors import AuthenticationError, InvalidInputError
from seaway.protocol.grpc import inference_pb2 as pb
from seaway.serving.auth import Scope
from seaway.serving.dataplane import DataPlane
from seaway.serving.grpc.servicer import SCOPES, InferenceServicer, add_to_server

GARBAGE = b"\xff\xff\xff\xff"  # a field tag with no end: no message parses from it


def test_every_rpc_of_the_service_has_a_scope() -> None:
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert set(SCOPES) == {method.name for method in service.methods}
    assert SCOPES["ModelInfer"] is Scope.PREDICT and SCOPES["RepositoryIndex"] is Scope.ADMIN


class _Keys:
    """An authenticator that knows one key, for every scope."""

    def check(self, header: str | None, scope: Scope) -> None:
        if header != "Bearer good":
            raise AuthenticationError("a valid API key is needed")


async def _call(
    rpc: str, payload: bytes, *, key: str | None = None, authenticate: bool = False
) -> tuple[grpc.StatusCode, str]:
    server = grpc.aio.server()
    servicer = InferenceServicer(DataPlane(), authenticator=_Keys() if authenticate else None)  # type: ignore[arg-type]
    add_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(
                f"/inference.GRPCInferenceService/{rpc}",
                request_serializer=None,
                response_deserializer=None,
            )
            metadata = (("authorization", f"Bearer {key}"),) if key else None
            try:
                await call(payload, metadata=metadata, timeout=30)
            except grpc.aio.AioRpcError as exc:
                return exc.code(), exc.details() or ""
            return grpc.StatusCode.OK, ""
    finally:
        await server.stop(None)


@pytest.mark.parametrize("rpc", sorted(SCOPES))
def test_malformed_messages_are_invalid_argument(rpc: str) -> None:
    code, details = asyncio.run(_call(rpc, GARBAGE))
    assert code is grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert f"is not a valid inference.{rpc}Request message" in details


def test_the_key_is_checked_before_the_message() -> None:
    code, _ = asyncio.run(_call("ModelInfer", GARBAGE, authenticate=True))
    assert code is grpc.StatusCode.UNAUTHENTICATED
    code, _ = asyncio.run(_call("ModelInfer", GARBAGE, key="good", authenticate=True))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    code, _ = asyncio.run(_call("ServerLive", GARBAGE, authenticate=True))
    assert code is grpc.StatusCode.INVALID_ARGUMENT  # health probes need no key


def test_well_formed_messages_still_reach_their_handlers() -> None:
    code, _ = asyncio.run(_call("ServerLive", pb.ServerLiveRequest().SerializeToString()))
    assert code is grpc.StatusCode.OK
    request = pb.ModelInferRequest(model_name="m" * 1_000_000)
    code, details = asyncio.run(_call("ModelInfer", request.SerializeToString()))
    assert code is grpc.StatusCode.NOT_FOUND
    assert len(details) < 300  # the name is quoted cut, not whole


def test_long_messages_are_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    def loud(self: Any, name: str, version: str | None = None) -> Any:
        raise InvalidInputError("x" * 100_000)

    monkeypatch.setattr(DataPlane, "get", loud)
    request = pb.ModelInferRequest(model_name="m")
    code, details = asyncio.run(_call("ModelInfer", request.SerializeToString()))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert len(details) == 1024
