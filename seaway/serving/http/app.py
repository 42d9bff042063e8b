"""The REST app: an explicit route list over the data plane.

Plain Starlette rather than a dependency-injecting framework, and the hot path, V2 infer, skips
even that: ``SeawayApp`` hands it to the raw ASGI endpoint in ``infer.py``. Every adapter does only
three things: decode, call the data plane, encode. Each route declares
the API-key scope it needs (none for health probes and metrics). ``guard`` wraps every handler
in the steps of ``guard.py``, the ones the infer endpoint takes too: it sets the request id
(``X-Request-ID``, echoed back), checks the key, turns Seaway errors into ``{"error": message}``
(MLflow routes: ``{"error_code", "message"}``) with the status from ``errors.STATUS``, logs
anything unexpected with its request id and answers it with a 500 that carries no traceback, and
records the request in the metrics and the access log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from seaway._version import __version__
from seaway.errors import (
    InvalidInputError,
    NotFoundError,
    UnsupportedOperationError,
    listed,
    quoted,
)
from seaway.monitoring.feedback import FeedbackItem, items_from_body
from seaway.protocol import mlflow_scoring, rest
from seaway.serving import logs, outcomes, request_context
from seaway.serving.auth import Authenticator, Scope
from seaway.serving.control import DeploymentAdmin, ModelRepository
from seaway.serving.dataplane import DataPlane
from seaway.serving.deployment_route import DeploymentRoute
from seaway.serving.feedback import FeedbackWriter
from seaway.serving.http.body import ClientDisconnected, read_body
from seaway.serving.http.deployments import deployment_routes
from seaway.serving.http.guard import Guard
from seaway.serving.http.infer import InferEndpoint, infer_target
from seaway.serving.http.openapi import ServedModelDoc, docs_asset, docs_page, openapi_spec
from seaway.serving.metrics import CONTENT_TYPE as METRICS_TYPE
from seaway.serving.metrics import Metrics

if TYPE_CHECKING:
    from seaway.serving.otel import RequestSpan, Tracing

JSON = "application/json"
HEADER_LENGTH = "inference-header-content-length"
#: the header naming the model ``/invocations`` scores with, on a server with several
MODEL_HEADER = "x-seaway-model"
#: the header every inference answer names its version in (``infer.py`` sets it on V2 infer)
VERSION_HEADER = "x-seaway-model-version"
EXTENSIONS = ["binary_tensor_data", "model_repository", "mlflow_scoring", "metrics"]


@dataclass(frozen=True)
class HttpOptions:
    max_body_bytes: int = 64 * 1024 * 1024
    access_log: bool = False


Handler = Callable[[Request], Awaitable[Response]]


def create_app(
    plane: DataPlane,
    *,
    controller: ModelRepository | None = None,
    options: HttpOptions | None = None,
    authenticator: Authenticator | None = None,
    metrics: Metrics | None = None,
    tracing: Tracing | None = None,
    feedback: FeedbackWriter | None = None,
    deployments: DeploymentAdmin | None = None,
) -> SeawayApp:
    """``tracing``: server spans for the inference routes (V2 infer, ``/invocations``);
    ``feedback``: where ``POST /v2/models/{name}/feedback`` stores true labels (None: off);
    ``deployments``: the admin API of deployments (``http/deployments.py``; None: off)."""
    options = options or HttpOptions()

    async def body_of(request: Request, limit: int | None = None) -> bytes:
        headers = request.headers
        own = limit is not None and limit < options.max_body_bytes  # the route's fixed limit
        return await read_body(
            request.receive,
            limit if limit is not None and own else options.max_body_bytes,
            headers.get("content-length"),
            headers.get("content-encoding"),
            setting=None if own else "--max-body-size",
        )

    # ---- Open Inference Protocol ---------------------------------------------------------------

    async def live(request: Request) -> Response:
        return _json({"live": True})

    async def ready(request: Request) -> Response:
        reason = plane.unready_reason()
        if reason:  # why not, for whoever looks (balancers read the status alone)
            return _json({"ready": False, "reason": reason}, 503)
        return _json({"ready": True})

    async def server_metadata(request: Request) -> Response:
        return _json({"name": "seaway", "version": __version__, "extensions": EXTENSIONS})

    async def list_models(request: Request) -> Response:
        return _json({"models": plane.names})

    async def model_metadata(request: Request) -> Response:
        name, version = _model(request)
        return Response(rest.encode_model_metadata(plane.metadata(name, version)), media_type=JSON)

    async def model_ready(request: Request) -> Response:
        name, version = _model(request)
        reason = plane.model_unready_reason(name, version)
        if reason:
            return _json({"name": name, "ready": False, "reason": reason}, 503)
        return _json({"name": name, "ready": True})

    async def model_feedback(request: Request) -> Response:
        """True labels of logged predictions, by request id (``monitoring/feedback.py``)."""
        name, version = _model(request)
        model = await plane.route(name, version)  # unknown model or version: 404 before the body
        if feedback is None:
            raise UnsupportedOperationError("feedback is off on this server")
        doc = _json_object(await body_of(request))
        # up to MAX_ITEMS labels checked one by one: a thread's work, not the event loop's
        items = await asyncio.to_thread(items_from_body, doc)
        route = plane.deployment(name)
        # a deployment's labels are stored with its model's log (the arms are its versions)
        accepted = await feedback.record(model.name, items)
        if route is None:
            return _json({"model_name": model.name, "accepted": accepted})
        matched = _label_arms(route, items)  # the arms' accuracy, for rollout gates and A/B
        return _json({"model_name": name, "accepted": accepted, "matched": matched})

    async def model_outcome(request: Request) -> Response:
        """Outcomes of a deployment's answers, by request id or sticky key (``outcomes.py``)."""
        name = request.path_params["name"]
        await plane.route(name)  # unknown name: 404 before the body
        route = plane.deployment(name)
        if route is None:
            raise UnsupportedOperationError(
                f"{quoted(name)} is a model, not a deployment: outcomes are counted per version "
                "of a deployment (an A/B test); post them to /v2/models/DEPLOYMENT/outcome"
            )
        body = await body_of(request, outcomes.MAX_BODY_BYTES)
        items = outcomes.outcomes_from_body(
            _json_object(body), deployment=name, sticky=route.sticky
        )
        missed: dict[str, list[str]] = {"unmatched": [], "duplicate": []}
        for item in items:
            verdict = route.record_outcome(item.request_id, item.key, item.value)
            if verdict != "accepted":
                missed[verdict].append(item.request_id or item.key or "")
        return _json(
            {
                "model_name": name,
                "accepted": len(items) - len(missed["unmatched"]) - len(missed["duplicate"]),
                "unmatched": missed["unmatched"],
                "duplicates": missed["duplicate"],
            }
        )

    # ---- repository extension ------------------------------------------------------------------

    async def repository_index(request: Request) -> Response:
        body = await body_of(request)
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
        body = await body_of(request)
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

    def _controller() -> ModelRepository:
        if controller is None:
            raise InvalidInputError("this server has no model repository")
        return controller

    # ---- MLflow scoring (also the SageMaker / Vertex AI container contract) ---------------------

    async def invocations(request: Request) -> Response:
        """``/invocations``: the one model served, else the one header ``X-Seaway-Model`` names."""
        chosen = request.headers.get(MODEL_HEADER)
        if chosen is not None:
            try:
                return await score(request, chosen.strip(), None)
            except NotFoundError as exc:
                raise NotFoundError(f"header X-Seaway-Model: {exc}") from None
        await plane.settled()  # a worker still loading at start-up: wait for its models
        names = plane.names
        if len(names) != 1:
            raise InvalidInputError(
                f"/invocations on a server with {'several models' if names else 'no model'} "
                f"needs the header X-Seaway-Model naming the model to score with (served: "
                f"{listed(names) if names else 'none'}), or the path /v2/models/NAME/invocations"
            )
        return await score(request, names[0], None)

    async def model_invocations(request: Request) -> Response:
        """``/v2/models/{name}[/versions/{v}]/invocations``: MLflow scoring by one model."""
        name, version = _model(request)
        return await score(request, name, version)

    async def score(request: Request, name: str, version: str | None) -> Response:
        kind = mlflow_scoring.parse_content_type(request.headers.get("content-type"))
        model = await plane.route(name, version)  # unknown: 404 before the body
        request.scope["seaway.labels"] = (name, model.version)
        signature = model.signature
        types = {s.name: s.datatype for s in signature.inputs} if signature else None
        scoring = mlflow_scoring.decode_invocations(await body_of(request), kind, types)
        # params.method: what predict gives (as V2 infer answers by default), or predict_proba
        wanted = model.outputs_for_method(scoring.method)
        served, outputs = await plane.predict_native(name, version, scoring.data, wanted)
        request.scope["seaway.labels"] = (name, served.version)
        # MLflow's body has no room for it: the version that answered goes in a header
        headers = {
            "x-model-name": name,
            "x-model-version": served.version,
            VERSION_HEADER: served.version,
        }
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
        return _json(openapi_spec(__version__, _served(plane)))

    async def docs(request: Request) -> Response:
        return HTMLResponse(docs_page())

    async def docs_file(request: Request) -> Response:
        found = docs_asset(request.path_params["asset"])
        if found is None:
            raise NotFoundError(f"no file {quoted(request.path_params['asset'])} under /docs")
        content, media = found
        return Response(content, media_type=media, headers={"cache-control": "max-age=86400"})

    steps = Guard(
        authenticator=authenticator,
        metrics=metrics,
        access_log=options.access_log,
        tracing=tracing,
    )

    def guard(handler: Handler, scope: Scope | None, protocol: str | None = None) -> Handler:
        """``handler`` inside the guard's steps (the raw infer endpoint takes the same ones)."""
        mlflow = protocol == "mlflow"
        traced = protocol is not None and steps.tracing is not None  # the inference routes

        async def guarded(request: Request) -> Response:
            started = time.perf_counter()
            rid, token = steps.enter(request.headers.get("x-request-id"))
            held = request_context.headers.set(request.scope["headers"])
            span = _span(steps, request, rid) if traced else None
            try:
                # the key, for the admin API's record of who changed what
                request.scope["seaway.key"] = steps.authorize(
                    request.headers.get("authorization"), scope
                )
                response = await handler(request)
            except ClientDisconnected as exc:
                if span is not None:
                    span.fail(exc)
                    span.end_http(499, request.scope.get("seaway.labels"))
                return Response(status_code=499)  # nobody is listening; uvicorn drops it
            except Exception as exc:
                status, body, headers = steps.failure(
                    exc, request.method, request.url.path, mlflow=mlflow
                )
                response = Response(body, status, headers=headers, media_type=JSON)
                if span is not None:
                    span.fail(exc)
            finally:
                logs.request_id.reset(token)
                request_context.headers.reset(held)
                if span is not None:
                    span.leave()
            response.headers["x-request-id"] = rid
            labels = request.scope.get("seaway.labels")
            path = request.url.path
            steps.record(protocol, request.method, path, response.status_code, started, rid, labels)
            if span is not None:  # before the body is sent (Starlette sends it after we return)
                span.end_http(response.status_code, labels)
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
        Route("/v2/models/{name}/feedback", guard(model_feedback, predict), methods=["POST"]),
        Route(
            "/v2/models/{name}/versions/{version}/feedback",
            guard(model_feedback, predict),
            methods=["POST"],
        ),
        Route("/v2/models/{name}/outcome", guard(model_outcome, predict), methods=["POST"]),
        Route(
            "/v2/models/{name}/invocations",
            guard(model_invocations, predict, "mlflow"),
            methods=["POST"],
        ),
        Route(
            "/v2/models/{name}/versions/{version}/invocations",
            guard(model_invocations, predict, "mlflow"),
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
        Route("/docs/{asset}", guard(docs_file, None), methods=["GET"]),
        *deployment_routes(deployments, lambda handler: guard(handler, admin), body_of),
    ]
    router = Starlette(routes=routes)
    router.add_exception_handler(404, _not_found)
    router.add_exception_handler(405, _not_allowed)
    infer = InferEndpoint(plane, max_body_bytes=options.max_body_bytes, guard=steps)
    return SeawayApp(router, infer)


class SeawayApp:
    """The ASGI app: infer requests go straight to their endpoint, the rest to the router."""

    def __init__(self, router: Starlette, infer: InferEndpoint) -> None:
        self.router = router
        self.infer = infer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            target = infer_target(scope["path"])
            if target is not None:
                await self.infer(scope, receive, send, *target)
                return
        await self.router(scope, receive, send)


def _span(steps: Guard, request: Request, rid: str) -> RequestSpan:
    """An inference route's server span, the caller's child when it sent a ``traceparent``."""
    assert steps.tracing is not None
    headers = request.headers
    parent = None
    if (traceparent := headers.get("traceparent")) is not None:
        parent = {"traceparent": traceparent, "tracestate": headers.get("tracestate", "")}
    path = request.url.path
    return steps.tracing.http(request.method, path, path, rid, parent)


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
        headers=getattr(exc, "headers", None),  # Starlette's ``Allow`` (RFC 9110)
        media_type=JSON,
    )


def _served(plane: DataPlane) -> list[ServedModelDoc]:
    """Each served model's default version (a deployment's primary arm), for the API
    description."""
    docs = []
    for name in plane.names:
        try:
            model = plane.get(name)
        except NotFoundError:  # unloaded since the list was taken
            continue
        meta = model.metadata()
        signature = model.signature
        columns = signature is not None and signature.input_format == "dataframe"
        docs.append(ServedModelDoc(name, model.version, meta.inputs, meta.outputs, columns))
    return docs


def _label_arms(route: DeploymentRoute, items: list[FeedbackItem]) -> int:
    """Count true labels for the arms that answered their requests; how many matched one."""
    recorder = route.recorder
    return sum(recorder.observe_label(i.request_id, i.row, i.label) for i in items)


def _model(request: Request) -> tuple[str, str | None]:
    params = request.path_params
    return params["name"], params.get("version")


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
