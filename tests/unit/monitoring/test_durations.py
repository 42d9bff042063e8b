"""Spans of time as people type them, and window starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from seaway.errors import InvalidInputError
from seaway.monitoring.durations import parse_duration, parse_since


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1.5h", timedelta(minutes=90)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "30 days", "-1d", "1y"])
def test_what_is_not_a_duration_is_refused_with_examples(text: str) -> None:
    with pytest.raises(InvalidInputError, match="not a duration.*30d"):
        parse_duration(text, what="--window")


def test_zero_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="longer than zero"):
        parse_duration("0h")


def test_since_takes_a_duration_back_or_a_date() -> None:
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    assert parse_since("24h", now) == datetime(2025, 3, 9, 12, tzinfo=UTC)
    assert parse_since("2025-03-01", now) == datetime(2025, 3, 1, tzinfo=UTC)
    assert parse_since("2025-03-01T06:00+02:00", now) == datetime(2025, 3, 1, 4, tzinfo=UTC)
    with pytest.raises(InvalidInputError, match="neither a duration"):
        parse_since("yesterday", now)


@pytest.mark.parametrize("text", ["1000000d", "99999999999999999999d", "5300w"])
def test_a_duration_beyond_a_century_is_refused_not_overflowed(text: str) -> None:
    # timedelta overflows past 999,999,999 days, and "now - 1000000d" before year 1: both were
    # tracebacks from seaway monitor --since/--window and seaway serve --log-retention
    with pytest.raises(InvalidInputError, match="longer than 100 years"):
        parse_duration(text, what="--window")
    with pytest.raises(InvalidInputError, match="longer than 100 years"):
        parse_since(text, datetime(2025, 3, 10, tzinfo=UTC))
    assert parse_duration("36500d") == timedelta(days=36500)
