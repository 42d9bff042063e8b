"""Progress of a batch job: a Rich bar with rows/s and ETA on a terminal, log lines elsewhere.

The job reports rows done and, when it can tell, the fraction of the input done (rows of Parquet
files, from their metadata; bytes read, for CSV and JSON Lines), from which the ETA follows.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Protocol

log = logging.getLogger("seaway.batch")


class Progress(Protocol):
    def update(self, rows: int, fraction: float | None) -> None: ...

    def close(self) -> None: ...


class Silent:
    def update(self, rows: int, fraction: float | None) -> None:
        pass

    def close(self) -> None:
        pass


class LogLines:
    """One line every ``every`` seconds: rows, rate, percent and ETA when known."""

    def __init__(self, every: float = 10.0, clock: Any = time.monotonic) -> None:
        self._every = every
        self._clock = clock
        self._start = clock()
        self._last = self._start
        self._rows = 0

    def update(self, rows: int, fraction: float | None) -> None:
        self._rows = rows
        now = self._clock()
        if now - self._last >= self._every:
            self._last = now
            log.info(describe(rows, fraction, now - self._start))

    def close(self) -> None:
        log.info(describe(self._rows, 1.0, self._clock() - self._start))


class Bar:
    """Rich progress bar on stderr."""

    def __init__(self, description: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rows]:,} rows, {task.fields[rate]:,.0f} rows/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task(description, total=1000, rows=0, rate=0.0)
        self._start = time.monotonic()
        self._started = False

    def update(self, rows: int, fraction: float | None) -> None:
        # started at the first update, not before: Rich redraws from a thread of its own, and the
        # local engine starts its workers by fork only while the driver has no other thread
        self._begin()
        elapsed = max(time.monotonic() - self._start, 1e-9)
        completed = None if fraction is None else min(fraction, 1.0) * 1000
        self._progress.update(self._task, completed=completed, rows=rows, rate=rows / elapsed)

    def close(self) -> None:
        self._begin()
        self._progress.update(self._task, completed=1000)
        self._progress.stop()

    def _begin(self) -> None:
        if not self._started:
            self._started = True
            self._progress.start()


def for_terminal(description: str) -> Progress:
    """A bar when stderr is a terminal, else periodic log lines."""
    return Bar(description) if sys.stderr.isatty() else LogLines()


def describe(rows: int, fraction: float | None, elapsed: float) -> str:
    rate = rows / elapsed if elapsed > 0 else 0.0
    text = f"scored {rows:,} rows, {rate:,.0f} rows/s"
    if fraction is not None and fraction > 0:
        remaining = elapsed * (1 - fraction) / fraction
        text += f", {fraction:.0%} done, ETA {remaining:,.0f} s"
    return text
