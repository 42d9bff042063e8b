"""Progress output: the bar starts its redraw thread only once there is progress to show."""

from __future__ import annotations

import threading

import pytest

from seaway.batch.progress import Bar, LogLines, describe


def test_the_bar_starts_no_thread_before_the_first_update() -> None:
    """The local engine forks its workers only from a driver without other threads."""
    before = set(threading.enumerate())
    bar = Bar("scoring")
    assert set(threading.enumerate()) - before == set()
    bar.update(10, 0.5)
    [refresh] = set(threading.enumerate()) - before  # Rich's refresh thread
    bar.close()  # tells it to stop; Rich does not wait for it
    refresh.join(timeout=5)
    assert not refresh.is_alive()


def test_a_bar_closed_without_updates_still_shows_its_end() -> None:
    bar = Bar("scoring")
    bar.close()  # starts and stops: no error, nothing left running
    assert bar._progress.finished


def test_log_lines_say_rows_rate_and_eta(caplog: pytest.LogCaptureFixture) -> None:
    clock = iter([0.0, 11.0, 12.0]).__next__
    lines = LogLines(every=10.0, clock=clock)
    with caplog.at_level("INFO", logger="seaway.batch"):
        lines.update(500, 0.5)
        lines.close()
    assert "scored 500 rows" in caplog.text and "100% done" in caplog.text
    assert describe(1000, 0.25, 10.0) == "scored 1,000 rows, 100 rows/s, 25% done, ETA 30 s"
