"""The replica's wire: framed messages over a pair of pipes, one each way, arrays as raw bytes.

A message is a ``head`` (small: a tag, a tuple of names) and a ``body``. When the body is a
numpy array, or a dict of them, of a fixed-size dtype (numbers, booleans, datetimes), only the
head and the arrays' layouts are pickled and the arrays' bytes follow as they are: pickling an
array builds it back through numpy's reducer and its dtype's ``__setstate__``, which costs four
times what the raw copy does on a one-row request (measured with ``bench/hotpath.py``). Any other
body (strings, DataFrames, None) is pickled with the head.

``multiprocessing.Connection`` would do, but on the hot path its costs show (measured with
``bench/serving.py``, one core shared by server and replica): a ``ForkingPickler`` and a
``BytesIO`` built per message, two ``read`` calls per message (the length, then the body) and a
loop of small Python steps around each. Here a message is one ``write`` and, when it fits in
64 KiB, one ``read``. Only our own processes are at either end (see ``replica.py``), so pickle
is safe; at most one message is in flight each way, but a reader keeps any bytes past its message
for the next one all the same.

Frame: ``<Q`` length of the rest, then ``<I`` length of the pickled part, the pickled part, zero
padding to a multiple of 16 bytes from the frame's start, and the raw arrays (each padded to 16),
so that arrays rebuilt from a 16-byte aligned buffer are aligned. Arrays received are writable
(they own a private ``bytearray``), as unpickled ones would be.

The child blocks in ``send`` and ``recv``: it has nothing else to do. The parent runs an event loop
that serves every model, so it must never wait on a pipe: it reads with ``poll`` (one ``read`` per
time the pipe is readable; a large frame fills over several) and, built with ``defer_large``, gets
a large frame's buffers back from ``send`` to write from a thread (``write_parts``). Small frames,
the common case, take the same single ``write`` and ``read`` either way.
"""

from __future__ import annotations

import math
import os
import pickle
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

_FRAME = struct.Struct("<QI")  # bytes after the length field; bytes of the pickled part
_CHUNK = 1 << 16
_ALIGN = 16
#: dtype kinds whose arrays go as raw bytes: bool, ints, uints, floats, complex, datetimes
_RAW_KINDS = frozenset("biufcmM")
_ONE = 0  # body is one array
_MANY = 1  # body is a dict of arrays
_PICKLED = 2  # body is inside the pickled part
#: metas cached per channel and direction (cleared when full), and the longest one cached
_CACHE_SIZE = 256
_CACHED_META = 512
_PADDING = bytes(_ALIGN)


class Channel:
    """Blocking ``send``/``recv`` of ``(head, body)`` messages over two pipe ends it does not
    own: one pipe's read end, another's write end."""

    def __init__(self, read_fd: int, write_fd: int, *, defer_large: bool = False) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        #: ``send`` returns a large frame's buffers instead of writing them (see the docstring)
        self.defer_large = defer_large
        self._pending = b""
        #: a large frame being filled by ``poll``, and how many of its bytes have arrived
        self._frame: bytearray | None = None
        self._got = 0
        #: pickled metas by what they describe, and back: pickling costs more than the raw copy
        self._sent: dict[Any, tuple[bytes, int, tuple[bytes, ...]]] = {}
        self._seen: dict[bytes, tuple[int, Any, Any]] = {}

    def send(self, head: Any, body: Any = None) -> list[Any] | None:
        """Write one message; with ``defer_large``, a frame of 64 KiB or more is not written but
        returned as buffers for ``write_parts`` (None when everything was written)."""
        key: Any = None  # what fixes the frame's start: the head, names, dtypes and shapes
        single = None
        if type(body) is np.ndarray:  # a request's input: one array
            key, single = (head, body.dtype, body.shape), body
        elif type(body) is dict and body:  # an answer: arrays by name
            if len(body) == 1:
                ((name, value),) = body.items()
                if type(value) is np.ndarray:
                    key, single = (head, name, value.dtype, value.shape), value
            else:
                key = _layout_key(head, body)
        try:
            found = self._sent.get(key) if key is not None else None
        except TypeError:  # an unhashable head: no caching
            key, found = None, None
        if found is not None:  # a known frame start
            prefix, size, paddings = found
            if size < _CHUNK:  # the common message: one small write
                if single is not None:
                    data = b"".join((prefix, single.tobytes(), paddings[0]))
                else:
                    parts = [prefix]
                    for value, padding in zip(body.values(), paddings, strict=True):
                        parts += (value.tobytes(), padding)
                    data = b"".join(parts)
                written = os.write(self.write_fd, data)
                if written < len(data):  # a signal cut the write short
                    _write_all(self.write_fd, memoryview(data)[written:])
                return None
            arrays = [("", single)] if single is not None else list(body.items())
        else:
            raw = _raw_arrays(body)
            if raw is None:
                meta = pickle.dumps((_PICKLED, head, body), protocol=pickle.HIGHEST_PROTOCOL)
                frame = _frame_start(meta, 0)[0]
                if self.defer_large and len(frame) >= _CHUNK:
                    return [frame]
                _write_all(self.write_fd, frame)
                return None
            arrays = raw
            kind = _ONE if type(body) is np.ndarray else _MANY
            layout = tuple([(name, a.dtype.str, a.shape) for name, a in arrays])
            meta = pickle.dumps((kind, head, layout), protocol=pickle.HIGHEST_PROTOCOL)
            prefix, size = _frame_start(meta, sum([_aligned(a.nbytes) for _, a in arrays]))
            if key is not None:  # pickling the meta costs more than copying a small array
                paddings = tuple(_padding(a.nbytes) for _, a in arrays)
                _remember(self._sent, key, (prefix, size, paddings))
        if size < _CHUNK:  # one write of one small copy
            parts = [prefix]
            for _, array in arrays:
                parts += (array.tobytes(), _padding(array.nbytes))
            _write_all(self.write_fd, b"".join(parts))
            return None
        large: list[Any] = [prefix]
        for _, array in arrays:  # no copy of a large array just to frame it
            if array.nbytes:
                large.append(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
            large.append(_padding(array.nbytes))
        if self.defer_large:
            return large
        self.write_parts(large)
        return None

    def write_parts(self, parts: list[Any]) -> None:
        """Write what a deferred ``send`` returned (blocking: from a thread, off the loop)."""
        for part in parts:
            _write_all(self.write_fd, part)

    def recv(self) -> tuple[Any, Any]:
        """The next ``(head, body)``; ``EOFError`` when the other end has closed. Blocking."""
        data = self._pending or self._read()
        while len(data) < _FRAME.size:
            data += self._read()
        size, meta_size = _FRAME.unpack_from(data)
        end = 8 + size
        if len(data) == end:  # the common case: one read, one message
            self._pending = b""
            return self._decode(data, meta_size)
        if len(data) > end:
            self._pending = data[end:]
            return self._decode(data[:end], meta_size)
        self._pending = b""
        frame = bytearray(end)
        view = memoryview(frame)
        got = len(data)
        view[:got] = data
        while got < end:
            count = os.readv(self.read_fd, [view[got:]])
            if count == 0:
                raise EOFError("the other end closed mid-message")
            got += count
        return self._decode(frame, meta_size)

    def poll(self) -> tuple[Any, Any] | None:
        """The next message when the bytes read so far complete it, else None; ``EOFError`` when
        the other end has closed. Reads once, so a caller woken because the pipe is readable never
        blocks: a large frame fills over several calls."""
        frame = self._frame
        if frame is not None:
            count = os.readv(self.read_fd, [memoryview(frame)[self._got :]])
            if count == 0:
                raise EOFError("the other end closed mid-message")
            self._got += count
            if self._got < len(frame):
                return None
            self._frame = None
            return self._decode(frame, _FRAME.unpack_from(frame)[1])
        data = self._pending + self._read() if self._pending else self._read()
        if len(data) < _FRAME.size:
            self._pending = data
            return None
        size, meta_size = _FRAME.unpack_from(data)
        end = 8 + size
        if len(data) == end:  # the common case: one read, one message
            self._pending = b""
            return self._decode(data, meta_size)
        if len(data) > end:
            self._pending = data[end:]
            return self._decode(data[:end], meta_size)
        self._pending = b""
        frame = self._frame = bytearray(end)
        frame[: len(data)] = data
        self._got = len(data)
        return None

    def _decode(self, frame: bytes | bytearray, meta_size: int) -> tuple[Any, Any]:
        meta = bytes(frame[_FRAME.size : _FRAME.size + meta_size])  # bytes: a dict key
        decoded = self._seen.get(meta) if meta_size <= _CACHED_META else None
        if decoded is None:
            kind, head, rest = pickle.loads(meta)
            if kind == _PICKLED:
                return head, rest
            offset, placed = _aligned(_FRAME.size + meta_size), []
            for name, dtype, shape in rest:  # each array's place in the frame, found once
                dtype = np.dtype(dtype)
                placed.append((name, dtype, shape, offset))
                offset += _aligned(dtype.itemsize * math.prod(shape))
            decoded = (kind, head, tuple(placed))
            if meta_size <= _CACHED_META and _hashable(head):
                _remember(self._seen, meta, decoded)
        kind, head, layout = decoded
        if type(frame) is bytes:  # arrays own a private, writable, aligned copy
            frame = bytearray(frame)
        if len(layout) == 1:
            name, dtype, shape, offset = layout[0]
            array = np.ndarray(shape, dtype, frame, offset)
            return head, (array if kind == _ONE else {name: array})
        arrays = {}
        for name, dtype, shape, offset in layout:
            arrays[name] = np.ndarray(shape, dtype, frame, offset)
        return head, arrays

    def _read(self) -> bytes:
        data = os.read(self.read_fd, _CHUNK)
        if not data:
            raise EOFError("the other end closed")
        return data


def _layout_key(head: Any, body: dict[Any, Any]) -> tuple[Any, ...] | None:
    """The cache key of a dict of arrays, None when a value is not an array."""
    key = [head]
    for name, value in body.items():
        if type(value) is not np.ndarray:
            return None
        key += (name, value.dtype, value.shape)
    return tuple(key)


def _raw_arrays(body: Any) -> list[tuple[str, np.ndarray[Any, Any]]] | None:
    """The body's arrays by name ("" for a lone array) when all can go raw, else None."""
    if type(body) is np.ndarray:
        return [("", body)] if _is_raw(body) else None
    if isinstance(body, Mapping) and body:
        arrays = list(body.items())
        for name, array in arrays:
            if type(name) is not str or not _is_raw(array):
                return None
        return arrays
    return None


def _is_raw(array: Any) -> bool:
    return (
        type(array) is np.ndarray and array.dtype.kind in _RAW_KINDS and array.dtype.names is None
    )


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _frame_start(meta: bytes, arrays_size: int) -> tuple[bytes, int]:
    """The frame up to its arrays (length, meta length, meta, padding) and the frame's size."""
    start = _aligned(_FRAME.size + len(meta))
    size = start + arrays_size
    return _FRAME.pack(size - 8, len(meta)) + meta + bytes(start - _FRAME.size - len(meta)), size


def _padding(size: int) -> bytes:
    return _PADDING[: _aligned(size) - size]


def _aligned(size: int) -> int:
    return -(-size // _ALIGN) * _ALIGN


def _write_all(fd: int, data: Any) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
