"""``merge_all`` adds the bins and multivariate sums of many parts at once; it must equal
merging them one by one."""

from __future__ import annotations

from functools import reduce

import numpy as np
import pandas as pd
import pytest

from seaway.errors import InvalidInputError
from seaway.monitoring.summary import WindowSummary, merge_all, summarize
from seaway.packaging.profile import build_profile


def parts(count: int, drop_every: int = 0) -> tuple[list[WindowSummary], object]:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame(
        {"a": rng.normal(size=2000), "b": rng.exponential(size=2000),
         "c": rng.choice(["x", "y"], 2000)}
    )  # fmt: skip
    profile = build_profile(reference)
    found = []
    for i in range(count):
        frame = pd.DataFrame(
            {"a": rng.normal(0.1 * i, 1, 50), "b": rng.exponential(size=50),
             "c": rng.choice(["x", "y", "z"], 50)}
        )  # fmt: skip
        if drop_every and i % drop_every == 1:
            frame = frame.drop(columns=["b"])  # a part without b: no multivariate sums either
        found.append(summarize(frame, profile))
    return found, profile


@pytest.mark.parametrize("drop_every", [0, 3])
def test_merge_all_equals_merging_one_by_one(drop_every: int) -> None:
    summaries, _ = parts(12, drop_every)
    assert merge_all(summaries) == reduce(WindowSummary.merge, summaries)


def test_merge_all_of_one_is_itself() -> None:
    summaries, _ = parts(1)
    assert merge_all(summaries) == summaries[0]


def test_merge_all_refuses_nothing_and_different_bins() -> None:
    with pytest.raises(InvalidInputError, match="no window summaries"):
        merge_all([])
    summaries, _ = parts(2)
    first = summaries[0]
    odd = WindowSummary(
        profile=first.profile, n_rows=1,
        numeric={"a": type(first.numeric["a"])(counts=(1,))},
    )  # fmt: skip
    with pytest.raises(InvalidInputError, match="different bins"):
        merge_all([first, odd, summaries[1]])
