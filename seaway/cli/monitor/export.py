"""``seaway monitor export NAME --since 7d --with-feedback --out data.parquet``: logged inputs
joined with their labels, for a retraining pipeline."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from seaway.cli.monitor import app
from seaway.cli.monitor.feedback import FEEDBACK_HELP, STORE_HELP
from seaway.cli.output import print_json, say
from seaway.cli.state import state
from seaway.monitoring import logstore
from seaway.monitoring.durations import parse_since
from seaway.monitoring.export import export_rows, write_rows
from seaway.monitoring.feedback import LABEL, feedback_root


@app.command("export")
def export_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model's name.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write: a .parquet or .csv file.")],
    since: Annotated[
        str, typer.Option(help="How far back: a duration (7d, 24h) or a date or time.")
    ] = "7d",
    until: Annotated[
        str | None, typer.Option(help="Up to (not including): a duration back or a date or time.")
    ] = None,
    version: Annotated[str | None, typer.Option(help="Only this version [default: all].")] = None,
    with_feedback: Annotated[
        bool,
        typer.Option(
            "--with-feedback", help="Only rows with a true label, with label columns added."
        ),
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
    feedback_store: Annotated[str | None, typer.Option(help=FEEDBACK_HELP)] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what was written as JSON.")
    ] = False,
) -> None:
    """Write a model's logged rows (inputs, outputs, and with --with-feedback their labels)."""
    now = datetime.now(UTC)
    start = parse_since(since, now)
    end = parse_since(until, now, what="--until") if until is not None else None
    log_root = store or logstore.default_root(state(ctx).settings().home)
    frame = export_rows(
        name,
        since=start,
        until=end,
        version=version,
        with_feedback=with_feedback,
        log_root=log_root,
        labels_root=feedback_store or feedback_root(log_root),
    )
    write_rows(frame, out, overwrite=overwrite)
    labelled = int(frame[LABEL].notna().sum()) if LABEL in frame.columns else None
    if as_json:
        print_json({"model": name, "out": str(out), "rows": len(frame), "labelled": labelled})
        return
    what = "labelled rows" if with_feedback else "rows"
    say(f"Wrote {len(frame)} {what} of {name!r} logged since {start:%Y-%m-%d %H:%M} UTC to {out}.")
