"""``seaway registry ...``: where the registry database's schema stands, and upgrading it.

A PostgreSQL registry is shared by servers of possibly different Seaway versions, so its schema is
upgraded only here, on request; the embedded SQLite registry upgrades itself when opened.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy import Engine

from seaway.cli.output import fields, print_json, say
from seaway.cli.state import state
from seaway.config import missing_sqlite_file
from seaway.registry.db import create_registry_engine, safe_url
from seaway.registry.migrations import HEAD
from seaway.registry.schema import SchemaState, SchemaStatus, schema_status, upgrade

app = typer.Typer(help="The registry database: schema status and upgrades.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

_ADVICE = {
    SchemaState.CURRENT: "up to date",
    SchemaState.EMPTY: "no Seaway schema yet: 'seaway registry upgrade' (or first use) creates it",
    SchemaState.BEHIND: "older than this Seaway: run 'seaway registry upgrade'",
    SchemaState.AHEAD: "newer than this Seaway: upgrade seaway",
}


@contextmanager
def _engine(ctx: typer.Context) -> Iterator[Engine]:
    engine = create_registry_engine(state(ctx).settings().registry_url)
    try:
        yield engine
    finally:
        engine.dispose()


@app.command("status")
def status(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show the schema revision of the registry database against this Seaway's newest."""
    url = state(ctx).settings().registry_url
    if missing_sqlite_file(url):  # looking must not create it
        found = SchemaStatus(safe_url(url), "sqlite", None, HEAD)
    else:
        with _engine(ctx) as engine:
            found = schema_status(engine)
    if as_json:
        print_json({**found.to_dict(), "automatic_upgrade": found.upgrades_automatically})
        return
    _show(found)


@app.command("upgrade")
def upgrade_command(ctx: typer.Context) -> None:
    """Upgrade the registry database's schema to this Seaway's (PostgreSQL needs this after an
    upgrade of seaway; upgrade the servers that use it too)."""
    with _engine(ctx) as engine:
        before, after = upgrade(engine)
        url = schema_status(engine).url
    if before == after:
        say(f"The registry at {url} is up to date (schema revision {after})")
    else:
        say(f"Upgraded the registry at {url}: schema revision {before or '(none)'} -> {after}")


def _show(found: SchemaStatus) -> None:
    fields(
        "Registry schema",
        [
            ("database", found.url),
            ("backend", found.backend),
            ("revision", found.current or "(none)"),
            ("this Seaway's newest", found.head),
            ("state", _ADVICE[found.state]),
            (
                "upgrades",
                "automatic (on open)"
                if found.backend == "sqlite"
                else "only with 'seaway registry upgrade'",
            ),
        ],
    )
