"""Adaptive batching through a real server: concurrent requests share model calls, and every
caller gets exactly its own rows back (the batcher's unit tests cover the edge cases)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import testmodels
from servers import Server


def test_concurrent_requests_are_batched_and_answered_with_their_own_rows(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    # each model call takes 250 ms, so requests pile up behind it: this client is slow to send
    # (on a slow day about 50 requests/s, which left 100 ms calls with 4-5 requests each)
    folder = tmp_path / "slow"
    testmodels.save(testmodels.Slow(), folder, columns=3)
    server = serve(
        str(folder), "--trusted", "--max-batch-size", "32", env={"SEAWAY_TEST_SLEEP": "0.25"}
    )
    requests = 200

    def rows(index: int) -> np.ndarray:
        base = index * 1000.0  # every request's rows sum to values no other request has
        return np.array([[base, 1, 2], [base, 3, 4]])

    async def one(client: httpx.AsyncClient, index: int) -> tuple[int, list[float]]:
        data = rows(index)
        body = {
            "inputs": [
                {
                    "name": "input",
                    "shape": [2, 3],
                    "datatype": "FP64",
                    "data": data.ravel().tolist(),
                }
            ]
        }
        answer = await client.post(f"{server.url}/v2/models/slow/infer", json=body)
        assert answer.status_code == 200, answer.text
        return index, answer.json()["outputs"][0]["data"]

    async def run() -> list[tuple[int, list[float]]]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            return await asyncio.gather(*(one(client, i) for i in range(requests)))

    for index, sums in asyncio.run(run()):
        assert sums == rows(index).sum(axis=1).tolist(), f"request {index}"

    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    calls = _sample(text, "seaway_batch_requests_count")
    merged = _sample(text, "seaway_batch_requests_sum")
    batched_rows = _sample(text, "seaway_batch_rows_sum")
    # the warm-up call is not counted; all 200 requests went through far fewer model calls
    assert merged == requests and batched_rows == 2 * requests
    assert calls < requests / 4, f"{calls} model calls for {requests} requests"
    assert _sample(text, 'seaway_batch_rows_bucket{le="32.0"') == calls  # never over 32 rows


def _sample(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{prefix} not in metrics:\n{text}")
