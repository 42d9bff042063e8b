"""Structured logs with request ids.

Every adapter sets :data:`request_id` (the client's ``X-Request-ID``, or a fresh one) for the
duration of a request, so any log line written while serving it carries the id, and the same id
goes back to the client in the response. ``--log-format json`` (the default) writes one JSON
object per line; ``text`` is for humans at a terminal.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from random import Random
from typing import Any

import orjson

request_id: ContextVar[str | None] = ContextVar("seaway_request_id", default=None)

#: Ids we accept from clients: printable, no spaces, bounded (they end up in logs and headers).
_VALID_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
#: LogRecord attributes that are not user fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


def new_request_id(given: str | None) -> str:
    """The client's id when it is sane, else a new random one: 32 hex digits, like a UUID4's hex.

    An id names a request in logs, it guards nothing: a ``Random`` of our own (seeded from the OS,
    reseeded in forked children, untouched by anyone's ``random.seed``) takes 0.16 us where
    ``os.urandom`` makes a system call (0.9 us) and ``uuid.uuid4`` builds and checks an object
    around it (3 us), on every request."""
    if given and _VALID_ID.match(given):
        return given
    return _ids.getrandbits(128).to_bytes(16).hex()


_ids = Random()
os.register_at_fork(after_in_child=_ids.seed)

#: this process's front worker number under ``seaway serve --workers N`` (None: one process)
_worker: int | None = None


def set_worker(index: int | None) -> None:
    """Name the front worker this process is, in every log line from now on."""
    global _worker
    _worker = index


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid is not None:
            doc["request_id"] = rid
        if _worker is not None:
            doc["worker"] = _worker
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in doc:
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if _worker is not None:
            text = f"[worker {_worker}] {text}"
        rid = request_id.get()
        return f"{text} [request {rid}]" if rid else text


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """Route every logger (uvicorn's and grpc's included) through one stderr handler."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


_access = logging.getLogger("seaway.access")


def log_access(
    method: str,
    path: str,
    status: int | str,
    seconds: float,
    rid: str,
    labels: tuple[str, str] | None = None,
) -> None:
    """One access-log line (``--access-log``), for HTTP and gRPC alike."""
    extra: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "request_id": rid,
    }
    if labels and labels[0]:
        extra["model"], extra["model_version"] = labels
    _access.info("%s %s %s", method, path, status, extra=extra)
