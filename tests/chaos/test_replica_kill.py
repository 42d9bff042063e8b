"""Chaos: SIGKILL of a replica under concurrent load, with one and with two replicas. Nothing is
lost and nothing hangs: the call the killed replica held is retried once (a kill from outside
says nothing about the request), and the replica is restarted.

Every request is answered 200, with one replica too: requests that arrive while the only
replica restarts wait for it (an ordinary restart is short); only a restart that *fails* turns
them into an immediate 503 (tests/integration/serving/test_readiness.py covers that).

Replicas write their pid into a folder when they load, so the test knows whom to kill and sees
the restart.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from _poison import body, right, save
from _traffic import Traffic, figures, running

CLIENTS = 6
WARM = 30  # answers before the kill
AFTER = 60  # answers after the restarted replica loaded


@pytest.mark.parametrize("replicas", [1, 2])
def test_sigkill_under_load_loses_nothing(seaway_home: Path, tmp_path: Path, replicas: int) -> None:
    folder = tmp_path / "model"
    save(folder)
    pids = tmp_path / "pids"
    pids.mkdir()
    args = [str(folder), "--trusted", "--replicas", str(replicas), "--max-batch-size", "16"]
    env = {"SEAWAY_TEST_CALL_SLEEP": "0.02", "SEAWAY_TEST_PID_DIR": str(pids)}
    with running(args, seaway_home, tmp_path / "server.log", env=env) as server:
        url = f"{server.url}/v2/models/model/infer"
        traffic = Traffic(url, lambda seed: body(float(seed % 1000), seed), right, CLIENTS)
        with traffic:
            traffic.wait_for(lambda done: len(done) >= WARM, "the load to get going")
            started = {int(p.name) for p in pids.iterdir()}
            assert len(started) == replicas
            victim = min(started)
            os.kill(victim, signal.SIGKILL)
            deadline = time.monotonic() + 120
            while len(list(pids.iterdir())) == replicas:  # the restarted replica's pid
                assert time.monotonic() < deadline, "the killed replica was never restarted"
                time.sleep(0.05)
            mark = len(traffic.outcomes)
            traffic.wait_for(lambda done: len(done) >= mark + AFTER, "answers after the restart")
        print(figures(traffic, f"replica kill, {replicas} replica(s)"))

    outcomes = traffic.outcomes
    assert [o for o in outcomes if o.failure] == []  # 0 lost, 0 hung
    assert [o for o in outcomes if o.status == 200 and not o.correct] == []
    assert [o for o in outcomes if o.status != 200] == []
