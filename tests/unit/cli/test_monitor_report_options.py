"""``seaway monitor drift/report`` options that once ran away or were taken silently: a --bucket
that cuts the window into hundreds of thousands of buckets, a --threshold that is not finite."""

from __future__ import annotations

from pathlib import Path

import pytest

from seaway.cli.main import main
from seaway.cli.monitor.drift import parse_thresholds
from seaway.errors import InvalidInputError


def test_a_bucket_cutting_the_window_into_too_many_is_refused_before_any_work(
    seaway_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # --bucket 1s over 7 days ran for ten minutes and more, growing past 700 MB, for a chart
    # nobody could read; refused before the registry or the log is read
    out = tmp_path / "r.html"
    code = main(["monitor", "report", "m", "--window", "7d", "--bucket", "1s", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "--bucket 1s cuts --window 7d into 604,800 buckets" in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1"])
def test_a_threshold_must_be_a_finite_number_not_below_zero(value: str) -> None:
    # NaN compares false with everything: the feature could never drift, silently
    with pytest.raises(InvalidInputError, match=f"--threshold age={value}: the threshold must"):
        parse_thresholds([f"age={value}"])
    assert parse_thresholds(["age=0.05", "b=0"]) == {"age": 0.05, "b": 0.0}
