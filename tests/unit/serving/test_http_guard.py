"""The routed REST path and the raw V2 infer endpoint take the same guard steps (request id, key,
error mapping, metrics, access log) from one ``Guard``: one copy, so they cannot drift apart."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from seaway.serving.dataplane import DataPlane
from seaway.serving.http import guard as guard_module
from seaway.serving.http.app import HttpOptions, create_app
from seaway.serving.http.guard import INTERNAL_ERROR, Guard
from seaway.serving.metrics import Metrics


def _call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def test_both_paths_share_one_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded: list[tuple[str | None, str, int]] = []
    original = Guard.record

    def spy(
        self: Guard, protocol: str | None, method: str, path: str, status: int, *a: Any
    ) -> None:
        recorded.append((protocol, path, status))
        original(self, protocol, method, path, status, *a)

    monkeypatch.setattr(Guard, "record", spy)
    app = create_app(DataPlane(), options=HttpOptions(access_log=True), metrics=Metrics())
    routed = _call(app, "GET", "/v2/models/nope", headers={"x-request-id": "abc-1"})
    infer = _call(app, "POST", "/v2/models/nope/infer", json={"inputs": []})
    assert routed.status_code == infer.status_code == 404
    assert routed.headers["x-request-id"] == "abc-1" and infer.headers["x-request-id"]
    assert "nope" in routed.json()["error"] and "nope" in infer.json()["error"]
    assert recorded == [
        (None, "/v2/models/nope", 404),
        ("rest", "/v2/models/nope/infer", 404),
    ]
    assert isinstance(app.infer.guard, Guard)


def test_an_unexpected_error_is_answered_alike_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    plane = DataPlane()

    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(plane, "get", broken)
    monkeypatch.setattr(plane, "metadata", broken)
    app = create_app(plane)
    with caplog.at_level(logging.ERROR, logger=guard_module.log.name):
        routed = _call(app, "GET", "/v2/models/m")
        infer = _call(app, "POST", "/v2/models/m/infer", json={"inputs": []})
    assert routed.status_code == infer.status_code == 500
    assert routed.json() == infer.json() == {"error": INTERNAL_ERROR}
    assert "a bug" not in routed.text + infer.text  # no traceback to the client
    logged = [r for r in caplog.records if r.exc_info and "a bug" in str(r.exc_info[1])]
    assert [r.getMessage() for r in logged] == [
        "unexpected error on GET /v2/models/m",
        "unexpected error on POST /v2/models/m/infer",
    ]
