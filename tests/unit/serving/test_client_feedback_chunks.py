"""``Client.feedback`` with more labels than a server takes in one request sends several."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from seaway.client import Client


def _client(bodies: list[dict[str, Any]]) -> Client:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        count = len(body.get("items") or body.get("labels") or [])
        return httpx.Response(200, json={"model_name": "m", "accepted": count})

    client = Client("http://test")
    client._http = httpx.Client(base_url="http://test", transport=httpx.MockTransport(answer))
    return client


def test_labels_beyond_the_limit_go_as_items_in_several_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("seaway.monitoring.feedback.MAX_ITEMS", 3)
    bodies: list[dict[str, Any]] = []
    with _client(bodies) as client:
        assert client.feedback("m", "r", [1, 0, 1, 1, 0, 1, 1]) == 7
        assert bodies[0]["items"][0] == {"request_id": "r", "row": 0, "label": 1}
        assert [[i["row"] for i in b["items"]] for b in bodies] == [[0, 1, 2], [3, 4, 5], [6]]
        bodies.clear()
        assert client.feedback("m", "r", [1, 0, 1]) == 3  # within the limit: one request
        assert bodies == [{"request_id": "r", "labels": [1, 0, 1]}]
        bodies.clear()
        items = [{"request_id": f"r{n}", "label": "x"} for n in range(4)]
        assert client.feedback("m", items=items) == 4
        assert [len(b["items"]) for b in bodies] == [3, 1]
