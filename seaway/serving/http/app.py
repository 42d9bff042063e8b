"""The REST app: an explicit route list over the data plane.

Plain Starlette rather than a dependency-injecting framework: the infer route is the hot path, and
every adapter does only three things: decode, call the data plane, encode. Each route declares
the API-key scope it needs (none for health probes and metrics). ``_guard`` wraps every handler:
it sets the request id (``X-Request-ID``, echoed back), checks the key, turns Seaway errors into
``{"error": message}`` (MLflow routes: ``{"error_code", "message"}``) with the status from
``errors.STATUS``, logs anything unexpected with its request id and answers it with a 500 that
carries no traceback, and records the request in the metrics.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from seaway._version import __version__
from seaway.errors import BodyTooLargeError, InvalidInputError, SeawayError
from seaway.protocol import mlflow_scoring, rest
from seaway.runtime.replica import PREDICT_PROBA
from seaway.serving import logs
from seaway.serving.auth import Authenticator, Scope
from seaway.serving.controller import Controller
from seaway.serving.dataplane import DataPlane
from seaway.serving.http.errors import retry_after, status_for
from seaway.serving.http.openapi import DOCS_HTML, openapi_spec
from seaway.serving.metrics import CONTENT_TYPE as METRICS_TYPE
from seaway.serving.metrics import Metrics

log = logging.getLogger("seaway.serving.http")
access_log = logging.getLogger("seaway.access")

JSON = "application/json"
HEADER_LENGTH = "inference-header-content-length"
EXTENSIONS = ["binary_tensor_data", "model_repository", "mlflow_scoring", "metrics"]


@dataclass(frozen=True)
class HttpOptions:
    max_body_bytes: int = 64 * 1024 * 1024
    access_log: bool = False


Handler = Callable[[Request], Awaitable[Response]]


def create_app(
    plane: DataPlane,
    *,
    controller: Controller | None = None,
    options: HttpOptions | None = None,
    authenticator: Authenticator | None = None,
    metrics: Metrics | None = None,
) -> Starlette:
    options = options or HttpOptions()

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > options.max_body_bytes:
            raise BodyTooLargeError(_too_large(options.max_body_bytes))
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > options.max_body_bytes:
                raise BodyTooLargeError(_too_large(options.max_body_bytes))
            chunks.append(chunk)
        body = b"".join(chunks)
        encoding = request.headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "deflate"):
            body = _decompress(body, encoding, options.max_body_bytes)
        elif encoding not in ("", "identity"):
            raise InvalidInputError(
                f"Content-Encoding {encoding!r} is not supported (use gzip or deflate)"
            )
        return body

    # ---- Open Inference Protocol ---------------------------------------------------------------

    async def live(request: Request) -> Response:
        return _json({"live": True})

    async def ready(request: Request) -> Response:
        is_ready = plane.ready
        return _json({"ready": is_ready}, 200 if is_ready else 503)

    async def server_metadata(request: Request) -> Response:
        return _json({"name": "seaway", "version": __version__, "extensions": EXTENSIONS})

    async def list_models(request: Request) -> Response:
        return _json({"models": sorted({m.name for m in plane.models})})

    async def model_metadata(request: Request) -> Response:
        name, version = _model(request)
        return Response(rest.encode_model_metadata(plane.metadata(name, version)), media_type=JSON)

    async def model_ready(request: Request) -> Response:
        name, version = _model(request)
        is_ready = plane.model_ready(name, version)
        return _json({"name": name, "ready": is_ready}, 200 if is_ready else 503)

    async def infer(request: Request) -> Response:
        name, version = _model(request)
        model = plane.get(name, version)  # an unknown model is a 404 whatever the body holds
        request.scope["seaway.labels"] = (model.name, model.version)
        body = await read_body(request)
        header_length = _header_length(request.headers.get(HEADER_LENGTH))
        if header_length == 0:
            meta = model.metadata()
            if len(meta.inputs) != 1:
                raise InvalidInputError(
                    "a raw binary request (Inference-Header-Content-Length: 0) needs a model "
                    f"with exactly one input; {name!r} has {len(meta.inputs)}"
                )
            decoded = rest.decode_raw_binary_request(
                body, input_meta=meta.inputs[0], model_name=name, model_version=version
            )
        else:
            decoded = rest.decode_infer_request(
                body, model_name=name, model_version=version, header_length=header_length
            )
        response = await plane.infer(decoded)
        request.scope["seaway.labels"] = (response.model_name, response.model_version or "")
        payload, json_length = rest.encode_infer_response(response, decoded)
        if json_length is None:
            return Response(payload, media_type=JSON)
        return Response(
            payload,
            media_type="application/octet-stream",
            headers={"Inference-Header-Content-Length": str(json_length)},
        )

    # ---- repository extension ------------------------------------------------------------------

    async def repository_index(request: Request) -> Response:
        body = await read_body(request)
        only_ready = False
        if body.strip():
            doc = _json_object(body)
            only_ready = doc.get("ready", False) is True
        entries = [
            {"name": e.name, "version": e.version, "state": e.state, "reason": e.reason}
            for e in _controller().index()
            if e.state == "READY" or not only_ready
        ]
        return _json(entries)

    async def repository_load(request: Request) -> Response:
        body = await read_body(request)
        parameters: dict[str, Any] = {}
        if body.strip():
            parameters = _json_object(body).get("parameters") or {}
            if not isinstance(parameters, dict):
                raise InvalidInputError('"parameters" must be a JSON object')
        await _controller().load(request.path_params["name"], parameters)
        return Response(status_code=200)

    async def repository_unload(request: Request) -> Response:
        await _controller().unload(request.path_params["name"])
        return Response(status_code=200)

    def _controller() -> Controller:
        if controller is None:
            raise InvalidInputError("this server has no model repository")
        return controller

    # ---- MLflow scoring (also the SageMaker / Vertex AI container contract) ---------------------

    async def invocations(request: Request) -> Response:
        kind = mlflow_scoring.parse_content_type(request.headers.get("content-type"))
        names = sorted({m.name for m in plane.models})
        if len(names) != 1:
            raise InvalidInputError(
                f"/invocations needs exactly one served model; this server serves "
                f"{names or 'none'}: use /v2/models/NAME/infer"
            )
        model = plane.get(names[0])
        request.scope["seaway.labels"] = (model.name, model.version)
        signature = model.signature
        types = {s.name: s.datatype for s in signature.inputs} if signature else None
        scoring = mlflow_scoring.decode_invocations(await read_body(request), kind, types)
        wanted = [n for n in model.output_names if n != PREDICT_PROBA]
        served, outputs = await plane.predict_native(model.name, None, scoring.data, wanted)
        request.scope["seaway.labels"] = (served.name, served.version)
        # MLflow's body has no room for it: the version that answered goes in a header
        headers = {"x-model-name": served.name, "x-model-version": served.version}
        return Response(
            mlflow_scoring.encode_predictions(outputs), headers=headers, media_type=JSON
        )

    async def ping(request: Request) -> Response:
        is_ready = plane.ready
        return Response(b"\n" if is_ready else b"", status_code=200 if is_ready else 503)

    async def version(request: Request) -> Response:
        return Response(__version__.encode(), media_type="text/plain")

    # ---- operations and docs -------------------------------------------------------------------

    async def metrics_page(request: Request) -> Response:
        if metrics is None:
            raise InvalidInputError("metrics are off on this server")
        return Response(metrics.render(), media_type=METRICS_TYPE)

    async def openapi(request: Request) -> Response:
        return _json(openapi_spec(__version__))

    async def docs(request: Request) -> Response:
        return HTMLResponse(DOCS_HTML)

    def guard(handler: Handler, scope: Scope | None, protocol: str | None = None) -> Handler:
        """Request id, auth, error mapping, metrics and the access log around ``handler``."""
        mlflow = protocol == "mlflow"

        async def guarded(request: Request) -> Response:
            started = time.perf_counter()
            rid = logs.new_request_id(request.headers.get("x-request-id"))
            token = logs.request_id.set(rid)
            try:
                if authenticator is not None and scope is not None:
                    authenticator.check(request.headers.get("authorization"), scope)
                response = await handler(request)
            except SeawayError as exc:
                response = _error_response(exc, mlflow)
            except Exception:
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                message = "internal server error; the server log has the details"
                response = _error_body(message, 500, mlflow)
            finally:
                logs.request_id.reset(token)
            response.headers["x-request-id"] = rid
            if protocol is not None or options.access_log:
                seconds = time.perf_counter() - started
                labels = request.scope.get("seaway.labels")
                if protocol is not None and metrics is not None:
                    name, ver = labels or ("", "")  # unknown names must not become labels
                    metrics.observe_request(protocol, name, ver, str(response.status_code), seconds)
                if options.access_log:
                    _log_access(request, response.status_code, seconds, rid, labels)
            return response

        return guarded

    predict, admin = Scope.PREDICT, Scope.ADMIN
    routes = [
        Route("/v2/health/live", guard(live, None), methods=["GET"]),
        Route("/v2/health/ready", guard(ready, None), methods=["GET"]),
        Route("/v2", guard(server_metadata, predict), methods=["GET"]),
        Route("/v2/models", guard(list_models, predict), methods=["GET"]),
        Route("/v2/models/{name}", guard(model_metadata, predict), methods=["GET"]),
        Route(
            "/v2/models/{name}/versions/{version}",
            guard(model_metadata, predict),
            methods=["GET"],
        ),
        Route("/v2/models/{name}/ready", guard(model_ready, predict), methods=["GET"]),
        Route(
            "/v2/models/{name}/versions/{version}/ready",
            guard(model_ready, predict),
            methods=["GET"],
        ),
        Route("/v2/models/{name}/infer", guard(infer, predict, "rest"), methods=["POST"]),
        Route(
            "/v2/models/{name}/versions/{version}/infer",
            guard(infer, predict, "rest"),
            methods=["POST"],
        ),
        Route("/v2/repository/index", guard(repository_index, admin), methods=["POST"]),
        Route("/v2/repository/models/{name}/load", guard(repository_load, admin), methods=["POST"]),
        Route(
            "/v2/repository/models/{name}/unload",
            guard(repository_unload, admin),
            methods=["POST"],
        ),
        Route("/invocations", guard(invocations, predict, "mlflow"), methods=["POST"]),
        Route("/ping", guard(ping, None), methods=["GET"]),
        Route("/health", guard(ping, None), methods=["GET"]),
        Route("/version", guard(version, None), methods=["GET"]),
        Route("/metrics", guard(metrics_page, None), methods=["GET"]),
        Route("/openapi.json", guard(openapi, None), methods=["GET"]),
        Route("/docs", guard(docs, None), methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.add_exception_handler(404, _not_found)
    app.add_exception_handler(405, _not_allowed)
    return app


def _error_response(exc: SeawayError, mlflow: bool) -> Response:
    status = status_for(exc)
    response = _error_body(str(exc), status, mlflow)
    if (after := retry_after(exc)) is not None:
        response.headers["Retry-After"] = after
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="seaway"'
    return response


def _error_body(message: str, status: int, mlflow: bool) -> Response:
    if mlflow:
        return Response(
            mlflow_scoring.encode_mlflow_error(message, status), status, media_type=JSON
        )
    return Response(rest.encode_error(message), status, media_type=JSON)


async def _not_found(request: Request, exc: Exception) -> Response:
    return Response(
        rest.encode_error(f"no route {request.url.path}; see /openapi.json for the API"),
        404,
        media_type=JSON,
    )


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return Response(
        rest.encode_error(f"{request.method} is not allowed on {request.url.path}"),
        405,
        media_type=JSON,
    )


def _log_access(
    request: Request, status: int, seconds: float, rid: str, labels: tuple[str, str] | None
) -> None:
    extra: dict[str, Any] = {
        "method": request.method,
        "path": request.url.path,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "request_id": rid,
    }
    if labels:
        extra["model"], extra["model_version"] = labels
    access_log.info("%s %s %s", request.method, request.url.path, status, extra=extra)


def _model(request: Request) -> tuple[str, str | None]:
    params = request.path_params
    return params["name"], params.get("version")


def _header_length(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.strip().isdigit():
        raise InvalidInputError(
            f"Inference-Header-Content-Length must be a byte count, got {value!r}"
        )
    return int(value)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInputError("request body must be a JSON object")
    return doc


def _json(data: Any, status: int = 200) -> Response:
    return Response(rest.encode_json(data), status, media_type=JSON)


def _too_large(limit: int) -> str:
    return f"request body is larger than the limit of {limit} bytes (--max-body-size)"


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    try:
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        data = zlib.decompressobj(wbits).decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInputError(f"request body is not valid {encoding} data: {exc}") from exc
    if len(data) > limit:
        raise BodyTooLargeError(_too_large(limit))
    return data
