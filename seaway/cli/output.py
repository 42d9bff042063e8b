"""Printing: Rich tables for people, ``--json`` for programs (plain stdout, never wrapped).

Everything printed here is data, not Rich markup: a hint such as ``pip install 'seaway[xgboost]'``
or a model named ``fraud [v2]`` must reach the terminal as written, so messages go through
:func:`say` (markup off) and table cells, titles and headers are escaped.

A pipe or a file has no width: Rich would lay tables out at 80 columns and fold an identifier over
several lines, which breaks ``grep`` and copy-paste. Off a terminal, tables take their natural
width; on a terminal, identifier columns never wrap (the other columns give way first).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

console = Console()
err_console = Console(stderr=True)


def log_lines(fmt: str) -> None:
    """Seaway's own INFO lines on stderr (progress, scheduler); other libraries' (Alembic's
    migration notes when a registry is created) only from WARNING."""
    logging.basicConfig(level=logging.WARNING, format=fmt)
    logging.getLogger("seaway").setLevel(logging.INFO)


def print_json(data: Any, *, compact: bool = False) -> None:
    print(json.dumps(data, indent=None if compact else 2, default=str))


#: Wide enough for any table's natural width (a measurement bound, never a printed width).
_UNBOUNDED = 1_000_000


def say(message: str | Text, *, err: bool = False) -> None:
    """Print a message as written: no markup (``[xgboost]`` stays), no highlighting, and no hard
    line breaks (a long path or URL stays whole for the terminal to wrap)."""
    (err_console if err else console).print(message, markup=False, highlight=False, soft_wrap=True)


def table(
    title: str | None,
    columns: list[str],
    rows: list[list[Any]],
    *,
    identifiers: Collection[str] | None = None,
    compact: bool = False,
) -> None:
    """A table; ``identifiers`` (default: the first column) name columns that are never wrapped:
    on a terminal too narrow for them, the rows come as plain tab-separated lines instead.
    ``compact``: no borders, columns two spaces apart (a wide table within 80 columns)."""
    keep_whole = set(columns[:1] if identifiers is None else identifiers)
    cells = [[fmt(value) for value in row] for row in rows]
    out = Table(title=escape(title) if title else None, title_justify="left", header_style="bold")
    if compact:
        out.box, out.pad_edge, out.show_edge = None, False, False
    for index, column in enumerate(columns):
        if column in keep_whole:
            longest = max([len(column), *(len(row[index]) for row in cells)])
            out.add_column(escape(column), no_wrap=True, min_width=longest)
        else:
            out.add_column(escape(column), overflow="fold")
    for row in cells:
        out.add_row(*(escape(cell) for cell in row))  # values are data, not markup
    if console.is_terminal and _measure(out).minimum > console.width:
        # the identifiers alone are wider than the terminal: plain tab-separated rows instead
        # (Rich would crop them), whole, for the terminal to wrap
        say("\n".join(["\t".join(line) for line in [columns, *cells]]))
        return
    _print_table(out)


def fields(title: str, items: list[tuple[str, Any]]) -> None:
    out = Table(
        title=escape(title), title_justify="left", show_header=False, box=None, pad_edge=False
    )
    out.add_column(style="bold", no_wrap=True)
    out.add_column(overflow="fold")
    for key, value in items:
        out.add_row(escape(key), escape(fmt(value)))
    _print_table(out)


def _print_table(out: Table) -> None:
    if console.is_terminal:
        console.print(out)
        return
    # a pipe or file: the table's natural width, whatever COLUMNS says (Rich would use 80), and
    # no padding at the ends of lines (for grep, diff and cut); the title is never folded either
    if isinstance(out.title, str):
        out.min_width = max(out.min_width or 0, cell_len(out.title))
    width = _measure(out).maximum
    wide = Console(width=max(width, 1), highlight=False, color_system=None)
    with wide.capture() as captured:
        wide.print(out)
    lines = captured.get().splitlines()
    console.file.write("".join(line.rstrip() + "\n" for line in lines))
    console.file.flush()


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "-"
    return str(value)


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, str]:
    """``KEY=VALUE`` options into a dict, refusing anything else."""
    import typer

    parsed: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{what} {pair!r} must look like KEY=VALUE")
        parsed[key] = value
    return parsed


def _measure(out: Table) -> Measurement:
    """The table's narrowest and natural widths, whatever the console's width."""
    return Measurement.get(console, console.options.update_width(_UNBOUNDED), out)
