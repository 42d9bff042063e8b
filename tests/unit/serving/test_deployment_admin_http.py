"""The deployments admin API over the ASGI app, with a fake control plane: each route calls it as
asked, with the API key's id as the actor, admin scope only, and bad requests get 4xx naming the
problem."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from seaway.apikeys import ApiKey, Scope, hash_api_key, new_api_key
from seaway.errors import ConflictError, NotFoundError
from seaway.serving.auth import Authenticator
from seaway.serving.control import DeploymentAdmin
from seaway.serving.dataplane import DataPlane
from seaway.serving.http.app import create_app
from seaway.serving.http.openapi import openapi_spec


class FakeAdmin:
    """Answers what it was asked, and remembers it."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def list_deployments(self) -> list[dict[str, Any]]:
        self.calls.append(("list",))
        return [{"name": "fraud-prod", "revision": 2}]

    async def get_deployment(self, name: str) -> dict[str, Any]:
        self.calls.append(("get", name))
        if name != "fraud-prod":
            raise NotFoundError(f"no deployment {name!r} (deployments: 'fraud-prod')")
        return {"name": name, "revision": 2}

    async def apply_deployment(
        self, spec: Mapping[str, Any], *, actor: str | None, dry_run: bool = False
    ) -> dict[str, Any]:
        self.calls.append(("apply", dict(spec), actor, dry_run))
        return {"revision": None if dry_run else 3, "unchanged": False}

    async def deployment_action(
        self, name: str, action: str, *, actor: str | None, to_revision: int | None = None
    ) -> dict[str, Any]:
        self.calls.append(("act", name, action, actor, to_revision))
        if action == "promote":
            raise ConflictError("deployment fraud-prod has no rollout in progress to promote")
        return {"deployment": name, "action": action}

    async def deployment_history(
        self, name: str, *, decisions: bool = False, limit: int | None = None
    ) -> dict[str, Any]:
        self.calls.append(("history", name, decisions, limit))
        return {"deployment": name, "revisions": []}

    async def deployment_results(self, name: str) -> dict[str, Any]:
        self.calls.append(("results", name))
        return {"deployment": name, "arms": {}}


def _app(admin: DeploymentAdmin | None, **kwargs: Any) -> Any:
    return create_app(DataPlane(), deployments=admin, **kwargs)


def _call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


SPEC = {"name": "fraud-prod", "model": "fraud", "routes": [{"version": 3, "weight": 100}]}


def test_each_route_calls_the_control_plane_as_asked() -> None:
    admin = FakeAdmin()
    app = _app(admin)
    assert _call(app, "GET", "/v2/deployments").json() == {
        "deployments": [{"name": "fraud-prod", "revision": 2}]
    }
    assert _call(app, "GET", "/v2/deployments/fraud-prod").json()["revision"] == 2
    assert _call(app, "POST", "/v2/deployments", json=SPEC).json()["revision"] == 3
    assert _call(app, "POST", "/v2/deployments?dry_run=true", json=SPEC).status_code == 200
    yaml_body = "name: fraud-prod\nmodel: fraud\nroutes:\n  - {version: 3, weight: 100}\n"
    as_yaml = _call(
        app,
        "POST",
        "/v2/deployments",
        content=yaml_body,
        headers={"content-type": "application/yaml"},
    )
    assert as_yaml.status_code == 200, as_yaml.text
    assert (
        _call(app, "GET", "/v2/deployments/fraud-prod/history?decisions=1&limit=5").status_code
        == 200
    )
    assert _call(app, "GET", "/v2/deployments/fraud-prod/results").status_code == 200
    assert _call(app, "POST", "/v2/deployments/fraud-prod/pause").status_code == 200
    back = _call(app, "POST", "/v2/deployments/fraud-prod/rollback", json={"to_revision": 1})
    assert back.status_code == 200
    assert _call(app, "DELETE", "/v2/deployments/fraud-prod").status_code == 200
    assert admin.calls == [
        ("list",),
        ("get", "fraud-prod"),
        ("apply", SPEC, None, False),
        ("apply", SPEC, None, True),
        ("apply", SPEC, None, False),
        ("history", "fraud-prod", True, 5),
        ("results", "fraud-prod"),
        ("act", "fraud-prod", "pause", None, None),
        ("act", "fraud-prod", "rollback", None, 1),
        ("act", "fraud-prod", "delete", None, None),
    ]


def test_the_control_planes_refusals_keep_their_status() -> None:
    app = _app(FakeAdmin())
    missing = _call(app, "GET", "/v2/deployments/nope")
    assert missing.status_code == 404 and "no deployment 'nope'" in missing.json()["error"]
    conflict = _call(app, "POST", "/v2/deployments/fraud-prod/promote")
    assert conflict.status_code == 409 and "no rollout" in conflict.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "message"),
    [
        ("POST", "/v2/deployments", {"content": b""}, "request body is empty"),
        ("POST", "/v2/deployments", {"content": b"{nope"}, "not valid JSON"),
        ("POST", "/v2/deployments", {"json": [1]}, "a deployment spec is an object"),
        (
            "POST",
            "/v2/deployments",
            {"content": b"a: [", "headers": {"content-type": "application/yaml"}},
            "not valid YAML",
        ),
        (
            "POST",
            "/v2/deployments",
            {"content": "routes: " + "[" * 50_000, "headers": {"content-type": "text/yaml"}},
            "nest",
        ),
        (
            "POST",
            "/v2/deployments",
            {"content": "a: " + "9" * 5000, "headers": {"content-type": "application/yaml"}},
            "digits",
        ),
        (
            "POST",
            "/v2/deployments",
            {"content": "a: &a [*a]", "headers": {"content-type": "application/yaml"}},
            "more than 10,000 values",
        ),
        ("POST", "/v2/deployments?dry_run=maybe", {"json": SPEC}, "dry_run must be true or false"),
        ("GET", "/v2/deployments/fraud-prod/history?limit=0", {}, "limit must be a count"),
        ("GET", "/v2/deployments/fraud-prod/history?limit=x", {}, "limit must be a count"),
        ("POST", "/v2/deployments/fraud-prod/explode", {}, "unknown action 'explode'"),
        ("POST", "/v2/deployments/fraud-prod/history", {}, "unknown action 'history'"),
        (
            "POST",
            "/v2/deployments/fraud-prod/rollback",
            {"json": {"to_revision": "two"}},
            "to_revision must be a revision number",
        ),
        ("POST", "/v2/deployments/fraud-prod/pause", {"json": {"x": 1}}, "rollback only"),
    ],
)
def test_bad_requests_get_400_naming_the_problem(
    method: str, path: str, kwargs: dict[str, Any], message: str
) -> None:
    admin = FakeAdmin()
    answer = _call(_app(admin), method, path, **kwargs)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]
    assert admin.calls == []


def test_a_server_without_deployments_says_so() -> None:
    answer = _call(_app(None), "GET", "/v2/deployments")
    assert answer.status_code == 400 and "no deployments API" in answer.json()["error"]


def test_admin_scope_is_needed_and_the_key_is_the_actor() -> None:
    authenticator = Authenticator()
    keys = {}
    for scope in (Scope.PREDICT, Scope.ADMIN):
        key_id, key = new_api_key()
        keys[scope] = (key_id, key)
    authenticator.update(
        ApiKey(key_id, scope, hash_api_key(key), created_at=datetime.now(UTC))
        for scope, (key_id, key) in keys.items()
    )
    admin = FakeAdmin()
    app = _app(admin, authenticator=authenticator)
    assert _call(app, "GET", "/v2/deployments").status_code == 401
    predict = {"authorization": f"Bearer {keys[Scope.PREDICT][1]}"}
    assert _call(app, "POST", "/v2/deployments", json=SPEC, headers=predict).status_code == 403
    allowed = {"authorization": f"Bearer {keys[Scope.ADMIN][1]}"}
    assert _call(app, "POST", "/v2/deployments", json=SPEC, headers=allowed).status_code == 200
    assert (
        _call(app, "POST", "/v2/deployments/fraud-prod/abort", headers=allowed).status_code == 200
    )
    actor = f"key:{keys[Scope.ADMIN][0]}"
    assert admin.calls == [
        ("apply", SPEC, actor, False),
        ("act", "fraud-prod", "abort", actor, None),
    ]


def test_openapi_describes_the_admin_routes() -> None:
    paths = openapi_spec("1")["paths"]
    assert set(paths["/v2/deployments"]) == {"get", "post"}
    assert set(paths["/v2/deployments/{name}"]) == {"get", "delete"}
    action = paths["/v2/deployments/{name}/{action}"]["post"]
    enum = next(p for p in action["parameters"] if p["name"] == "action")["schema"]["enum"]
    assert "rollback" in enum and "delete" not in enum
