"""Reading request bodies: size limit first, then optional gzip/deflate, for every route."""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from seaway.errors import BodyTooLargeError, InvalidInputError

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class ClientDisconnected(Exception):
    """The client went away before sending its whole body: there is no one to answer."""


async def read_body(
    receive: Receive, limit: int, content_length: str | None, content_encoding: str | None
) -> bytes:
    """The whole body, refused as soon as it passes ``limit`` bytes (declared or received)."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise BodyTooLargeError(too_large(limit))
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
                raise BodyTooLargeError(too_large(limit))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
    elif len(body) > limit:
        raise BodyTooLargeError(too_large(limit))
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "deflate"):
        return _decompress(body, encoding, limit)
    if encoding not in ("", "identity"):
        raise InvalidInputError(
            f"Content-Encoding {encoding!r} is not supported (use gzip or deflate)"
        )
    return body


def too_large(limit: int) -> str:
    return f"request body is larger than the limit of {limit} bytes (--max-body-size)"


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    try:
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        data = zlib.decompressobj(wbits).decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInputError(f"request body is not valid {encoding} data: {exc}") from exc
    if len(data) > limit:
        raise BodyTooLargeError(too_large(limit))
    return data
