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

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._pending = b""
        #: pickled metas by what they describe, and back: pickling costs more than the raw copy
        self._sent: dict[Any, tuple[bytes, int, tuple[bytes, ...]]] = {}
        self._seen: dict[bytes, tuple[int, Any, Any]] = {}

    def send(self, head: Any, body: Any = None) -> None:
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
                return
            arrays = [("", single)] if single is not None else list(body.items())
        else:
            raw = _raw_arrays(body)
            if raw is None:
                meta = pickle.dumps((_PICKLED, head, body), protocol=pickle.HIGHEST_PROTOCOL)
                _write_all(self.write_fd, _frame_start(meta, 0)[0])
                return
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
            return
        _write_all(self.write_fd, prefix)
        for _, array in arrays:  # no copy of a large array just to frame it
            if array.nbytes:
                flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
                _write_all(self.write_fd, memoryview(flat))  # type: ignore[arg-type]
            _write_all(self.write_fd, _padding(array.nbytes))

    def recv(self) -> tuple[Any, Any]:
        """The next ``(head, body)``; ``EOFError`` when the other end has closed."""
        data = self._pending or self._read()
        while len(data) < _FRAME.size:
            data += self._read()
        size, meta_size = _FRAME.unpack_from(data)
        end = 8 + size
        if len(data) == end:  # the common case: one read, one message
            self._pending = b""
            frame: bytes | bytearray = data
        elif len(data) > end:
            self._pending = data[end:]
            frame = data[:end]
        else:
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
