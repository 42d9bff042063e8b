"""Whether this server traces requests: OpenTelemetry, when the ``OTEL_*`` variables ask for it.

Off by default, and then free: this module imports no OpenTelemetry, and the request path holds
None where a tracer would be (one ``is None`` test per step; the runtime's hook stays None). On
when ``OTEL_TRACES_EXPORTER`` names an exporter (anything but ``none``) or an OTLP endpoint is
set (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), unless
``OTEL_SDK_DISABLED`` is true. Everything else (sampler, service name, resource attributes, the
batch processor, OTLP headers and timeouts) the SDK reads from its own standard variables.

Tracing asked for but ``seaway[otel]`` not installed, or an exporter unknown: one warning that
says what to install, and the server serves untraced. A server is never refused for its traces.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from seaway.errors import ConfigError

if TYPE_CHECKING:
    from seaway.serving.otel import Tracing

log = logging.getLogger("seaway.serving")

#: Variables that turn tracing on (``OTEL_TRACES_EXPORTER`` unless it is ``none``).
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
#: Warned already in this process (or in the supervisor that forked it): warn once.
_warned = False


def requested(environ: Mapping[str, str]) -> bool:
    """Do these variables ask for traces?"""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return any(name.strip() not in ("", "none") for name in exporters.split(","))
    return any(environ.get(name, "").strip() for name in _ENDPOINTS)


def from_environment() -> Tracing | None:
    """This process's tracer as ``os.environ`` asks (installed for the runtime: the batcher and
    replicas report to it), or None: tracing off, or asked for and impossible (warned once).
    ``Tracing.close`` flushes and uninstalls it."""
    if not requested(os.environ):
        return None
    try:
        from seaway.serving.otel import Tracing
    except ImportError as exc:
        _warn_missing(exc)
        return None
    try:
        tracing = Tracing.from_environment()
    except (ConfigError, ImportError, ValueError) as exc:
        _warn(f"tracing is off: {exc}. Serving without tracing.")
        return None
    tracing.install()
    return tracing


def check_environment() -> None:
    """Warn now (before forking front workers) when tracing is asked for and the extra is
    missing, so that N workers say it once."""
    if not requested(os.environ):
        return
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as exc:
        _warn_missing(exc)


def _warn_missing(exc: ImportError) -> None:
    _warn(
        f"the OTEL_* variables ask for tracing, but OpenTelemetry is not installed ({exc}): "
        "pip install 'seaway[otel]'. Serving without tracing."
    )


def _warn(message: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(message)
