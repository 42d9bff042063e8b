"""Durations and window starts as people type them: ``30d``, ``12h``, ``90m``, ``45s``, ``2w``.

One parser for every monitoring setting and flag that takes a span of time (the prediction log's
retention, ``--since``, ``--window``), so they all read the same way and fail with the same message.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from seaway.errors import InvalidInputError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
#: Longer is a typo, and timedelta (999,999,999 days) or a window's start (year 1) overflows.
LONGEST = timedelta(days=36_525)


def parse_duration(text: str | timedelta, *, what: str = "duration") -> timedelta:
    """``30d`` -> 30 days. A number and one unit: s, m, h, d or w; zero and negatives are refused."""
    if isinstance(text, timedelta):
        seconds = text.total_seconds()
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise InvalidInputError(
                f"{what} {str(text)!r} is not a duration; write a number and a unit, such as "
                "90s, 30m, 12h, 30d or 2w"
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds <= 0:
        raise InvalidInputError(f"{what} must be longer than zero, got {text!r}")
    if seconds > LONGEST.total_seconds():
        raise InvalidInputError(f"{what} {text!r} is longer than 100 years (36525d)")
    return timedelta(seconds=seconds)


def parse_since(
    text: str | datetime, now: datetime | None = None, *, what: str = "--since"
) -> datetime:
    """A window's start: a duration back from ``now`` (``24h``) or a date or time (ISO 8601;
    naive times are UTC). Always an aware UTC datetime."""
    if isinstance(text, datetime):
        return as_utc(text)
    now = as_utc(now) if now is not None else datetime.now(UTC)
    if _DURATION.match(text):
        return now - parse_duration(text, what=what)
    try:
        return as_utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise InvalidInputError(
            f"{what} {text!r} is neither a duration (24h, 7d) nor a date or time "
            "(2025-01-31, 2025-01-31T12:00)"
        ) from None


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (naive means UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
