"""Alerts in a real server (issue 11, item 5): an error-rate rule in the serve config fires to a
local webhook receiver and resolves, recorded in the registry (``seaway monitor alerts``) and
shown in /metrics; and a webhook that hangs does not hold up requests. Counts, never durations:
each loop sends requests until what it waits for has happened (its bound only stops a broken
test from hanging)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from alertmodels import body, save
from servers import Server
from sklearn.linear_model import LogisticRegression
from webhook_receiver import Receiver

import seaway
from seaway.cli.main import main

pytestmark = pytest.mark.slow
INFER = "/v2/models/picky/infer"


@pytest.fixture
def picky(tmp_path: Path) -> str:
    save(tmp_path / "picky-pkg")
    with seaway.Registry.from_settings() as registry:
        registry.register(tmp_path / "picky-pkg", "picky")
    return "models:/picky/1"


def config(tmp_path: Path, model: str, hook: dict[str, Any], **rule: Any) -> str:
    path = tmp_path / "serve.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "models": [model],
                "trusted": True,
                "alert_interval": 0.1,
                "alerts": [
                    {
                        "name": "picky-errors",
                        "model": "picky",
                        "error_rate_above": 0.2,
                        "window": "1s",
                        "severity": "critical",
                        **rule,
                    }
                ],
                "webhooks": [{"name": "hook", **hook}],
            }
        )
    )
    return str(path)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a /metrics text (None: absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def send_until(client: httpx.Client, value: float, status: int, done: Callable[[], bool]) -> int:
    """Send requests with ``value`` (each answered ``status``) until ``done()``; how many."""
    sent = 0
    deadline = time.monotonic() + 120
    while not done():
        assert time.monotonic() < deadline, f"still waiting after {sent} requests"
        answer = client.post(INFER, json=body(value))
        assert answer.status_code == status, answer.text
        sent += 1
    return sent


def test_an_error_rate_alert_fires_to_a_webhook_and_resolves(
    serve: Callable[..., Server],
    picky: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Receiver() as receiver:
        server = serve("--config", config(tmp_path, picky, {"url": receiver.url, "retries": 0}))
        with httpx.Client(base_url=server.url, timeout=30) as client:

            def firing() -> bool:
                metrics = client.get("/metrics").text
                shown = sample(metrics, "seaway_alert_firing", rule="picky-errors", version="1")
                return len(receiver.bodies) >= 1 and shown == 1.0

            # failing requests (the model raises on them: 400) until the alert fires
            assert send_until(client, -1.0, 400, firing) >= 1
            (fired,) = receiver.bodies

            # then good ones until the failures leave the 1 s window and it resolves
            def resolved() -> bool:
                nonlocal metrics
                metrics = client.get("/metrics").text
                sent = sample(
                    metrics, "seaway_webhook_deliveries_total", webhook="hook", result="sent"
                )
                return len(receiver.bodies) >= 2 and sent == 2  # counted once answered

            metrics = ""
            send_until(client, 1.0, 200, resolved)

    fired, resolved = receiver.bodies
    assert {
        k: fired[k] for k in ("rule", "model", "version", "state", "severity", "threshold")
    } == {
        "rule": "picky-errors",
        "model": "picky",
        "version": "1",
        "state": "firing",
        "severity": "critical",
        "threshold": 0.2,
    }
    assert fired["value"] > 0.2 and "error rate of picky/1" in fired["message"]
    assert fired["summary"].startswith("[FIRING] critical picky-errors: error rate of picky/1")
    assert resolved["state"] == "resolved" and resolved["value"] <= 0.2
    assert sample(metrics, "seaway_alert_firing", rule="picky-errors") == 0.0
    assert sample(metrics, "seaway_webhook_deliveries_total", webhook="hook", result="sent") == 2
    assert sample(metrics, "seaway_model_errors_total", model="picky", version="1") >= 1  # type: ignore[operator]

    # the registry has both events: seaway monitor alerts
    assert main(["monitor", "alerts", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert [(e["rule"], e["state"]) for e in events] == [
        ("picky-errors", "resolved"),
        ("picky-errors", "firing"),
    ]
    assert main(["monitor", "alerts", "--firing", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["monitor", "alerts", "--model", "picky"]) == 0
    table = capsys.readouterr().out
    assert "picky-errors" in table and "resolved" in table and "firing" in table


def test_a_hanging_webhook_does_not_hold_up_requests(
    serve: Callable[..., Server], picky: str, tmp_path: Path
) -> None:
    with Receiver(then="hang") as receiver:
        hook = {"url": receiver.url, "timeout": 60, "retries": 0, "queue": 1}
        server = serve("--config", config(tmp_path, picky, hook))
        with httpx.Client(base_url=server.url, timeout=30) as client:
            send_until(client, -1.0, 400, lambda: receiver.hanging >= 1)
            # the webhook holds the firing event; requests are answered all the same
            answered = [client.post(INFER, json=body(float(i))).status_code for i in range(100)]
            answered += [client.post(INFER, json=body(-1.0)).status_code for _ in range(20)]
            # and the evaluator goes on with its rounds
            rounds = sample(client.get("/metrics").text, "seaway_alert_evaluations_total")
            assert rounds is not None
            send_until(
                client,
                1.0,
                200,
                lambda: (
                    sample(client.get("/metrics").text, "seaway_alert_evaluations_total") > rounds
                ),  # type: ignore[operator]
            )
            assert receiver.hanging == 1
            metrics = client.get("/metrics").text
    assert answered == [200] * 100 + [400] * 20
    assert sample(metrics, "seaway_webhook_deliveries_total", webhook="hook", result="sent") == 0


def _columns(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [len(frame)], "data": frame[c].tolist()}
            for c in frame.columns
        ]
    }


def test_a_data_drift_alert_fires_on_shifted_traffic_and_the_gauges_show_it(
    serve: Callable[..., Server],
    tmp_path: Path,
    tabular: tuple[pd.DataFrame, np.ndarray],
) -> None:
    frame, target = tabular
    with seaway.Registry.from_settings() as registry:
        seaway.log_model(
            LogisticRegression().fit(frame, target),
            "fraud",
            sample_input=frame.head(5),
            reference_data=frame,
            registry=registry,
        )
    rng = np.random.default_rng(5)
    with Receiver() as receiver:
        path = tmp_path / "serve.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "models": ["models:/fraud/1"],
                    "log_sample": 1.0,
                    "log_flush_seconds": 0.2,
                    "alert_interval": 0.2,
                    "monitor_window": "30s",
                    "alerts": [
                        {
                            "name": "fraud-drift",
                            "model": "fraud",
                            "data_drift": True,
                            "window": "30s",
                        }
                    ],
                    "webhooks": [{"url": receiver.url, "retries": 0}],
                }
            )
        )
        server = serve("--config", str(path))
        with httpx.Client(base_url=server.url, timeout=30) as client:

            def drifted() -> bool:
                metrics = client.get("/metrics").text
                shown = sample(metrics, "seaway_drift_detected", model="fraud", version="1")
                return len(receiver.bodies) >= 1 and shown == 1.0

            deadline = time.monotonic() + 120
            while not drifted():
                assert time.monotonic() < deadline, "no drift alert"
                fresh = pd.DataFrame(rng.normal(size=(20, 4)), columns=frame.columns)
                shifted = fresh.assign(income=fresh["income"] + 3.0)  # a 3 sd shift in one input
                answer = client.post("/v2/models/fraud/infer", json=_columns(shifted))
                assert answer.status_code == 200, answer.text
            metrics = client.get("/metrics").text

    (fired,) = receiver.bodies[:1]
    assert (fired["rule"], fired["kind"], fired["state"]) == ("fraud-drift", "data_drift", "firing")
    assert "income" in fired["message"] and fired["threshold"] is None
    score = sample(metrics, "seaway_drift_score", model="fraud", feature="income")
    calm = sample(metrics, "seaway_drift_score", model="fraud", feature="age")
    assert score is not None and calm is not None and score > 1 and score > calm


def test_with_workers_one_evaluates_counting_every_workers_requests(
    serve: Callable[..., Server], picky: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        path = config(tmp_path, picky, {"url": receiver.url, "retries": 0}, window="3s")
        server = serve("--config", path, "--workers", "2")
        # both workers loaded: worker 0 listens while it loads, and the readiness probe may
        # have reached worker 1 first (a request to worker 0 then finds no model yet)
        deadline = time.monotonic() + 120
        while not all(f"worker {i} ready" in server.output() for i in (0, 1)):
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        # a new connection per request: the kernel spreads them over both workers
        fresh = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=server.url, timeout=30, limits=fresh) as client:
            send_until(client, -1.0, 400, lambda: len(receiver.bodies) >= 1)
            send_until(client, 1.0, 200, lambda: len(receiver.bodies) >= 2)
            # however long we look, no worker fires the alert a second time
            rounds = sample(client.get("/metrics").text, "seaway_alert_evaluations_total") or 0
            send_until(
                client,
                1.0,
                200,
                lambda: (
                    (sample(client.get("/metrics").text, "seaway_alert_evaluations_total") or 0)
                    > rounds + 20
                ),
            )
    assert [body["state"] for body in receiver.bodies] == ["firing", "resolved"]
