"""The replica's wire: length-prefixed pickles over a pair of pipes, one each way.

``multiprocessing.Connection`` would do, but on the hot path its costs show (measured with
``bench/serving.py``, one core shared by server and replica): a ``ForkingPickler`` and a
``BytesIO`` built per message, two ``read`` calls per message (the length, then the body) and a
loop of small Python steps around each. Here a message is one ``write`` and, when it fits in
64 KiB, one ``read``; and pipes, which cost less per message than the socket pair
``multiprocessing.Pipe`` makes by default. Only our own processes are at either end (see
``replica.py``), so pickle is safe; at most one message is in flight each way, but a reader keeps
any bytes past its message for the next one all the same.
"""

from __future__ import annotations

import os
import pickle
import struct
from typing import Any

_LENGTH = struct.Struct("<Q")
_CHUNK = 1 << 16


class Channel:
    """Blocking ``send``/``recv`` of Python objects over two pipe ends it does not own: one
    pipe's read end, another's write end."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._pending = b""

    def send(self, message: Any) -> None:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        header = _LENGTH.pack(len(payload))
        if len(payload) < _CHUNK:
            _write_all(self.write_fd, header + payload)
        else:  # no copy of a large payload just to prepend eight bytes
            _write_all(self.write_fd, header)
            _write_all(self.write_fd, payload)

    def recv(self) -> Any:
        """The next message; ``EOFError`` when the other end has closed."""
        data = self._pending or self._read()
        while len(data) < _LENGTH.size:
            data += self._read()
        (size,) = _LENGTH.unpack_from(data)
        end = _LENGTH.size + size
        if len(data) >= end:
            self._pending = data[end:]
            return pickle.loads(memoryview(data)[_LENGTH.size : end])
        self._pending = b""
        body = bytearray(size)
        view = memoryview(body)
        got = len(data) - _LENGTH.size
        view[:got] = memoryview(data)[_LENGTH.size :]
        while got < size:
            count = os.readv(self.read_fd, [view[got:]])
            if count == 0:
                raise EOFError("the other end closed mid-message")
            got += count
        return pickle.loads(body)

    def _read(self) -> bytes:
        data = os.read(self.read_fd, _CHUNK)
        if not data:
            raise EOFError("the other end closed")
        return data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
