"""Printing: Rich tables for people, ``--json`` for programs (plain stdout, never wrapped)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def log_lines(fmt: str) -> None:
    """Seaway's own INFO lines on stderr (progress, scheduler); other libraries' (Alembic's
    migration notes when a registry is created) only from WARNING."""
    logging.basicConfig(level=logging.WARNING, format=fmt)
    logging.getLogger("seaway").setLevel(logging.INFO)


def print_json(data: Any, *, compact: bool = False) -> None:
    print(json.dumps(data, indent=None if compact else 2, default=str))


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    out = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        out.add_column(column, overflow="fold")
    for row in rows:
        out.add_row(*(escape(fmt(value)) for value in row))  # values are data, not markup
    console.print(out)


def fields(title: str, items: list[tuple[str, Any]]) -> None:
    out = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    out.add_column(style="bold")
    out.add_column(overflow="fold")
    for key, value in items:
        out.add_row(key, escape(fmt(value)))
    console.print(out)


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
