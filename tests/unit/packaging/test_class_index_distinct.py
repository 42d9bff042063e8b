"""``class_index`` of a large numeric array looks up its distinct values only; the answer is the
same as looking up each value."""

from __future__ import annotations

import numpy as np
import pytest

from seaway.packaging.reference import class_index


@pytest.mark.parametrize(
    ("values", "classes"),
    [
        (np.arange(1000) % 3, [0, 1, 2]),
        ((np.arange(1000) % 4).astype(float), [0, 1, 2]),  # 3.0 is no class
        (np.where(np.arange(1000) % 5 == 0, np.nan, 1.0), [0, 1]),
        (np.arange(1000) % 2 == 0, [False, True]),
        (np.arange(1000) % 2, ["no", "yes"]),  # numbers against text classes: no match
        (np.arange(1000) % 3, ["0", "1", "2"]),
    ],
)
def test_large_numeric_arrays_match_the_value_by_value_answer(values, classes) -> None:
    each = np.concatenate([class_index(values[i : i + 50], classes) for i in range(0, 1000, 50)])
    assert class_index(values, classes).tolist() == each.tolist()
