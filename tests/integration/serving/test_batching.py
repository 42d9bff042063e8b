"""Adaptive batching through a real server: concurrent requests share model calls, and every
caller gets exactly its own rows back (the batcher's unit tests cover the edge cases)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import numpy as np
from servers import Server


def test_concurrent_requests_are_batched_and_answered_with_their_own_rows(
    serve: Callable[..., Server], fraud_model
) -> None:
    model, frame = fraud_model
    server = serve("models:/fraud@production", "--max-latency-ms", "20", "--max-batch-size", "32")
    expected = model.predict_proba(frame)

    async def one(client: httpx.AsyncClient, index: int) -> tuple[int, list[list[float]]]:
        rows = frame.iloc[[index, (index * 7) % len(frame)]]  # two rows, unique per request
        body = {
            "inputs": [
                {
                    "name": "input",
                    "shape": [2, 4],
                    "datatype": "FP64",
                    "data": rows.to_numpy().ravel().tolist(),
                }
            ],
            "outputs": [{"name": "predict_proba"}],
        }
        answer = await client.post(f"{server.url}/v2/models/fraud/infer", json=body)
        assert answer.status_code == 200, answer.text
        data = answer.json()["outputs"][0]
        return index, np.asarray(data["data"]).reshape(data["shape"]).tolist()

    async def run() -> list[tuple[int, list[list[float]]]]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            return await asyncio.gather(*(one(client, i) for i in range(len(frame))))

    for index, probabilities in asyncio.run(run()):
        want = expected[[index, (index * 7) % len(frame)]]
        np.testing.assert_allclose(probabilities, want, err_msg=f"request {index}")

    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    calls = _sample(text, "seaway_batch_requests_count")
    requests = _sample(text, "seaway_batch_requests_sum")
    rows = _sample(text, "seaway_batch_rows_sum")
    # the warm-up call is not counted; all 200 requests went through fewer model calls
    assert requests == len(frame) and rows == 2 * len(frame)
    assert calls < len(frame) / 2, f"{calls} model calls for {requests} requests"
    assert _sample(text, 'seaway_batch_rows_bucket{le="32.0"') == calls  # never over 32 rows


def _sample(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{prefix} not in metrics:\n{text}")
