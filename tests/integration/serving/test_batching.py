"""Adaptive batching through a real server: concurrent requests share model calls, and every
caller gets exactly its own rows back (the batcher's unit tests cover the edge cases).

Batching is observed by events and counts, never by timing: a gate request holds the only replica
busy (testmodels.Gated waits for a file) while the test queues its requests and watches the queue
depth reach them all; then the gate opens and the queued requests must leave in full batches.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import numpy as np
import testmodels
from servers import Server

MODEL = "gate"
REQUESTS = 200
MAX_BATCH_ROWS = 32
ROWS_PER_REQUEST = 2


def _rows(index: int) -> np.ndarray:
    base = index * 1000.0  # every request's rows sum to values no other request has
    return np.array([[0, base, 1], [0, base, 3]])  # a first value of 0: the model never sleeps


def _body(data: np.ndarray) -> dict[str, object]:
    return {
        "inputs": [
            {
                "name": "input",
                "shape": list(data.shape),
                "datatype": "FP64",
                "data": data.ravel().tolist(),
            }
        ]
    }


def test_concurrent_requests_are_batched_and_answered_with_their_own_rows(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    folder, gate = tmp_path / MODEL, tmp_path / "gate"
    gate.mkdir()
    testmodels.save_gated(folder, columns=3)
    # one replica; the timeout only bounds a broken test: a model call may take a quarter of it,
    # and the gate holds one while the requests queue
    server = serve(
        str(folder),
        "--trusted",
        "--max-batch-size",
        str(MAX_BATCH_ROWS),
        "--timeout",
        "120",
        env={"SEAWAY_TEST_GATE": str(gate)},
    )
    url = f"{server.url}/v2/models/{MODEL}/infer"

    async def one(client: httpx.AsyncClient, index: int) -> tuple[int, list[float]]:
        answer = await client.post(url, json=_body(_rows(index)))
        assert answer.status_code == 200, answer.text
        return index, answer.json()["outputs"][0]["data"]

    async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
        deadline = time.monotonic() + 60
        while not await condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.02)

    async def entered() -> bool:
        return (gate / "entered").exists()

    async def all_queued(client: httpx.AsyncClient) -> bool:
        text = (await client.get(f"{server.url}/metrics")).text
        return _sample(text, "seaway_queue_depth") == REQUESTS

    async def run() -> tuple[list[float], list[tuple[int, list[float]]]]:
        # a connection per request: every request is at the server at once, none waits here
        limits = httpx.Limits(max_connections=REQUESTS + 8)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            held = asyncio.ensure_future(client.post(url, json=_body(np.array([[-1.0, 0, 0]]))))
            await until(entered, "the gate request to reach the model")
            answers = asyncio.gather(*(one(client, i) for i in range(REQUESTS)))
            await until(lambda: all_queued(client), f"{REQUESTS} queued requests")
            (gate / "open").touch()
            first = await held
            assert first.status_code == 200, first.text
            return first.json()["outputs"][0]["data"], await answers

    gated, results = asyncio.run(run())
    assert gated == [-1.0]
    for index, sums in results:
        assert sums == _rows(index).sum(axis=1).tolist(), f"request {index}"

    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    calls = _sample(text, "seaway_batch_requests_count")
    merged = _sample(text, "seaway_batch_requests_sum")
    batched_rows = _sample(text, "seaway_batch_rows_sum")
    # the warm-up call is not counted; the gate's call went alone, then the 200 queued requests
    # left in batches as full as --max-batch-size allows (16 requests of 2 rows), oldest first
    per_batch = MAX_BATCH_ROWS // ROWS_PER_REQUEST
    assert merged == REQUESTS + 1 and batched_rows == ROWS_PER_REQUEST * REQUESTS + 1
    assert calls == 1 + math.ceil(REQUESTS / per_batch), f"{calls} model calls"
    assert _sample(text, 'seaway_batch_rows_bucket{le="32.0"') == calls  # never over 32 rows
    # all full but the gate's call and the last (200 = 12 * 16 + 8 requests: 16 rows)
    assert _sample(text, 'seaway_batch_rows_bucket{le="16.0"') == 2


def _sample(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{prefix} not in metrics:\n{text}")
