"""What every REST request gets around its handler, in one place for both HTTP paths.

The routed path (``app.py``, Starlette) and the raw V2 infer endpoint (``infer.py``) answer in
different shapes (a Starlette ``Response``, raw ASGI messages), so they share the steps rather
than a wrapper: :meth:`Guard.enter` sets the request id (the client's ``X-Request-ID`` or a fresh
one), :meth:`Guard.authorize` checks the API key, :meth:`Guard.failure` turns an exception into
the status, body and headers of its answer (logging the unexpected ones with their request id,
answered 500 without a traceback), and :meth:`Guard.record` counts the request in the metrics and
writes the access log line. Each step is one plain call, so the hot path pays no more than it did
inline. ``tracing`` (None unless the ``OTEL_*`` variables turn it on, see ``tracing.py``) starts
the inference routes' server spans.
"""

from __future__ import annotations

import logging
import time
from contextvars import Token
from typing import TYPE_CHECKING

from seaway.apikeys import ApiKey
from seaway.errors import SeawayError
from seaway.protocol import mlflow_scoring, rest
from seaway.serving import logs
from seaway.serving.auth import Authenticator, Scope
from seaway.serving.http.errors import error_headers, status_for
from seaway.serving.metrics import Metrics

if TYPE_CHECKING:
    from seaway.serving.otel import Tracing

log = logging.getLogger("seaway.serving.http")

#: What a 500 says: the details (and the traceback) go to the server log, never to the client.
INTERNAL_ERROR = "internal server error; the server log has the details"


class Guard:
    """The request id, API key, error mapping, metrics and access log of one server."""

    __slots__ = ("access_log", "authenticator", "metrics", "tracing")

    def __init__(
        self,
        *,
        authenticator: Authenticator | None = None,
        metrics: Metrics | None = None,
        access_log: bool = False,
        tracing: Tracing | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.metrics = metrics
        self.access_log = access_log
        self.tracing = tracing

    @staticmethod
    def enter(given_id: str | None) -> tuple[str, Token[str | None]]:
        """The request's id, set for every log line until ``logs.request_id.reset(token)``."""
        rid = logs.new_request_id(given_id)
        return rid, logs.request_id.set(rid)

    def authorize(self, authorization: str | None, scope: Scope | None) -> ApiKey | None:
        """Raise ``AuthenticationError``/``PermissionDeniedError`` unless the key may do
        ``scope`` (None: a route open to all, such as health probes); the key, with auth on."""
        if self.authenticator is not None and scope is not None:
            return self.authenticator.check(authorization, scope)
        return None

    @staticmethod
    def failure(
        exc: Exception, method: str, path: str, *, mlflow: bool = False
    ) -> tuple[int, bytes, dict[str, str]]:
        """``(status, body, headers)`` answering ``exc``; call it inside the ``except`` block, so
        that an unexpected error is logged with its traceback. ``mlflow``: MLflow's error body
        (``{"error_code", "message"}``) instead of ``{"error": message}``."""
        if isinstance(exc, SeawayError):
            status = status_for(exc)
            message = str(exc)
            headers = error_headers(exc, status)
        else:
            log.exception("unexpected error on %s %s", method, path)
            status, message, headers = 500, INTERNAL_ERROR, {}
        if mlflow:
            return status, mlflow_scoring.encode_mlflow_error(message, status), headers
        return status, rest.encode_error(message), headers

    def record(
        self,
        protocol: str | None,
        method: str,
        path: str,
        status: int,
        started: float,
        rid: str,
        labels: tuple[str, str] | None,
    ) -> None:
        """Count the request (routes with a ``protocol`` only: the inference ones) and log it
        when the access log is on. ``labels``: the model and version that answered; None for an
        unknown model, whose name must never become a metric label."""
        metrics = self.metrics if protocol is not None else None
        if metrics is None and not self.access_log:
            return
        seconds = time.perf_counter() - started
        if metrics is not None:
            name, version = labels or ("", "")
            metrics.observe_request(protocol or "", name, version, str(status), seconds)
        if self.access_log:
            logs.log_access(method, path, status, seconds, rid, labels)
