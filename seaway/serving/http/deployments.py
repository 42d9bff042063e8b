"""The deployments admin API: declare, inspect and act on deployments over HTTP (admin scope).

The same operations as ``seaway deploy ...`` and the Python API (``seaway.deploy``), through the
control plane's :class:`~seaway.serving.control.DeploymentAdmin` (the adapter never touches the
registry). Each handler only decodes the request, calls it and encodes its JSON-able answer:

    GET    /v2/deployments                          every deployment
    POST   /v2/deployments[?dry_run=true]           apply a spec (JSON, or YAML by Content-Type)
    GET    /v2/deployments/{name}                   its status (revision, split, rollout)
    GET    /v2/deployments/{name}/history[?decisions=true&limit=N]
    GET    /v2/deployments/{name}/results           per-arm figures, A/B verdict, shadow
    POST   /v2/deployments/{name}/{action}          promote|pause|resume|abort|rollback
                                                     (rollback: {"to_revision": N} optional)
    DELETE /v2/deployments/{name}

With auth on, a change is recorded as made by ``key:<id>`` of the API key that asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from seaway.apikeys import ApiKey
from seaway.errors import InvalidInputError, UnsupportedOperationError, quoted
from seaway.protocol import rest
from seaway.routing.spec_yaml import read_yaml
from seaway.serving.control import DeploymentAdmin

#: the actions ``POST /v2/deployments/{name}/{action}`` takes (delete is ``DELETE``)
ACTIONS = ("promote", "pause", "resume", "abort", "rollback")
#: a deployment spec is small; a body over this is refused (413) before it is parsed
MAX_SPEC_BYTES = 1024 * 1024
Handler = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Handler], Handler]
Body = Callable[[Request, int], Awaitable[bytes]]


def deployment_routes(admin: DeploymentAdmin | None, guard: Guard, body_of: Body) -> list[Route]:
    """The admin routes, each inside ``guard`` (admin scope); ``admin`` None: each answers 400
    saying this server has no deployments."""

    def control() -> DeploymentAdmin:
        if admin is None:
            raise UnsupportedOperationError(
                "this server has no deployments API (it needs a registry: seaway serve with "
                "SEAWAY_REGISTRY_URL, or seaway deploy ... on the registry's machine)"
            )
        return admin

    async def list_all(request: Request) -> Response:
        return _json({"deployments": await control().list_deployments()})

    async def apply(request: Request) -> Response:
        dry_run = _flag(request, "dry_run")
        body = await body_of(request, MAX_SPEC_BYTES)
        # off the loop: a large YAML body takes seconds to parse, and requests must not wait
        spec = await asyncio.to_thread(_spec, body, request.headers.get("content-type"))
        answer = await control().apply_deployment(spec, actor=_actor(request), dry_run=dry_run)
        return _json(answer)

    async def get_one(request: Request) -> Response:
        return _json(await control().get_deployment(request.path_params["name"]))

    async def history(request: Request) -> Response:
        answer = await control().deployment_history(
            request.path_params["name"],
            decisions=_flag(request, "decisions"),
            limit=_limit(request),
        )
        return _json(answer)

    async def results(request: Request) -> Response:
        return _json(await control().deployment_results(request.path_params["name"]))

    async def act(request: Request) -> Response:
        name, action = request.path_params["name"], request.path_params["action"]
        if action not in ACTIONS:
            raise InvalidInputError(
                f"unknown action {quoted(action)} on deployment {quoted(name)}; use one of "
                f"{', '.join(ACTIONS)} (or DELETE /v2/deployments/{name})"
            )
        to_revision = _to_revision(await body_of(request, MAX_SPEC_BYTES), action)
        answer = await control().deployment_action(
            name, action, actor=_actor(request), to_revision=to_revision
        )
        return _json(answer)

    async def delete(request: Request) -> Response:
        answer = await control().deployment_action(
            request.path_params["name"], "delete", actor=_actor(request)
        )
        return _json(answer)

    return [
        Route("/v2/deployments", guard(list_all), methods=["GET"]),
        Route("/v2/deployments", guard(apply), methods=["POST"]),
        Route("/v2/deployments/{name}", guard(get_one), methods=["GET"]),
        Route("/v2/deployments/{name}", guard(delete), methods=["DELETE"]),
        Route("/v2/deployments/{name}/history", guard(history), methods=["GET"]),
        Route("/v2/deployments/{name}/results", guard(results), methods=["GET"]),
        Route("/v2/deployments/{name}/{action}", guard(act), methods=["POST"]),
    ]


def _actor(request: Request) -> str | None:
    """Who asks: the API key's id with auth on; None lets the control plane name itself."""
    key = request.scope.get("seaway.key")
    return f"key:{key.key_id}" if isinstance(key, ApiKey) else None


def _spec(body: bytes, content_type: str | None) -> Mapping[str, Any]:
    if not body.strip():
        raise InvalidInputError(
            "the request body is empty; send the deployment spec as JSON (or YAML with "
            "Content-Type: application/yaml)"
        )
    if content_type is not None and "yaml" in content_type.lower():
        doc = read_yaml(body, "the deployment spec")  # bounded: depth, numbers, aliases
    else:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInputError(f"the deployment spec is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInputError("a deployment spec is an object (name, model, routes, ...)")
    return doc


def _to_revision(body: bytes, action: str) -> int | None:
    if not body.strip():
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or set(doc) - {"to_revision"}:
        raise InvalidInputError(
            f'the body of {action} is empty or {{"to_revision": N}} (rollback only)'
        )
    value = doc.get("to_revision")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"to_revision must be a revision number (1 or more), got {value!r}")
    return value


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("", "1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise InvalidInputError(f"query parameter {name} must be true or false, got {quoted(value)}")


def _limit(request: Request) -> int | None:
    value = request.query_params.get("limit")
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit() and 0 < len(text) <= 9) or int(text) < 1:
        raise InvalidInputError(
            f"query parameter limit must be a count (1 or more), got {quoted(value)}"
        )
    return int(text)


def _json(data: Any) -> Response:
    return Response(rest.encode_json(data), media_type="application/json")
