"""Hot swap: moving an alias (or the repository API) swaps versions under load, losing nothing."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import testmodels
from servers import Server, replica_pids
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import seaway


@pytest.fixture
def versions(tabular: tuple[pd.DataFrame, np.ndarray]) -> dict[str, Any]:
    """fraud/1 and fraud/2 predict opposite classes, so an answer shows which version gave it."""
    frame, target = tabular
    first = LogisticRegression().fit(frame, target)
    second = LogisticRegression().fit(frame, 1 - target)
    with seaway.Registry.from_settings() as registry:
        seaway.log_model(first, "fraud", sample_input=frame.head(10), registry=registry)
        seaway.log_model(second, "fraud", sample_input=frame.head(10), registry=registry)
        registry.set_alias("fraud", "production", 1)
    return {"1": first, "2": second, "frame": frame}


def _body(rows: pd.DataFrame) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].tolist()}
            for c in rows.columns
        ],
        "outputs": [{"name": "predict"}],
    }


class Load:
    """Threads sending requests until stopped, recording (status, version, correct), and for each
    answer the tickets (one counter, in event order) drawn when it was sent and when it came."""

    def __init__(self, url: str, versions: dict[str, Any], threads: int = 4) -> None:
        self.url = url
        self.versions = versions
        self.results: list[tuple[int, str, bool]] = []
        self.tickets: list[tuple[int, int]] = []  # (sent, received), beside each result
        self._clock = itertools.count()  # next() is atomic under the GIL
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, seed: int) -> None:
        frame = self.versions["frame"]
        rng = np.random.default_rng(seed)
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                rows = frame.iloc[rng.integers(0, len(frame), size=int(rng.integers(1, 5)))]
                sent = next(self._clock)
                answer = client.post(f"{self.url}/v2/models/fraud/infer", json=_body(rows))
                received = next(self._clock)
                if answer.status_code != 200:
                    result = (answer.status_code, answer.text, False)
                else:
                    doc = answer.json()
                    version = doc["model_version"]
                    expected = self.versions[version].predict(rows).tolist()
                    result = (200, version, doc["outputs"][0]["data"] == expected)
                with self._lock:
                    self.results.append(result)
                    self.tickets.append((sent, received))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def wait_for_version(self, version: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            recent = self.results[-20:]
            if len(recent) == 20 and all(r[1] == version for r in recent):
                return
            time.sleep(0.1)
        raise AssertionError(f"version {version} never took over: {self.results[-5:]}")

    def wait_for_answers(self, count: int, timeout: float = 60) -> None:
        """Until ``count`` more answers have come (an event to wait for, not a time)."""
        target = len(self.results) + count
        deadline = time.monotonic() + timeout
        while len(self.results) < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} answers in {timeout} s")
            time.sleep(0.05)


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _index(url: str) -> list[dict[str, Any]]:
    answer = httpx.post(f"{url}/v2/repository/index", timeout=30)
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def test_moving_the_alias_swaps_versions_under_load_with_zero_failures(
    serve: Callable[..., Server], versions: dict[str, Any]
) -> None:
    server = serve("models:/fraud@production", "--poll-interval", "0.2")
    with Load(server.url, versions) as load:
        load.wait_for_answers(20)
        with seaway.Registry.from_settings() as registry:
            registry.set_alias("fraud", "production", 2)
        load.wait_for_version("2")
        load.wait_for_answers(20)
    failures = [r for r in load.results if r[0] != 200 or not r[2]]
    assert not failures, failures[:5]
    seen = [r[1] for r in load.results]
    assert seen[0] == "1" and seen[-1] == "2"
    # once version 2 answers, version 1 never does again: the switch is one atomic publish. So
    # every request sent after the first version-2 answer came is answered by version 2 (those
    # sent before may still land late, from version 1: requests in flight, not a race).
    first_two = min(
        received for (_, received), v in zip(load.tickets, seen, strict=True) if v == "2"
    )
    late = [
        sent
        for (sent, _), v in zip(load.tickets, seen, strict=True)
        if v == "1" and sent > first_two
    ]
    assert not late, (first_two, late)
    entries = _index(server.url)
    assert [(e["name"], e["version"], e["state"]) for e in entries] == [("fraud", "2", "READY")]
    assert "draining model fraud version 1" in server.output()
    _wait_for(lambda: "stopped model fraud version 1" in server.output(), "v1 to stop")
    assert len(replica_pids(server.process.pid)) == 1


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(
    serve: Callable[..., Server], versions: dict[str, Any], tmp_path: Path
) -> None:
    frame = versions["frame"]
    # a pipeline with a custom function needs trusted=True to load; the server is not trusted
    untrusted = make_pipeline(FunctionTransformer(testmodels.negate), LogisticRegression())
    untrusted.fit(frame, (frame["age"] > 0).astype(int))
    with seaway.Registry.from_settings() as registry:
        seaway.log_model(untrusted, "fraud", sample_input=frame.head(5), registry=registry)
    server = serve("models:/fraud@production", "--poll-interval", "0.2")
    with Load(server.url, versions) as load:
        load.wait_for_answers(10)
        with seaway.Registry.from_settings() as registry:
            registry.set_alias("fraud", "production", 3)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = {e["version"]: e for e in _index(server.url)}
            if "3" in states and states["3"]["state"] == "UNAVAILABLE":
                break
            time.sleep(0.2)
        load.wait_for_answers(10)  # answered after version 3 failed, still by version 1
    assert states["1"]["state"] == "READY"
    assert "trusted" in states["3"]["reason"] and "negate" in states["3"]["reason"]
    assert load.results and all(r[0] == 200 and r[1] == "1" and r[2] for r in load.results)
    # the failure is logged once, not retried on every poll
    assert server.output().count("version 3 failed to load") == 1


def test_repository_api_loads_and_unloads(
    serve: Callable[..., Server], versions: dict[str, Any]
) -> None:
    server = serve("models:/fraud/1")
    rows = versions["frame"].head(3)
    url = server.url

    def infer() -> httpx.Response:
        return httpx.post(f"{url}/v2/models/fraud/infer", json=_body(rows), timeout=30)

    load = httpx.post(
        f"{url}/v2/repository/models/fraud/load", json={"parameters": {"version": 2}}, timeout=60
    )
    assert load.status_code == 200, load.text
    answer = infer()
    assert answer.json()["model_version"] == "2"
    assert answer.json()["outputs"][0]["data"] == versions["2"].predict(rows).tolist()

    missing = httpx.post(
        f"{url}/v2/repository/models/fraud/load", json={"parameters": {"version": 9}}, timeout=60
    )
    assert missing.status_code == 404 and "version 9" in missing.json()["error"]
    bad = httpx.post(
        f"{url}/v2/repository/models/fraud/load", json={"parameters": {"config": "{}"}}, timeout=60
    )
    assert bad.status_code == 400 and "config" in bad.json()["error"]
    assert infer().json()["model_version"] == "2"  # failed loads changed nothing

    assert httpx.post(f"{url}/v2/repository/models/fraud/unload", timeout=60).status_code == 200
    gone = infer()
    assert gone.status_code == 404
    assert _index(url) == []
    assert httpx.get(f"{url}/v2/health/ready", timeout=10).status_code == 503
    again = httpx.post(f"{url}/v2/repository/models/fraud/unload", timeout=60)
    assert again.status_code == 404

    # no parameters: the latest version
    assert httpx.post(f"{url}/v2/repository/models/fraud/load", timeout=60).status_code == 200
    assert infer().json()["model_version"] == "2"
