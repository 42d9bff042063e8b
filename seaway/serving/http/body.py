"""Reading request bodies: size limit first, then optional gzip/deflate, for every route.

A compressed body is inflated on the event loop up to ``OFF_LOOP_FROM`` bytes of output (small
requests, the common case, pay nothing more); the rest of a large one is inflated in a worker
thread, so one big upload does not stall every other request on the server meanwhile.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from seaway.errors import BodyTooLargeError, InvalidInputError, quoted

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

#: Inflated output past this many bytes is produced off the event loop.
OFF_LOOP_FROM = 256 * 1024


class ClientDisconnected(Exception):
    """The client went away before sending its whole body: there is no one to answer."""


async def read_body(
    receive: Receive,
    limit: int,
    content_length: str | None,
    content_encoding: str | None,
    *,
    setting: str | None = "--max-body-size",
) -> bytes:
    """The whole body, refused as soon as it passes ``limit`` bytes (declared or received);
    ``setting``: what sets the limit, for the refusal to name (None: the route's own, fixed)."""
    if (
        content_length is not None
        and content_length.isascii()
        and content_length.isdigit()
        and (len(content_length) > 18 or int(content_length) > limit)
    ):
        raise BodyTooLargeError(too_large(limit, setting))
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body: bytes = message.get("body", b"")
    if message.get("more_body", False):
        chunks, size = [body], len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError(too_large(limit, setting))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
    elif len(body) > limit:
        raise BodyTooLargeError(too_large(limit, setting))
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "deflate"):
        return await _decompress(body, encoding, limit, setting)
    if encoding not in ("", "identity"):
        raise InvalidInputError(
            f"Content-Encoding {quoted(encoding)} is not supported (use gzip or deflate)"
        )
    return body


def too_large(limit: int, setting: str | None = "--max-body-size") -> str:
    where = f"({setting})" if setting else "(this route's own limit)"
    return f"request body is larger than the limit of {limit} bytes {where}"


async def _decompress(body: bytes, encoding: str, limit: int, setting: str | None) -> bytes:
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    first = min(OFF_LOOP_FROM, limit + 1)
    try:
        data = inflater.decompress(body, first)
        if len(data) == first and not inflater.eof and len(data) <= limit:
            rest = limit + 1 - len(data)  # one byte past the limit tells "too large"
            data += await asyncio.to_thread(inflater.decompress, inflater.unconsumed_tail, rest)
    except zlib.error as exc:
        raise InvalidInputError(f"request body is not valid {encoding} data: {exc}") from exc
    if len(data) > limit:
        raise BodyTooLargeError(too_large(limit, setting))
    if not inflater.eof:
        raise InvalidInputError(f"request body is not valid {encoding} data: it ends too early")
    return data
