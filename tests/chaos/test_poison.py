"""Chaos: a poison request (it crashes its replica) and a hanging one mixed into concurrent load,
two replicas, batching on. Every innocent request is answered 200 with its own answer; each
poison request gets the clear crash error (400, not retried); the hanging one gets 504 from the
call timeout. Nothing is lost, nothing hangs.

The model sleeps a little per call, so that with more clients than replicas requests queue and
merge: the poison lands in merged batches, which the server splits until it is alone (its log
says so, and the test checks that it did).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from _poison import CRASH, HANG, body, right, save
from _traffic import Traffic, figures, running

CLIENTS = 8
POISON = 3
WARM = 30  # innocent answers before the first poison request
AFTER = 60  # innocent answers after the last poison and hanging requests were answered


def test_poison_and_hang_hurt_only_themselves(seaway_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "poison"
    save(folder)
    args = [str(folder), "--trusted", "--replicas", "2", "--max-batch-size", "16"]
    args += ["--timeout", "30", "--call-timeout", "2"]
    env = {"SEAWAY_TEST_CALL_SLEEP": "0.05"}
    with running(args, seaway_home, tmp_path / "server.log", env=env) as server:
        url = f"{server.url}/v2/models/poison/infer"
        bad: list[tuple[str, int, str]] = []

        def send_bad(kind: str, value: float, ident: int) -> None:
            try:
                answer = httpx.post(url, json=body(value, ident), timeout=60)
            except httpx.TimeoutException:
                bad.append((kind, -1, "hung"))
            except httpx.TransportError as exc:
                bad.append((kind, -1, f"lost: {exc!r}"))
            else:
                bad.append((kind, answer.status_code, answer.json().get("error", "")))

        traffic = Traffic(url, lambda seed: body(float(seed % 1000), seed), right, CLIENTS)
        with traffic:
            traffic.wait_for(lambda done: len(done) >= WARM, "the load to get going")
            # one fault at a time, each mixed into the load (two at once could take down both
            # replicas by chance, each on its own: that is not what this test is about)
            for i in range(POISON):
                send_bad("crash", CRASH, i)
            send_bad("hang", HANG, 1)
            mark = len(traffic.outcomes)
            traffic.wait_for(lambda done: len(done) >= mark + AFTER, "answers after the faults")
        print(figures(traffic, "poison (innocent load)"), f"| bad requests: {sorted(bad)}")
        log = server.output()

    innocent: list[Any] = traffic.outcomes
    assert [o for o in innocent if o.status != 200 or not o.correct] == []
    assert len(bad) == POISON + 1
    for kind, status, error in bad:
        if kind == "crash":
            assert status == 400, (status, error)
            assert "the model crashed on this input" in error and "not retried" in error
        else:
            assert status == 504, (status, error)
            assert "call timeout" in error
    assert "splitting it to find the culprit" in log  # poison did land in merged batches
