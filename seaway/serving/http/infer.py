"""``POST /v2/models/{name}[/versions/{v}]/infer`` as a raw ASGI endpoint: the hot path.

Every other route goes through Starlette's router; this one is matched by two string tests and
handled here directly, because the router, its Request and Response objects and the exception
middleware cost more per request than decoding the body does. It keeps every promise of the
guarded routes (request id, API key, error mapping, metrics and access log) by taking the same
steps from the same :class:`~seaway.serving.http.guard.Guard`, and the same size limit.
Large answers are compressed in a worker thread (``compress``), so one big answer does not stall
every other request on the server; small ones stay on the loop, where a thread would cost more.
With tracing on (``guard.tracing``), the request's server span covers it from the headers to the
last byte sent, and a ``traceparent`` header makes it the caller's child.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from seaway.errors import InvalidInputError, NotFoundError, quoted
from seaway.protocol import rest
from seaway.serving import logs, request_context
from seaway.serving.auth import Scope
from seaway.serving.dataplane import DataPlane
from seaway.serving.http.body import ClientDisconnected, read_body
from seaway.serving.http.guard import Guard

if TYPE_CHECKING:
    from seaway.serving.otel import RequestSpan

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

PREFIX = "/v2/models/"
SUFFIX = "/infer"
_JSON = b"application/json"
_ROUTE = "/v2/models/{name}/infer"
_VERSIONED_ROUTE = "/v2/models/{name}/versions/{version}/infer"
_BINARY = b"application/octet-stream"
#: every answer names the version that answered (a deployment's arm) in this header too
VERSION_HEADER = b"x-seaway-model-version"
#: Answers at least this long are compressed when the client accepts gzip or deflate.
COMPRESS_FROM = 4096
#: Answers at least this long are compressed off the event loop.
OFF_LOOP_FROM = 256 * 1024
_WANTED = {
    b"accept-encoding",
    b"content-length",
    b"content-encoding",
    b"inference-header-content-length",
    b"authorization",
    b"x-request-id",
    b"traceparent",
    b"tracestate",
}


def infer_target(path: str) -> tuple[str, str | None] | None:
    """``(name, version)`` for an infer path, else None (model names never hold ``/``)."""
    if not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
        return None
    parts = path[len(PREFIX) : -len(SUFFIX)].split("/")
    if len(parts) == 1 and parts[0]:
        return parts[0], None
    if len(parts) == 3 and parts[1] == "versions" and parts[0] and parts[2]:
        return parts[0], parts[2]
    return None


class InferEndpoint:
    def __init__(
        self, plane: DataPlane, *, max_body_bytes: int, guard: Guard | None = None
    ) -> None:
        self.plane = plane
        self.max_body_bytes = max_body_bytes
        #: the request id, API key, error, metrics and access-log steps the routed path uses too
        self.guard = guard or Guard()

    async def __call__(
        self, scope: dict[str, Any], receive: Receive, send: Send, name: str, version: str | None
    ) -> None:
        started = time.perf_counter()
        headers: dict[bytes, str] = {}
        for key, value in scope["headers"]:
            if key in _WANTED:
                headers[key] = value.decode("latin-1")
        guard = self.guard
        rid, token = guard.enter(headers.get(b"x-request-id"))
        held = request_context.headers.set(scope["headers"])  # a deployment's sticky header
        span = None if guard.tracing is None else _span(guard, scope["path"], version, rid, headers)
        labels: tuple[str, str] | None = None
        extra: list[tuple[bytes, bytes]] = []
        content_type = _JSON
        try:
            guard.authorize(headers.get(b"authorization"), Scope.PREDICT)
            try:  # unknown model: 404 whatever the body holds
                model = self.plane.get(name, version)
            except NotFoundError:  # or a worker still loading it at start-up: wait (no 404)
                model = await self.plane.route(name, version)
            labels = (name, model.version)  # a deployment: its own name
            body = await read_body(
                receive,
                self.max_body_bytes,
                headers.get(b"content-length"),
                headers.get(b"content-encoding"),
            )
            header_length = _header_length(headers.get(b"inference-header-content-length"))
            if header_length == 0:
                meta = model.metadata()
                if len(meta.inputs) != 1:
                    raise InvalidInputError(
                        "a raw binary request (Inference-Header-Content-Length: 0) needs a model "
                        f"with exactly one input; {quoted(name)} has {len(meta.inputs)}"
                    )
                decoded = rest.decode_raw_binary_request(
                    body, input_meta=meta.inputs[0], model_name=name, model_version=version
                )
            else:
                decoded = rest.decode_infer_request(
                    body, model_name=name, model_version=version, header_length=header_length
                )
            response = await self.plane.infer(decoded)
            served = response.model_version or ""
            labels = (response.model_name, served)
            payload, json_length = rest.encode_infer_response(response, decoded)
            status = 200
            extra.append((VERSION_HEADER, served.encode()))
            if json_length is not None:
                content_type = _BINARY
                extra.append((b"inference-header-content-length", str(json_length).encode()))
            if len(payload) >= COMPRESS_FROM and (accepted := headers.get(b"accept-encoding")):
                payload, encoding = await compress(payload, accepted)
                if encoding:
                    extra.append((b"content-encoding", encoding))
        except ClientDisconnected as exc:
            if span is not None:
                span.fail(exc)
                span.end_http(499, labels)  # nginx's "client closed request": nothing is sent
            return
        except Exception as exc:
            status, payload, failed = guard.failure(exc, "POST", scope["path"])
            extra += [(k.encode(), v.encode()) for k, v in failed.items()]
            if span is not None:
                span.fail(exc)
        finally:
            logs.request_id.reset(token)
            request_context.headers.reset(held)
            if span is not None:
                span.leave()
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", content_type),
                        (b"content-length", str(len(payload)).encode()),
                        (b"x-request-id", rid.encode()),
                        *extra,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})
        finally:
            if span is not None:
                span.end_http(status, labels)
        guard.record("rest", "POST", scope["path"], status, started, rid, labels)


async def compress(payload: bytes, accepted: str) -> tuple[bytes, bytes | None]:
    """``_compress``, in a worker thread when ``payload`` is large."""
    if len(payload) < OFF_LOOP_FROM:
        return _compress(payload, accepted)
    return await asyncio.to_thread(_compress, payload, accepted)


def _compress(payload: bytes, accepted: str) -> tuple[bytes, bytes | None]:
    """gzip or deflate (zlib format, as tritonclient sends and reads it), if the client takes it."""
    codings = {part.split(";")[0].strip().lower() for part in accepted.split(",")}
    if "gzip" in codings:
        return gzip.compress(payload, compresslevel=1), b"gzip"
    if "deflate" in codings:
        return zlib.compress(payload, 1), b"deflate"
    return payload, None


def _span(
    guard: Guard, path: str, version: str | None, rid: str, headers: dict[bytes, str]
) -> RequestSpan:
    """The request's server span (tracing is on), the caller's child when it sent a parent."""
    assert guard.tracing is not None
    route = _VERSIONED_ROUTE if version is not None else _ROUTE
    parent = None
    if (traceparent := headers.get(b"traceparent")) is not None:
        parent = {"traceparent": traceparent, "tracestate": headers.get(b"tracestate", "")}
    return guard.tracing.http("POST", path, route, rid, parent)


def _header_length(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    # ASCII digits only ("²" is a digit to str.isdigit, not to int), and few enough for int()
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise InvalidInputError(
            f"Inference-Header-Content-Length must be a byte count, got {quoted(value)}"
        )
    return int(text)
