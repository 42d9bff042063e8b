"""Chaos: SIGTERM under load. Every request the server had received before the signal is
answered (200, no connection reset), and the server exits 0.

When to signal is decided by counts, not sleeps: after enough answers, at a moment when every
client has a request fully written to the server and not yet answered. Clients use
``http.client`` so that "written" is known: ``request()`` returns once the bytes are sent.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import testmodels
from _traffic import running

CLIENTS = 6
WARM = 12  # answers before the signal
BODY = json.dumps(  # each model call sleeps 0.2 s: requests are in flight long enough to see
    {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [0.2, 1.0]}]}
)


def test_sigterm_under_load_answers_every_request_sent_before_it(
    seaway_home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "sleepy"
    testmodels.save_sleep_for(folder)
    with running([str(folder), "--trusted"], seaway_home, tmp_path / "server.log") as server:
        state = threading.Condition()
        in_flight = 0
        answered = 0
        signalled = False
        before: list[tuple[int | None, str]] = []  # (status, failure) of requests sent before
        after: list[tuple[int | None, str]] = []
        started = time.monotonic()

        def client() -> None:
            nonlocal in_flight, answered
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            while True:
                with state:
                    if signalled:
                        break
                try:
                    conn.request(
                        "POST",
                        "/v2/models/sleepy/infer",
                        body=BODY,
                        headers={"Content-Type": "application/json"},
                    )
                except OSError as exc:
                    with state:
                        after.append((None, f"lost: {exc!r}"))  # not written: the server is gone
                    break
                with state:
                    early = not signalled  # fully written before the signal
                    if early:
                        in_flight += 1
                        state.notify_all()
                outcome: tuple[int | None, str]
                try:
                    response = conn.getresponse()
                    response.read()
                    outcome = (response.status, "")
                except TimeoutError:
                    outcome = (None, "hung")
                except (OSError, http.client.HTTPException) as exc:
                    outcome = (None, f"lost: {exc!r}")
                with state:
                    (before if early else after).append(outcome)
                    if early:
                        in_flight -= 1
                        answered += 1
                        state.notify_all()
                if outcome[0] is None:
                    break
            conn.close()

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        with state:
            deadline = time.monotonic() + 120
            while answered < WARM or in_flight < CLIENTS:
                assert time.monotonic() < deadline, "the load never got going"
                state.wait(1.0)
            waiting = in_flight  # every client has a request written and not answered
            server.process.send_signal(signal.SIGTERM)
            signalled = True
        code = server.process.wait(120)
        for thread in threads:
            thread.join(90)
        seconds = time.monotonic() - started

    everything = before + after
    statuses = Counter(status for status, _ in everything if status is not None)
    lost = sum(1 for _, failure in everything if failure.startswith("lost"))
    hung = sum(1 for _, failure in everything if failure == "hung")
    print(
        f"sigterm: sent {len(everything)}, answered {dict(statuses)}, lost {lost}, hung {hung}, "
        f"time {seconds:.1f} s; {waiting} in flight at the signal, {len(after)} sent after it"
    )
    assert waiting == CLIENTS
    assert [o for o in before if o != (200, "")] == [], before
    assert len(before) >= WARM + CLIENTS
    assert code == 0, server.output()[-3000:]
