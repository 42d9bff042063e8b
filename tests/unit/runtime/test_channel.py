"""The replica's wire: one frame per message, whole, in order, whatever the read sizes; arrays
raw, exactly as sent."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import numpy as np
import pandas as pd
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
    large = {"x": np.random.default_rng(0).standard_normal((500, 100))}  # 400 KB: many reads
    # a large message outgrows the pipe's buffer: the writer must run beside the reader
    again = {"x": large["x"] + 1}  # the same layout: its frame start now comes from the cache
    lone = np.arange(60_000.0)  # one large array, twice
    writer = threading.Thread(
        target=lambda: (
            sender.send("ok", {"predict": np.arange(3)}),
            sender.send("big", large),
            sender.send("big", again),
            sender.send(("predict",), lone),
            sender.send(("predict",), lone[::-1]),  # not contiguous
        )
    )
    writer.start()
    (head, small), (big_head, big), (_, big_again) = (
        receiver.recv(),
        receiver.recv(),
        receiver.recv(),
    )
    (_, first), (_, second) = receiver.recv(), receiver.recv()
    writer.join()
    assert head == "ok" and np.array_equal(small["predict"], np.arange(3))
    assert big_head == "big" and np.array_equal(big["x"], large["x"])
    assert np.array_equal(big_again["x"], again["x"])
    assert np.array_equal(first, lone) and np.array_equal(second, lone[::-1])


def test_messages_read_together_are_kept_apart(pair) -> None:
    sender, receiver, _ = pair
    for n in range(5):  # all in the pipe before the first read takes them at once
        sender.send(("call", n), np.full(n, n) if n % 2 else n)
    got = [receiver.recv() for _ in range(5)]
    assert [head for head, _ in got] == [("call", n) for n in range(5)]
    assert [body.tolist() if n % 2 else body for n, (_, body) in enumerate(got)] == [
        0,
        [1],
        2,
        [3, 3, 3],
        4,
    ]


def test_a_closed_end_is_eof_even_mid_message(pair) -> None:
    sender, receiver, raw = pair
    sender.send(None)
    assert receiver.recv() == (None, None)
    os.write(raw, b"\x10\x00\x00\x00\x00\x00\x00\x00abcd")  # says 16 bytes, sends 4, then closes
    os.close(raw)
    with pytest.raises(EOFError, match="mid-message"):
        receiver.recv()
    with pytest.raises(EOFError):
        receiver.recv()


RAW = [
    np.arange(3),
    np.zeros((0, 5)),
    np.array(3.5),  # 0-d
    np.arange(6, dtype=">i4").reshape(2, 3),  # big-endian stays big-endian
    np.array([True, False, True]),
    np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[ns]"),
    np.arange(6, dtype=np.complex64),
    np.arange(12.0).reshape(3, 4)[:, ::2],  # not contiguous
    np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    np.random.default_rng(1).standard_normal((300, 300)),  # larger than one read
]


@pytest.mark.parametrize("array", RAW, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_arrays_arrive_equal_aligned_and_writable(pair, array) -> None:
    sender, receiver, _ = pair
    body = {"a": array, "b": np.arange(5, dtype=np.int8)}
    writer = threading.Thread(target=lambda: (sender.send("one", array), sender.send("many", body)))
    writer.start()
    (head, one), (many_head, many) = receiver.recv(), receiver.recv()
    writer.join()
    assert (head, many_head) == ("one", "many")
    for got, sent in [(one, array), (many["a"], array), (many["b"], body["b"])]:
        assert type(got) is np.ndarray and got.dtype == sent.dtype and got.shape == sent.shape
        assert np.array_equal(got, sent)
        assert got.flags.writeable and got.flags.c_contiguous
        assert got.size == 0 or got.ctypes.data % 16 == 0  # aligned, whatever the header's size
    assert list(many) == ["a", "b"]


def test_bodies_that_are_not_plain_arrays_are_pickled_whole(pair) -> None:
    sender, receiver, _ = pair
    frame = pd.DataFrame({"x": [1.0, 2.0], "city": ["Oslo", "Lima"]})
    bodies = [
        frame,
        np.array(["cat", "dog"], dtype=object),
        {"x": np.arange(2), "label": np.array(["a", "b"])},  # one column of strings: all pickled
        np.zeros(2, dtype=[("a", "f8"), ("b", "i4")]),  # structured
        None,
        {},
    ]
    for body in bodies:
        sender.send("h", body)
        head, got = receiver.recv()
        assert head == "h"
        if isinstance(body, pd.DataFrame):
            pd.testing.assert_frame_equal(got, body)
        elif isinstance(body, dict):
            assert list(got) == list(body)
            assert all(np.array_equal(got[k], body[k]) for k in body)
        elif body is None:
            assert got is None
        else:
            assert got.dtype == body.dtype and np.array_equal(got, body)


def test_repeated_layouts_reuse_their_meta_and_still_carry_each_message(pair) -> None:
    sender, receiver, _ = pair
    sent = [
        (("predict",), np.array([[1.0, 2.0]])),
        (("predict",), np.array([[3.0, 4.0]])),  # same layout, other values
        (("predict",), np.array([[5.0, 6.0], [7.0, 8.0]])),  # more rows
        (("predict",), np.array([[1, 2]], dtype="<i4")),
        (("predict",), np.array([[1, 2]], dtype=">i4")),  # equal values, other byte order
        (("predict", "proba"), np.array([[1.0, 2.0]])),  # another head
        (["a", "list"], np.array([9.0])),  # an unhashable head is not cached, still sent
        ("ok", {"predict": np.array([1, 0])}),  # answers: arrays by name
        ("ok", {"predict": np.array([0, 1])}),
        ("ok", {"predict": np.array([1.5, 0.5])}),  # same name, other dtype
        ("ok", {"predict": np.array([1]), "proba": np.array([[0.2, 0.8]])}),
        ("ok", {"predict": np.array([0]), "proba": np.array([[0.9, 0.1]])}),
        ("ok", {"proba": np.array([[0.9, 0.1]]), "predict": np.array([0])}),  # other order
    ]
    for _ in range(2):
        for head, body in sent:
            sender.send(head, body)
            got_head, got = receiver.recv()
            assert got_head == head
            if isinstance(body, dict):
                assert list(got) == list(body)
                for name, value in body.items():
                    assert got[name].dtype == value.dtype and np.array_equal(got[name], value)
            else:
                assert got.dtype == body.dtype and np.array_equal(got, body)
    assert len(sender._sent) == 9 and len(receiver._seen) == 9  # one per hashable layout


def test_the_loop_side_never_blocks_on_a_large_frame() -> None:
    """The parent's side (``defer_large``, ``poll``): a large frame is handed back to be written
    from a thread, and is read piece by piece as it comes. Its read end is non-blocking here, so a
    read that would wait raises instead of hanging the test."""
    to_parent_r, to_parent_w = os.pipe()
    to_child_r, to_child_w = os.pipe()
    parent = Channel(to_parent_r, to_child_w, defer_large=True)
    child = Channel(to_child_r, to_parent_w)
    os.set_blocking(to_parent_r, False)
    try:
        small = np.arange(4.0)
        assert parent.send(("predict",), small) is None  # small: written at once, as ever
        assert np.array_equal(child.recv()[1], small)
        big = np.random.default_rng(2).standard_normal((200, 500))  # 800 KB
        words = pd.DataFrame({"w": [f"word {i}" for i in range(20_000)]})  # pickled, 200 KB
        for body in (big, {"x": big}, words):
            parts = parent.send(("predict",), body)  # large: nothing written yet
            assert parts is not None
            writer = threading.Thread(target=parent.write_parts, args=(parts,))
            writer.start()
            head, got = child.recv()
            writer.join()
            assert head == ("predict",)
            if isinstance(body, pd.DataFrame):
                pd.testing.assert_frame_equal(got, body)
            else:
                assert np.array_equal(got if isinstance(body, np.ndarray) else got["x"], big)

        # a large answer arrives in pieces: poll reads what is there, None until the frame is whole
        framing = Channel(-1, -1, defer_large=True)
        data = b"".join(bytes(part) for part in framing.send("ok", {"predict": big}) or [])
        polls, offset, message = 0, 0, None
        while message is None:
            piece = data[offset : offset + 50_000]  # a pipe holds 64 KiB
            os.write(to_parent_w, piece)
            offset += len(piece)
            message = parent.poll()
            polls += 1
            if message is None:
                with pytest.raises(BlockingIOError):  # it took all there was, and did not wait
                    os.read(to_parent_r, 1)
        assert offset == len(data) and polls == -(-len(data) // 50_000)
        head, answer = message
        assert head == "ok" and np.array_equal(answer["predict"], big)
        os.write(to_parent_w, data[:10])  # even a frame's first bytes alone: no wait
        assert parent.poll() is None
    finally:
        for fd in (to_parent_r, to_parent_w, to_child_r, to_child_w):
            with contextlib.suppress(OSError):
                os.close(fd)
