"""A deployment's last answers by request id: which version answered, and its first rows.

Outcomes and true labels arrive after the answer, naming its request id; the recorder then needs
the version that answered (and, for a label, what it predicted). Every answer is remembered and
few are asked about again, so remembering one must cost next to nothing. A dict holding a few
small Python objects per answer did not: with tens of thousands of them alive, made in arrival
order and freed oldest first, the whole request path slowed by far more than the dict's own work
(they spread over the allocator's pools and the caches that every request uses).

So the answers live in flat arrays: a ring of entries (the id's hash, the version, the value)
and an open-addressing index of the hashes (linear probing; deletion by backward shift, so no
tombstones build up). Ids are matched by their 64-bit ``hash``: two ids sharing one would be
taken for each other, about once in 10^14 lookups. A one-row answer of integers, floats or
booleans is kept in typed arrays, text is interned (a classifier has few labels), and anything
else (several rows, objects) as a small array copy. What comes back is the list the answer's
first rows make (``ndarray.tolist()``), Python types included.
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

#: rows of each answer's first output kept (labels come for a row)
ROWS = 16
#: distinct label texts interned; past it a text is kept as it came
_INTERNED = 4096

_NONE, _INT, _FLOAT, _BOOL, _VALUE, _ROWS = range(6)


class Answers:
    """The last ``size`` answers by request id (the oldest goes first; an id answered again
    keeps its place and takes the new answer)."""

    def __init__(self, size: int) -> None:
        self.size = max(size, 0)
        capacity = 8
        while capacity < 2 * self.size:
            capacity *= 2
        #: the index: per place, side by side (one cache line), an id's hash and its ring slot
        #: + 1 (0: a free place); positions are even, ``(hash << 1) & mask`` is an id's home
        self._index = array("q", bytes(16 * capacity))
        self._mask = 2 * capacity - 2
        self._hashes = array("q", bytes(8 * self.size))  # the ring: each slot's id hash, ...
        self._kinds = bytearray(self.size)
        self._ints = array("q", bytes(8 * self.size))
        self._floats = array("d", bytes(8 * self.size))
        self._values: list[Any] = [None] * self.size
        self._versions: list[str] = [""] * self.size
        self._texts: dict[Any, Any] = {}
        self._next = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def put(self, rid: str, version: str, first: np.ndarray[Any, Any] | None) -> None:
        """Remember that ``version`` answered ``rid`` with ``first`` (its first output)."""
        if not self.size:
            return
        key = hash(rid)
        index, mask = self._index, self._mask
        at = (key << 1) & mask
        while slot := index[at + 1]:
            if index[at] == key:
                slot -= 1
                break
            at = (at + 2) & mask
        else:  # a new id: it takes the oldest one's slot
            slot = self._next
            if self._count == self.size:
                self._remove(self._hashes[slot])
            else:
                self._count += 1
            self._next = slot + 1 if slot + 1 < self.size else 0
            self._hashes[slot] = key
            at = (key << 1) & mask  # again: the removal may have moved entries back
            while index[at + 1]:
                at = (at + 2) & mask
            index[at] = key
            index[at + 1] = slot + 1
        self._versions[slot] = version
        if first is None:
            self._kinds[slot] = _NONE
            self._values[slot] = None
        elif first.ndim == 1 and first.shape[0] == 1:
            self._one(slot, first)
        else:
            self._kinds[slot] = _ROWS
            self._values[slot] = first[:ROWS].copy()  # a copy: a view would hold a whole batch

    def get(self, rid: str) -> tuple[str, list[Any]] | None:
        """The version that answered ``rid`` and its first output's first rows, if remembered."""
        slot = self._slot(hash(rid)) if self.size else -1
        if slot < 0:
            return None
        kind = self._kinds[slot]
        rows: list[Any]
        if kind == _INT:
            rows = [self._ints[slot]]
        elif kind == _FLOAT:
            rows = [self._floats[slot]]
        elif kind == _BOOL:
            rows = [bool(self._ints[slot])]
        elif kind == _VALUE:
            rows = [self._values[slot]]
        elif kind == _ROWS:
            rows = self._values[slot].tolist()
        else:
            rows = []
        return self._versions[slot], rows

    def _one(self, slot: int, first: np.ndarray[Any, Any]) -> None:
        """A one-value answer: numbers in the typed arrays, text interned, else as it is."""
        dtype = first.dtype
        kind = dtype.kind
        value = first.item()
        self._values[slot] = None
        if kind == "i" or (kind == "u" and dtype.itemsize < 8):
            self._kinds[slot] = _INT
            self._ints[slot] = value
        elif kind == "f" and dtype.itemsize <= 8:
            self._kinds[slot] = _FLOAT
            self._floats[slot] = value
        elif kind == "b":
            self._kinds[slot] = _BOOL
            self._ints[slot] = value
        else:
            if kind in "US":
                texts = self._texts
                known = texts.get(value)
                if known is not None:
                    value = known
                elif len(texts) < _INTERNED:
                    texts[value] = value
            self._kinds[slot] = _VALUE
            self._values[slot] = value

    def _slot(self, key: int) -> int:
        """The ring slot of the id hashed ``key``, or -1."""
        index, mask = self._index, self._mask
        at = (key << 1) & mask
        while slot := index[at + 1]:
            if index[at] == key:
                return slot - 1
            at = (at + 2) & mask
        return -1

    def _remove(self, key: int) -> None:
        """Take ``key`` out of the index, moving back the entries after it that its place had
        pushed along (so every entry stays reachable from its home place)."""
        index, mask = self._index, self._mask
        hole = (key << 1) & mask
        while index[hole] != key or not index[hole + 1]:
            hole = (hole + 2) & mask
        at = hole
        while True:
            at = (at + 2) & mask
            slot = index[at + 1]
            if not slot:
                break
            moved = index[at]
            home = (moved << 1) & mask
            # an entry whose home lies cyclically in (hole, at] stays; any other fills the hole
            if (hole < at and not hole < home <= at) or (hole > at and at < home <= hole):
                index[hole] = moved
                index[hole + 1] = slot
                hole = at
        index[hole + 1] = 0
