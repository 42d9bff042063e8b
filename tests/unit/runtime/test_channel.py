"""The replica's wire: one frame per message, whole, in order, whatever the read sizes."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest

from seaway.runtime.channel import Channel


@pytest.fixture
def pair() -> tuple[Channel, Channel, socket.socket, socket.socket]:
    left, right = socket.socketpair()
    yield Channel(left.fileno()), Channel(right.fileno()), left, right
    left.close()
    right.close()


def test_small_and_large_messages_arrive_whole(pair) -> None:
    sender, receiver, _, _ = pair
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
    sender, receiver, _, _ = pair
    for n in range(5):
        sender.send(("call", n))  # all in the socket before the first read takes them at once
    assert [receiver.recv() for _ in range(5)] == [("call", n) for n in range(5)]


def test_a_closed_end_is_eof_even_mid_message(pair) -> None:
    sender, receiver, left, _ = pair
    sender.send(None)
    assert receiver.recv() is None
    left.sendall(b"\x10\x00\x00\x00\x00\x00\x00\x00abc")  # says 16 bytes, sends 3, then closes
    left.close()
    with pytest.raises(EOFError, match="mid-message"):
        receiver.recv()
    with pytest.raises(EOFError):
        receiver.recv()
