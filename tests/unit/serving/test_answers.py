"""The answers a deployment remembers by request id: the same as a bounded ordered dict of the
answers' first rows as lists, whatever the ids, their order, repeats and evictions."""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

from seaway.serving.answers import ROWS, Answers


class Reference:
    """What ``Answers`` must behave like: the oldest id goes first, an id answered again keeps
    its place and takes the new answer."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.kept: OrderedDict[Any, tuple[str, list[Any]]] = OrderedDict()

    def put(self, rid: Any, version: str, first: Any) -> None:
        self.kept[rid] = (version, [] if first is None else first[:ROWS].tolist())
        if len(self.kept) > self.size:
            self.kept.popitem(last=False)


FIRSTS = [
    None,
    np.array([1]),
    np.array([-(2**63)]),
    np.array([7], dtype=np.uint8),
    np.array([2**64 - 1], dtype=np.uint64),
    np.array([0.5], dtype=np.float32),
    np.array([np.inf]),
    np.array([np.longdouble(0.1)]),
    np.array([True]),
    np.array(["cat"]),
    np.array([b"dog"]),
    np.array(["cat", 3], dtype=object)[:1],
    np.array([[0.2, 0.8]]),
    np.arange(40),
]


@pytest.mark.parametrize("size", [1, 2, 5, 64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_it_answers_as_a_bounded_ordered_dict_does(size: int, seed: int) -> None:
    rng = random.Random(seed)
    answers, reference = Answers(size), Reference(size)
    # integer ids hash to themselves: ids a multiple of the index size apart share a home
    # place, and ids near its end wrap around, so probing, wrapping and moving back all happen
    pool = [rng.choice([i, i + 16, i + 32, 15 - i % 3]) for i in range(3 * size + 8)]
    pool += [f"rid-{i}" for i in range(size + 4)]
    for step in range(40 * size + 200):
        rid = rng.choice(pool)
        first = FIRSTS[rng.randrange(len(FIRSTS))]
        version = str(rng.randrange(1, 4))
        answers.put(rid, version, first)
        reference.put(rid, version, first)
        if step % 7 == 0:
            for known in pool:
                found, expected = answers.get(known), reference.kept.get(known)
                assert found == expected, (step, known)
                if expected is not None:
                    assert found is not None
                    assert [type(v) for v in found[1]] == [type(v) for v in expected[1]]
    assert len(answers) == len(reference.kept)


def test_an_array_answer_is_kept_as_it_was_then() -> None:
    answers = Answers(4)
    first = np.arange(40)
    answers.put("r", "3", first)
    first.fill(9)  # the answer's array changes afterwards: what was kept does not
    assert answers.get("r") == ("3", list(range(ROWS)))


def test_nothing_is_kept_when_the_size_is_zero() -> None:
    answers = Answers(0)
    answers.put("r", "3", np.array([1]))
    assert answers.get("r") is None and len(answers) == 0


def test_label_texts_are_shared_not_kept_once_per_answer() -> None:
    answers = Answers(10)
    for i in range(10):
        answers.put(f"r{i}", "1", np.array(["cat"]))
    texts = {id(found[1][0]) for i in range(10) if (found := answers.get(f"r{i}"))}
    assert len(texts) == 1
