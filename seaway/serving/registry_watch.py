"""Is the registry there? One probe per controller poll, and one log line per change.

A server keeps serving what it has loaded while its registry is away (the data plane never waits
on the database), so an outage is news, not an error: one warning when the registry becomes
unreachable (its URL and why, no traceback) and one line when it is back, however many polls
fail in between.

An SQLite registry is a file, and a file moved away under a running server is not noticed by
connections that hold it open: the probe checks that the file is still at its path before it
connects (connecting would create an empty database there), and each look opens the file anew
(a pooled connection would go on reading a moved or overwritten file; opening one is cheap next
to the poll interval).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from seaway.errors import SeawayError
from seaway.registry import Registry
from seaway.registry.db import safe_url

log = logging.getLogger("seaway.serving.controller")


def probe(registry: Registry) -> str:
    """ "" when the registry answers a small read, else why not (one line). Blocking: run it in
    a worker thread."""
    path = sqlite_file(registry.url)
    if path is not None:
        # pooled connections keep reading a file moved away or overwritten under them: drop
        # them, so this look (and the reconcile after it) opens the file at the path now
        registry.close()
        if not path.exists():
            return f"its database file {path} is missing (moved or deleted)"
    try:
        registry.active_api_keys()
    except Exception as exc:  # any driver error: a corrupt file is not an OperationalError
        registry.close()
        return describe(exc)
    return ""


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL; None for other databases and in-memory ones."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # a URI filename: leave it to SQLite
        return None
    return Path(database).expanduser()


def describe(exc: BaseException) -> str:
    """One line about ``exc``: Seaway errors say it themselves, others get their type."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(exc, SeawayError):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class RegistryWatch:
    """Remembers whether the registry was reachable at the last look, and logs changes only."""

    def __init__(self, url: str) -> None:
        self.url = safe_url(url)
        #: why the registry is unreachable now; "" while it is reachable
        self.problem = ""

    def down(self, reason: str) -> None:
        if not self.problem:
            log.warning(
                "registry %s is unreachable: %s. Serving continues with the models loaded now; "
                "alias moves and key changes are picked up once it is back",
                self.url,
                reason,
            )
        self.problem = reason

    def up(self) -> None:
        if self.problem:
            log.info("registry %s is reachable again; following it again", self.url)
        self.problem = ""
