"""The request's headers, for the data plane: an A/B test's sticky key is often a header.

The data plane is transport-agnostic and takes decoded requests, but a deployment that assigns
versions by a header (``ab.key.header: X-User-ID``) must read it. Each adapter sets
:data:`headers` for the duration of a request to what it already holds, without copying: the
raw ASGI header list on REST (``[(b"x-user-id", b"42"), ...]``), the metadata mapping on gRPC
(lower-case keys). :func:`header` looks one up in either, only when a deployment asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar

#: raw ASGI headers (lower-case byte names) or a lower-case str mapping; None outside a request
Headers = Sequence[tuple[bytes, bytes]] | Mapping[str, str]

headers: ContextVar[Headers | None] = ContextVar("seaway_request_headers", default=None)


def header(name: str) -> str | None:
    """The current request's header ``name`` (any case), or None (no such header, or no
    request). The first one wins when a header is repeated."""
    held = headers.get()
    if held is None:
        return None
    wanted = name.lower()
    if isinstance(held, Mapping):
        found = held.get(wanted)
        return found if isinstance(found, str) else None
    key = wanted.encode("latin-1")
    for item, raw in held:
        if item == key:
            return raw.decode("latin-1")
    return None
