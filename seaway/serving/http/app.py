"""The REST app: an explicit route list over the data plane.

Plain Starlette rather than a dependency-injecting framework: the infer route is the hot path, and
every adapter does only three things: decode, call the data plane, encode. Errors become
``{"error": message}`` (MLflow routes: ``{"error_code", "message"}``) with the status from
``errors.STATUS``; anything unexpected is logged with its request id and answered 500 without a
traceback.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from seaway._version import __version__
from seaway.errors import BodyTooLargeError, InvalidInputError, SeawayError
from seaway.protocol import mlflow_scoring, rest
from seaway.runtime.replica import PREDICT_PROBA
from seaway.serving.dataplane import DataPlane
from seaway.serving.http.errors import retry_after, status_for
from seaway.serving.http.openapi import DOCS_HTML, openapi_spec

log = logging.getLogger("seaway.serving.http")

JSON = "application/json"
HEADER_LENGTH = "inference-header-content-length"
EXTENSIONS = ["binary_tensor_data", "model_repository"]


@dataclass(frozen=True)
class HttpOptions:
    max_body_bytes: int = 64 * 1024 * 1024


def create_app(plane: DataPlane, options: HttpOptions | None = None) -> Starlette:
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
        body = await read_body(request)
        header = request.headers.get(HEADER_LENGTH)
        header_length = _header_length(header)
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
        payload, json_length = rest.encode_infer_response(response, decoded)
        headers = (
            {} if json_length is None else {"Inference-Header-Content-Length": str(json_length)}
        )
        media = JSON if json_length is None else "application/octet-stream"
        return Response(payload, media_type=media, headers=headers)

    async def repository_index(request: Request) -> Response:
        entries = [
            {
                "name": m.name,
                "version": m.version,
                "state": "READY" if m.ready else m.pool.state.value.upper(),
                "reason": m.pool.error or "",
            }
            for m in plane.models
        ]
        return _json(entries)

    # ---- MLflow scoring (also the SageMaker / Vertex AI container contract) ---------------------

    async def invocations(request: Request) -> Response:
        try:
            kind = mlflow_scoring.parse_content_type(request.headers.get("content-type"))
            names = sorted({m.name for m in plane.models})
            if len(names) != 1:
                raise InvalidInputError(
                    f"/invocations needs exactly one served model; this server serves "
                    f"{names or 'none'}: use /v2/models/NAME/infer"
                )
            model = plane.get(names[0])
            signature = model.signature
            types = {s.name: s.datatype for s in signature.inputs} if signature else None
            scoring = mlflow_scoring.decode_invocations(await read_body(request), kind, types)
            wanted = [n for n in model.output_names if n != PREDICT_PROBA]
            _, outputs = await plane.predict_native(model.name, None, scoring.data, wanted)
            return Response(mlflow_scoring.encode_predictions(outputs), media_type=JSON)
        except SeawayError as exc:
            return _mlflow_error(exc)

    async def ping(request: Request) -> Response:
        is_ready = plane.ready
        return Response(b"\n" if is_ready else b"", status_code=200 if is_ready else 503)

    async def version(request: Request) -> Response:
        return Response(__version__.encode(), media_type="text/plain")

    # ---- docs ----------------------------------------------------------------------------------

    async def openapi(request: Request) -> Response:
        return _json(openapi_spec(__version__))

    async def docs(request: Request) -> Response:
        return HTMLResponse(DOCS_HTML)

    routes = [
        Route("/v2/health/live", _guard(live), methods=["GET"]),
        Route("/v2/health/ready", _guard(ready), methods=["GET"]),
        Route("/v2", _guard(server_metadata), methods=["GET"]),
        Route("/v2/models", _guard(list_models), methods=["GET"]),
        Route("/v2/models/{name}", _guard(model_metadata), methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}", _guard(model_metadata), methods=["GET"]),
        Route("/v2/models/{name}/ready", _guard(model_ready), methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/ready", _guard(model_ready), methods=["GET"]),
        Route("/v2/models/{name}/infer", _guard(infer), methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", _guard(infer), methods=["POST"]),
        Route("/v2/repository/index", _guard(repository_index), methods=["POST"]),
        Route("/invocations", _guard(invocations), methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    return Starlette(routes=routes)


Handler = Callable[[Request], Awaitable[Response]]


def _guard(handler: Handler) -> Handler:
    """Seaway errors -> their status with ``{"error": ...}``; anything else -> a logged 500."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except SeawayError as exc:
            status = status_for(exc)
            headers = {}
            if (after := retry_after(exc)) is not None:
                headers["Retry-After"] = after
            return Response(rest.encode_error(str(exc)), status, headers, media_type=JSON)
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            message = "internal server error; the server log has the details"
            return Response(rest.encode_error(message), 500, media_type=JSON)

    return guarded


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


def _json(data: Any, status: int = 200) -> Response:
    return Response(rest.encode_json(data), status, media_type=JSON)


def _mlflow_error(exc: SeawayError) -> Response:
    status = status_for(exc)
    headers = {"Retry-After": after} if (after := retry_after(exc)) else {}
    return Response(
        mlflow_scoring.encode_mlflow_error(str(exc), status), status, headers, media_type=JSON
    )


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
