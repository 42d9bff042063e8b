"""Request bodies and answers: large (de)compression runs off the event loop, small stays on it;
malformed headers and bodies are 400s, never 500s."""

from __future__ import annotations

import asyncio
import gzip
import threading
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from seaway.errors import BodyTooLargeError, InvalidInputError
from seaway.serving.http import body as body_module
from seaway.serving.http import infer as infer_module
from seaway.serving.http.body import OFF_LOOP_FROM, read_body
from seaway.serving.http.infer import _header_length, compress


def _receive(data: bytes) -> Callable[[], Any]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": data, "more_body": False}

    return receive


def _threads_of(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    """Record the thread each call of ``module.name`` runs on."""
    seen: list[int] = []
    original = getattr(module, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return seen


async def _loop_thread() -> int:
    return threading.get_ident()


def test_a_large_answer_is_compressed_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _threads_of(monkeypatch, infer_module, "_compress")

    async def main() -> tuple[int, bytes, bytes | None, bytes, bytes | None]:
        small, small_coding = await compress(b"a" * 5000, "gzip")
        large, large_coding = await compress(b"b" * (OFF_LOOP_FROM + 1), "gzip, deflate")
        return await _loop_thread(), small, small_coding, large, large_coding

    loop_thread, small, small_coding, large, large_coding = asyncio.run(main())
    assert (small_coding, large_coding) == (b"gzip", b"gzip")
    assert gzip.decompress(small) == b"a" * 5000
    assert gzip.decompress(large) == b"b" * (OFF_LOOP_FROM + 1)
    assert seen[0] == loop_thread  # small answers stay inline: a thread would cost more
    assert seen[1] != loop_thread


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_large_body_is_inflated_off_the_loop(
    monkeypatch: pytest.MonkeyPatch, encoding: str
) -> None:
    threads: list[int] = []
    original = body_module.asyncio.to_thread

    async def to_thread(func: Any, *args: Any) -> Any:
        def run() -> Any:
            threads.append(threading.get_ident())
            return func(*args)

        return await original(run)

    monkeypatch.setattr(body_module.asyncio, "to_thread", to_thread)
    data = bytes(range(256)) * (OFF_LOOP_FROM // 256 * 3)
    packed = gzip.compress(data) if encoding == "gzip" else zlib.compress(data)

    async def main() -> tuple[int, bytes, bytes]:
        large = await read_body(_receive(packed), 64 << 20, None, encoding)
        small = await read_body(_receive(gzip.compress(b"{}")), 64 << 20, None, "gzip")
        return await _loop_thread(), large, small

    loop_thread, large, small = asyncio.run(main())
    assert large == data and small == b"{}"
    assert len(threads) == 1 and threads[0] != loop_thread  # the small body never left the loop


def test_inflating_stops_one_byte_past_the_limit() -> None:
    packed = gzip.compress(b"x" * (OFF_LOOP_FROM * 4))
    with pytest.raises(BodyTooLargeError):
        asyncio.run(read_body(_receive(packed), OFF_LOOP_FROM * 2, None, "gzip"))
    with pytest.raises(BodyTooLargeError):
        asyncio.run(read_body(_receive(packed), 1000, None, "gzip"))
    exact = asyncio.run(read_body(_receive(packed), OFF_LOOP_FROM * 4, None, "gzip"))
    assert len(exact) == OFF_LOOP_FROM * 4


@pytest.mark.parametrize("size", [100, OFF_LOOP_FROM * 2])
def test_a_truncated_compressed_body_is_refused(size: int) -> None:
    # before: the bytes inflated so far were taken as the whole body
    packed = gzip.compress(b"y" * size)[:-12]
    with pytest.raises(InvalidInputError, match="not valid gzip data: it ends too early"):
        asyncio.run(read_body(_receive(packed), 64 << 20, None, "gzip"))


def test_unsupported_encodings_are_quoted_briefly() -> None:
    with pytest.raises(InvalidInputError) as caught:
        asyncio.run(read_body(_receive(b"x"), 100, None, "br" * 10_000))
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize("value", ["²", "1²", "9" * 5000, "-1", "x", " 12a"])
def test_bad_header_lengths_are_400s(value: str) -> None:
    # "²" is a digit to str.isdigit but not to int(), and int() refuses 5000 digits: both were 500s
    with pytest.raises(InvalidInputError) as caught:
        _header_length(value)
    assert len(str(caught.value)) < 200


def test_good_header_lengths() -> None:
    assert _header_length(" 12 ") == 12
    assert _header_length(None) is None


def test_odd_content_lengths_fall_to_the_received_size_check() -> None:
    data = b"z" * 50
    assert asyncio.run(read_body(_receive(data), 100, "²", None)) == data
    with pytest.raises(BodyTooLargeError):
        asyncio.run(read_body(_receive(data), 100, "9" * 5000, None))
