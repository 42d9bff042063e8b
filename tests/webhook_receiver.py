"""A webhook receiver on 127.0.0.1 for the alert tests: records each POST and answers as told.

``plan`` holds the answers to give, in order (an HTTP status, or ``"hang"``: hold the request
until :meth:`Receiver.release`); once it is used up every request gets ``then``. Tests wait for
what they expect with :meth:`Receiver.wait_for` (a count of requests), never for a time.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, plan: list[int | str] | None = None, then: int | str = 200) -> None:
        self.plan = list(plan or [])
        self.then = then
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.hanging = 0
        self._released = threading.Event()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                with receiver._changed:
                    receiver.requests.append((dict(self.headers.items()), body))
                    answer = receiver.plan.pop(0) if receiver.plan else receiver.then
                    if answer == "hang":
                        receiver.hanging += 1
                    receiver._changed.notify_all()
                if answer == "hang":
                    receiver._released.wait(60)
                    answer = 200
                try:
                    self.send_response(int(answer))
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:  # the sender gave up on us
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    def release(self) -> None:
        """Let every hanging request (and later ones planned to hang) answer."""
        self._released.set()

    @property
    def bodies(self) -> list[Any]:
        with self._changed:
            return [body for _, body in self.requests]

    def wait_for(self, done: Callable[[Receiver], bool], timeout: float = 60) -> None:
        """Block until ``done(self)``; the timeout only stops a broken test from hanging."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the receiver got {len(self.requests)} requests")
                self._changed.wait(min(left, 0.5))
