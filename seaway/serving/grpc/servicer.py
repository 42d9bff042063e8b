"""``inference.GRPCInferenceService`` on grpc.aio: the gRPC adapter over the data plane.

Like the REST app it only decodes, calls the data plane and encodes. Each RPC runs inside
``_serve``, which sets the request id (``x-request-id`` metadata, echoed in trailing metadata),
checks the API key (``authorization: Bearer ...`` metadata), maps Seaway errors to status codes
(``errors.CODES``) and records metrics. Unexpected errors are logged and answered INTERNAL without
details. With tracing on, an inference RPC gets a server span (a ``traceparent`` in the metadata
makes it the caller's child).

Messages are parsed by ``add_to_server``'s own deserializers, not the generated ones: bytes that
are not the RPC's message would otherwise fail inside grpc, before any handler, and reach the
client as UNKNOWN. Here they arrive as a ``Malformed`` request, answered INVALID_ARGUMENT after
the API key is checked, as any other bad request is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import grpc

from seaway._version import __version__
from seaway.errors import InvalidInputError, NotFoundError, SeawayError, brief, quoted
from seaway.protocol import grpc_codec
from seaway.protocol.grpc import inference_pb2 as pb
from seaway.protocol.grpc import inference_pb2_grpc as pb_grpc
from seaway.serving import logs, request_context
from seaway.serving.auth import Authenticator, Scope
from seaway.serving.control import ModelRepository
from seaway.serving.dataplane import DataPlane
from seaway.serving.grpc.errors import code_for
from seaway.serving.metrics import Metrics

if TYPE_CHECKING:
    from seaway.serving.otel import Tracing

log = logging.getLogger("seaway.serving.grpc")
T = TypeVar("T")
EXTENSIONS = ["model_repository", "metrics"]
#: the trailing metadata key naming the version that answered an inference
VERSION_KEY = "seaway-model-version"


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(
        self,
        plane: DataPlane,
        *,
        controller: ModelRepository | None = None,
        authenticator: Authenticator | None = None,
        metrics: Metrics | None = None,
        access_log: bool = False,
        tracing: Tracing | None = None,
    ) -> None:
        self.plane = plane
        self.access_log = access_log
        self.controller = controller
        self.authenticator = authenticator
        self.metrics = metrics
        #: server spans for the inference RPCs (those with metric ``labels``)
        self.tracing = tracing

    # ---- health and metadata ---------------------------------------------------------------------

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return await self._serve(
            "ServerLive", context, None, lambda: _value(pb.ServerLiveResponse(live=True))
        )

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return await self._serve(
            "ServerReady",
            context,
            None,
            lambda: _value(pb.ServerReadyResponse(ready=self.plane.ready)),
        )

    async def ModelReady(self, request: Any, context: Any) -> Any:
        def ready() -> Awaitable[Any]:
            version = request.version or None
            return _value(
                pb.ModelReadyResponse(ready=self.plane.model_ready(request.name, version))
            )

        return await self._serve("ModelReady", context, Scope.PREDICT, ready)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        reply = pb.ServerMetadataResponse(name="seaway", version=__version__, extensions=EXTENSIONS)
        return await self._serve("ServerMetadata", context, Scope.PREDICT, lambda: _value(reply))

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        def metadata() -> Awaitable[Any]:
            meta = self.plane.metadata(request.name, request.version or None)
            return _value(grpc_codec.encode_model_metadata(meta))

        return await self._serve("ModelMetadata", context, Scope.PREDICT, metadata)

    # ---- inference ---------------------------------------------------------------------------------

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        labels = ["", ""]  # set once the model is known: unknown names must not become labels

        async def infer() -> Any:
            version = request.model_version or None
            try:
                model = self.plane.get(request.model_name, version)
            except NotFoundError:  # or a worker still loading it at start-up: wait (no 404)
                model = await self.plane.route(request.model_name, version)
            labels[:] = [request.model_name, model.version]  # a deployment: its name
            decoded = grpc_codec.decode_infer_request(request)
            response = await self.plane.infer(decoded)
            served = labels[1] = response.model_version or ""
            # the version that answered (a deployment's arm), beside the request id
            rid = logs.request_id.get() or ""
            context.set_trailing_metadata((("x-request-id", rid), (VERSION_KEY, served)))
            return grpc_codec.encode_infer_response(response)

        return await self._serve("ModelInfer", context, Scope.PREDICT, infer, labels)

    # ---- repository extension ----------------------------------------------------------------------

    async def RepositoryIndex(self, request: Any, context: Any) -> Any:
        async def index() -> Any:
            reply = pb.RepositoryIndexResponse()
            for entry in self._controller().index():
                if request.ready and entry.state != "READY":
                    continue
                reply.models.add(
                    name=entry.name, version=entry.version, state=entry.state, reason=entry.reason
                )
            return reply

        return await self._serve("RepositoryIndex", context, Scope.ADMIN, index)

    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        async def load() -> Any:
            parameters = {
                key: _repository_parameter(key, value) for key, value in request.parameters.items()
            }
            await self._controller().load(request.model_name, parameters)
            return pb.RepositoryModelLoadResponse()

        return await self._serve("RepositoryModelLoad", context, Scope.ADMIN, load)

    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        async def unload() -> Any:
            await self._controller().unload(request.model_name)
            return pb.RepositoryModelUnloadResponse()

        return await self._serve("RepositoryModelUnload", context, Scope.ADMIN, unload)

    def _controller(self) -> ModelRepository:
        if self.controller is None:
            raise InvalidInputError("this server has no model repository")
        return self.controller

    # ---- the common wrapper ----------------------------------------------------------------------

    async def _serve(
        self,
        rpc: str,
        context: Any,
        scope: Scope | None,
        handler: Callable[[], Awaitable[T]],
        labels: list[str] | None = None,
    ) -> T:
        started = time.perf_counter()
        metadata = {item.key: item.value for item in context.invocation_metadata() or ()}
        rid = logs.new_request_id(metadata.get("x-request-id"))
        token = logs.request_id.set(rid)
        held = request_context.headers.set(metadata)  # a deployment's sticky header
        context.set_trailing_metadata((("x-request-id", rid),))
        tracing = self.tracing
        span = None if tracing is None or labels is None else tracing.grpc(rpc, rid, metadata)
        code = grpc.StatusCode.OK
        message = ""
        try:
            if self.authenticator is not None and scope is not None:
                self.authenticator.check(metadata.get("authorization"), scope)
            return await handler()
        except SeawayError as exc:
            code, message = code_for(exc), brief(str(exc))
            if span is not None:
                span.fail(exc)
        except Exception as exc:
            log.exception("unexpected error in a gRPC call")
            code, message = grpc.StatusCode.INTERNAL, "internal server error; see the server log"
            if span is not None:
                span.fail(exc)
        finally:
            logs.request_id.reset(token)
            request_context.headers.reset(held)
            if span is not None:
                span.end_grpc(code.name, code.value[0], labels)
            seconds = time.perf_counter() - started
            if labels is not None and self.metrics is not None:
                self.metrics.observe_request("grpc", labels[0], labels[1], code.name, seconds)
            if self.access_log:
                path = f"/inference.GRPCInferenceService/{rpc}"
                logs.log_access("gRPC", path, code.name, seconds, rid, _pair(labels))
        await context.abort(code, message)
        raise AssertionError("unreachable")  # pragma: no cover - abort raises


def _pair(labels: list[str] | None) -> tuple[str, str] | None:
    return (labels[0], labels[1]) if labels else None


async def _value(value: T) -> T:
    return value


def _repository_parameter(key: str, value: Any) -> Any:
    choice = value.WhichOneof("parameter_choice")
    if choice is None:
        raise InvalidInputError(f"load parameter {quoted(key)} has no value")
    item = getattr(value, choice)
    return item.decode("utf-8", errors="replace") if isinstance(item, bytes) else item


# ---- registration with tolerant deserializers ------------------------------------------------------

_SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
#: The API-key scope each RPC checks, for answering a malformed message of that RPC as the RPC
#: itself would answer any other bad request (after the key is checked).
SCOPES: dict[str, Scope | None] = {
    "ServerLive": None,
    "ServerReady": None,
    "ModelReady": Scope.PREDICT,
    "ServerMetadata": Scope.PREDICT,
    "ModelMetadata": Scope.PREDICT,
    "ModelInfer": Scope.PREDICT,
    "RepositoryIndex": Scope.ADMIN,
    "RepositoryModelLoad": Scope.ADMIN,
    "RepositoryModelUnload": Scope.ADMIN,
}


class Malformed:
    """The request handed to a handler when the bytes received are not the RPC's message."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _deserializer(message_class: Any) -> Callable[[bytes], Any]:
    parse = message_class.FromString
    name = message_class.DESCRIPTOR.full_name

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as exc:  # whatever the parser raises, the bytes are the client's
            return Malformed(f"the request is not a valid {name} message ({brief(str(exc), 200)})")

    return deserialize


def _handler(servicer: InferenceServicer, rpc: str) -> Callable[[Any, Any], Awaitable[Any]]:
    method = getattr(servicer, rpc)
    scope = SCOPES[rpc]

    async def handle(request: Any, context: Any) -> Any:
        if type(request) is not Malformed:
            return await method(request, context)

        async def refuse() -> NoReturn:
            raise InvalidInputError(request.problem)

        labels = ["", ""] if rpc == "ModelInfer" else None  # counted like other bad requests
        return await servicer._serve(rpc, context, scope, refuse, labels)

    return handle


def add_to_server(servicer: InferenceServicer, server: grpc.aio.Server) -> None:
    """Register every RPC of ``inference.GRPCInferenceService`` (as the generated
    ``add_GRPCInferenceServiceServicer_to_server`` does) with deserializers that hand malformed
    messages to the servicer instead of failing inside grpc."""
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            _handler(servicer, method.name),
            request_deserializer=_deserializer(getattr(pb, method.input_type.name)),
            response_serializer=getattr(pb, method.output_type.name).SerializeToString,
        )
        for method in _SERVICE.methods
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(_SERVICE.full_name, handlers),)
    )
    server.add_registered_method_handlers(_SERVICE.full_name, handlers)
