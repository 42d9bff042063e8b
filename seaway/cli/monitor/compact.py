"""``seaway monitor compact [NAME]``: merge the prediction log's small parts, an hour at a time,
for logs no running server compacts (written by earlier servers or by batch jobs)."""

from __future__ import annotations

from typing import Annotated

import typer

from seaway.cli.monitor import app
from seaway.cli.output import fields, print_json, say
from seaway.cli.state import state
from seaway.errors import NoLoggedDataError
from seaway.monitoring import logstore
from seaway.monitoring.compact import compact


@app.command("compact")
def compact_command(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(help="The model's name [default: every model in the store]."),
    ] = None,
    version: Annotated[str | None, typer.Option(help="Only this version [default: all].")] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            "--log-store",
            help="Folder or fsspec URL of the log [default: <SEAWAY_HOME>/monitoring/predictions].",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Merge the small parts of a prediction log's closed hours into one part an hour."""
    root = store or logstore.default_root(state(ctx).settings().home)
    if name is not None:
        logged = logstore.versions(name, root=root)
        if not logged or (version is not None and str(version) not in logged):
            what = f"model {name!r}" + (f" version {version}" if version is not None else "")
            raise NoLoggedDataError(
                f"the prediction log in {root} holds nothing of {what} (versions logged: "
                f"{', '.join(logged) or 'none'}); check the name, --version and --store"
            )
    report = compact(root, model=name, version=version)
    if as_json:
        print_json({"store": root, "model": name, "version": version, **report.to_dict()})
        return
    what = f"{name!r}" if name is not None else "every model"
    if not report.hours and not report.removed:
        say(f"Nothing to compact for {what} in {root}: no closed hour holds two small parts.")
    else:
        say(
            f"Compacted {what} in {root}: {_n(report.parts, 'part')} of "
            f"{_n(report.hours, 'closed hour')} merged into {_n(report.hours, 'part')} "
            f"({_n(report.rows, 'row')}); {_n(report.removed, 'replaced file')} deleted."
        )
    if report.left or report.conflicts:
        fields(
            "Left as they were",
            [
                *((reason, _n(count, "hour")) for reason, count in sorted(report.left.items())),
                *([("conflicts", report.conflicts)] if report.conflicts else []),
            ],
        )


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"
