"""Bounded load for chaos tests: threads sending V2 requests, every outcome recorded, and the
figures every chaos test prints (sent, answered by status, lost, hung, time)."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from servers import Server, start_server


@contextlib.contextmanager
def running(args: list[str], home: Path, log: Path, **options: Any) -> Iterator[Server]:
    """A real ``seaway serve`` on free ports, killed afterwards whatever happened."""
    server = start_server(args, home, log, **options)
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)


@dataclass
class Outcome:
    sent: float  # when the request was handed to the client
    done: float  # when its answer (or failure) came back
    status: int | None  # None: no answer (see ``failure``)
    failure: str = ""  # "lost" (connection reset, refused, closed) or "hung" (client timeout)
    version: str = ""
    correct: bool = False


class Traffic:
    """``threads`` clients sending ``body()`` to ``url`` until stopped; ``check(doc)`` says
    whether a 200 answer is right. Outcomes are appended as they complete."""

    def __init__(
        self,
        url: str,
        body: Callable[[int], dict[str, Any]],
        check: Callable[[dict[str, Any], dict[str, Any]], bool],
        threads: int = 4,
        timeout: float = 60,
    ) -> None:
        self.url = url
        self.body = body
        self.check = check
        self.timeout = timeout
        self.outcomes: list[Outcome] = []
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]
        self.started = time.monotonic()

    def _run(self, seed: int) -> None:
        count = 0
        with httpx.Client(timeout=self.timeout) as client:
            while not self._stop.is_set():
                count += 1
                body = self.body(seed * 100_003 + count)
                sent = time.monotonic()
                try:
                    answer = client.post(self.url, json=body)
                except httpx.TimeoutException:
                    outcome = Outcome(sent, time.monotonic(), None, "hung")
                except httpx.TransportError:
                    outcome = Outcome(sent, time.monotonic(), None, "lost")
                else:
                    outcome = Outcome(sent, time.monotonic(), answer.status_code)
                    if answer.status_code == 200:
                        doc = answer.json()
                        outcome.version = doc.get("model_version", "")
                        outcome.correct = self.check(body, doc)
                    else:
                        outcome.version = answer.text[:200]
                with self.changed:
                    self.outcomes.append(outcome)
                    self.changed.notify_all()

    def wait_for(self, condition: Callable[[list[Outcome]], bool], what: str, timeout: float = 120):
        """Block until ``condition(outcomes)`` holds (checked on every answer)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not condition(self.outcomes):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}: {figures(self)}")
                self.changed.wait(min(left, 1.0))

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 30)
        self.finished = time.monotonic()


def figures(traffic: Traffic, name: str = "") -> str:
    outcomes = list(traffic.outcomes)
    statuses = Counter(o.status for o in outcomes if o.status is not None)
    lost = sum(1 for o in outcomes if o.failure == "lost")
    hung = sum(1 for o in outcomes if o.failure == "hung")
    seconds = getattr(traffic, "finished", time.monotonic()) - traffic.started
    by_status = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
    return (
        f"{name}: sent {len(outcomes)}, answered {{{by_status}}}, lost {lost}, hung {hung}, "
        f"time {seconds:.1f} s"
    )


def wait_for_log(server: Server, text: str, timeout: float = 120) -> None:
    """Block until the server's log holds ``text`` (a bound for a broken server)."""
    deadline = time.monotonic() + timeout
    while text not in server.output():
        if time.monotonic() > deadline or server.process.poll() is not None:
            raise AssertionError(f"the server never logged {text!r}:\n{server.output()[-3000:]}")
        time.sleep(0.1)
