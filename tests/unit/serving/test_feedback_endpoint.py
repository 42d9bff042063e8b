"""POST /v2/models/{name}/feedback over the ASGI app, and the writer's group commit."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from seaway.apikeys import ApiKey, Scope, hash_api_key, new_api_key
from seaway.errors import ArtifactStoreError
from seaway.monitoring.feedback import FeedbackItem, read_feedback
from seaway.serving.auth import Authenticator
from seaway.serving.dataplane import DataPlane
from seaway.serving.feedback import FeedbackWriter
from seaway.serving.http.app import create_app
from seaway.serving.http.openapi import openapi_spec


@dataclass
class _Served:
    """What the routing table needs of a served version."""

    name: str
    version: str


def _app(root: Path | None, **kwargs: Any) -> Any:
    plane = DataPlane()
    plane.publish([_Served("fraud", "1"), _Served("fraud", "2")])  # type: ignore[list-item]
    writer = FeedbackWriter(str(root)) if root is not None else None
    return create_app(plane, feedback=writer, **kwargs)


def _post(app: Any, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, **kwargs)

    return asyncio.run(go())


def test_labels_per_row_and_items(tmp_path: Path) -> None:
    app = _app(tmp_path)
    one = _post(app, "/v2/models/fraud/feedback", json={"request_id": "r1", "labels": [1, 0, 1]})
    assert one.status_code == 200, one.text
    assert one.json() == {"model_name": "fraud", "accepted": 3}
    assert one.headers["x-request-id"]
    two = _post(
        app,
        "/v2/models/fraud/versions/2/feedback",
        json={
            "items": [
                {"request_id": "r1", "row": 1, "label": 1},
                {"request_id": "r9", "label": "x"},
            ]
        },
    )
    assert two.status_code == 200 and two.json()["accepted"] == 2
    stored = read_feedback("fraud", root=str(tmp_path))
    got = {(r.request_id, r.row): r.label for r in stored.itertuples()}
    assert got == {("r1", 0): "1", ("r1", 1): "1", ("r1", 2): "1", ("r9", 0): "x"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"{}", "either"),
        (b'{"request_id": "r", "labels": [1], "items": []}', "not both"),
        (b'{"request_id": "r", "labels": []}', "non-empty list"),
        (b'{"request_id": "", "labels": [1]}', '"request_id" must be'),
        (b'{"labels": [1]}', '"request_id" must be'),
        (b'{"request_id": "r", "labels": [null]}', "no label"),
        (b'{"items": [{"request_id": "r", "label": 1, "row": -2}]}', "row -2"),
        (b'{"items": "r"}', "non-empty list"),
        (b'{"request_id": "r", "labels": [1], "extra": 1}', "unknown field"),
    ],
)
def test_bad_bodies_get_400_naming_the_problem(tmp_path: Path, body: bytes, message: str) -> None:
    answer = _post(_app(tmp_path), "/v2/models/fraud/feedback", content=body)
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert not list(tmp_path.rglob("*.parquet"))


def test_unknown_model_or_version_is_404_and_feedback_off_is_400(tmp_path: Path) -> None:
    app = _app(tmp_path)
    assert _post(app, "/v2/models/nope/feedback", content=b"junk").status_code == 404
    assert _post(app, "/v2/models/fraud/versions/7/feedback", json={}).status_code == 404
    off = _post(_app(None), "/v2/models/fraud/feedback", json={"request_id": "r", "labels": [1]})
    assert off.status_code == 400 and "feedback is off" in off.json()["error"]


def test_feedback_needs_a_key_with_predict_scope(tmp_path: Path) -> None:
    authenticator = Authenticator()
    app = _app(tmp_path, authenticator=authenticator)
    body = {"request_id": "r", "labels": [1]}
    assert _post(app, "/v2/models/fraud/feedback", json=body).status_code == 401
    key_id, key = new_api_key()
    record = ApiKey(key_id, Scope.PREDICT, hash_api_key(key), created_at=datetime.now(UTC))
    authenticator.update([record])
    ok = _post(
        app, "/v2/models/fraud/feedback", json=body, headers={"authorization": f"Bearer {key}"}
    )
    assert ok.status_code == 200


def test_openapi_describes_the_feedback_routes() -> None:
    spec = openapi_spec("1")
    for path in ("/v2/models/{name}/feedback", "/v2/models/{name}/versions/{version}/feedback"):
        operation = spec["paths"][path]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/FeedbackRequest"
        }
        assert {"200", "400", "404"} <= set(operation["responses"])
    assert "FeedbackItem" in spec["components"]["schemas"]


def test_concurrent_requests_share_a_write() -> None:
    """While one part is being written, the requests that arrive are written together next."""
    calls: list[int] = []
    first_started, release = threading.Event(), threading.Event()

    def write(model: str, items: list[FeedbackItem], **kwargs: Any) -> int:
        calls.append(len(items))
        if len(calls) == 1:
            first_started.set()
            release.wait(10)
        return len(items)

    async def scenario() -> list[int]:
        writer = FeedbackWriter("unused", write=write)
        first = asyncio.create_task(writer.record("m", [FeedbackItem("a", 1)]))
        await asyncio.to_thread(first_started.wait, 10)
        rest = [
            asyncio.create_task(writer.record("m", [FeedbackItem(f"b{i}", 1)])) for i in range(19)
        ]
        await asyncio.sleep(0)  # all 19 are pending now
        release.set()
        answers = await asyncio.gather(first, *rest)
        await writer.close()
        return answers

    assert asyncio.run(scenario()) == [1] * 20
    assert calls == [1, 19]


def test_a_failed_write_fails_its_own_requests_only() -> None:
    def write(model: str, items: list[FeedbackItem], **kwargs: Any) -> int:
        if model == "bad":
            raise OSError("disk full")
        return len(items)

    async def scenario() -> list[Any]:
        writer = FeedbackWriter("unused", write=write)
        return await asyncio.gather(
            writer.record("good", [FeedbackItem("a", 1)]),
            writer.record("bad", [FeedbackItem("b", 1)]),
            return_exceptions=True,
        )

    good, bad = asyncio.run(scenario())
    assert good == 1 and isinstance(bad, ArtifactStoreError) and "disk full" in str(bad)


def test_more_labels_than_a_request_may_hold_is_413_naming_the_bulk_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # unbounded, a 9 MB body of 3 million labels held the event loop for seconds (every request
    # and health probe of the server waited) and a 64 MB one could exhaust memory
    monkeypatch.setattr("seaway.monitoring.feedback.MAX_ITEMS", 3)
    app = _app(tmp_path)
    for body in (
        {"request_id": "r", "labels": [1, 0, 1, 0]},
        {"items": [{"request_id": "r", "row": n, "label": 1} for n in range(4)]},
    ):
        answer = _post(app, "/v2/models/fraud/feedback", json=body)
        assert answer.status_code == 413, answer.text
        assert "at most 3" in answer.json()["error"]
        assert "seaway monitor feedback" in answer.json()["error"]
    assert not list(tmp_path.rglob("*.parquet"))
    ok = _post(app, "/v2/models/fraud/feedback", json={"request_id": "r", "labels": [1, 0, 1]})
    assert ok.status_code == 200 and ok.json()["accepted"] == 3


def test_the_body_is_checked_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking a large body's labels one by one is Python work: a thread's, not the loop's."""
    from seaway.serving.http import app as app_module

    threads: list[int] = []
    original = app_module.items_from_body

    def spy(doc: Any) -> list[FeedbackItem]:
        threads.append(threading.get_ident())
        return original(doc)

    monkeypatch.setattr(app_module, "items_from_body", spy)
    loop_thread: list[int] = []

    async def go() -> httpx.Response:
        loop_thread.append(threading.get_ident())
        transport = httpx.ASGITransport(app=_app(tmp_path))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(
                "/v2/models/fraud/feedback", json={"request_id": "r", "labels": [1]}
            )

    assert asyncio.run(go()).status_code == 200
    assert len(threads) == 1 and threads[0] != loop_thread[0]
