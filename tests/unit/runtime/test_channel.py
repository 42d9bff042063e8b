"""The replica's wire: one frame per message, whole, in order, whatever the read sizes."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from seaway.runtime.channel import Channel


@pytest.fixture
def pair() -> Iterator[tuple[Channel, Channel, int]]:
    """Two channels over two pipes, as a replica and its server hold them; and the raw write
    end of the pipe the receiving channel reads."""
    to_right_r, to_right_w = os.pipe()
    to_left_r, to_left_w = os.pipe()
    fds = [to_right_r, to_right_w, to_left_r, to_left_w]
    yield Channel(to_left_r, to_right_w), Channel(to_right_r, to_left_w), to_right_w
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def test_small_and_large_messages_arrive_whole(pair) -> None:
    sender, receiver, _ = pair
    small = ("ok", {"predict": np.arange(3)})
    large = {"x": np.random.default_rng(0).standard_normal((500, 100))}  # 400 KB: many reads
    # a large message outgrows the socket's buffer: the writer must run beside the reader
    writer = threading.Thread(target=lambda: (sender.send(small), sender.send(large)))
    writer.start()
    got_small, got_large = receiver.recv(), receiver.recv()
    writer.join()
    assert got_small[0] == "ok" and np.array_equal(got_small[1]["predict"], np.arange(3))
    assert np.array_equal(got_large["x"], large["x"])


def test_messages_read_together_are_kept_apart(pair) -> None:
    sender, receiver, _ = pair
    for n in range(5):
        sender.send(("call", n))  # all in the socket before the first read takes them at once
    assert [receiver.recv() for _ in range(5)] == [("call", n) for n in range(5)]


def test_a_closed_end_is_eof_even_mid_message(pair) -> None:
    sender, receiver, raw = pair
    sender.send(None)
    assert receiver.recv() is None
    os.write(raw, b"\x10\x00\x00\x00\x00\x00\x00\x00abc")  # says 16 bytes, sends 3, then closes
    os.close(raw)
    with pytest.raises(EOFError, match="mid-message"):
        receiver.recv()
    with pytest.raises(EOFError):
        receiver.recv()
