"""``seaway monitor log NAME``: a model's latest logged predictions and the log's own counts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from seaway.cli.monitor import app
from seaway.cli.output import fields, print_json, say, table
from seaway.cli.state import state
from seaway.errors import InvalidInputError
from seaway.monitoring import logstore
from seaway.monitoring.durations import parse_duration, parse_since

#: widths that keep a row within 80 columns
_ID_WIDTH = 14
_OUT_WIDTH = 8
_IN_WIDTH = 18


@app.command("log")
def log_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model's name.")],
    version: Annotated[str | None, typer.Option(help="Only this version [default: all].")] = None,
    since: Annotated[
        str, typer.Option(help="How far back: a duration (24h, 7d) or a date or time.")
    ] = "24h",
    limit: Annotated[int, typer.Option(help="How many of the latest rows to print.")] = 20,
    store: Annotated[
        str | None,
        typer.Option(
            help="Folder or fsspec URL of the log [default: <SEAWAY_HOME>/monitoring/predictions]."
        ),
    ] = None,
    delete_older_than: Annotated[
        str | None,
        typer.Option(
            help="First delete what the log holds of this model from before this long ago "
            "(30d): the retention sweep a server runs, for models only batch jobs log."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Print a model's latest logged predictions (served and batch) and the log's counts."""
    if limit < 0:
        raise InvalidInputError(f"--limit must be 0 or more, got {limit}")
    root = store or logstore.default_root(state(ctx).settings().home)
    now = datetime.now(UTC)
    start = parse_since(since, now)
    deleted = None
    if delete_older_than is not None:
        cutoff = now - parse_duration(delete_older_than, what="--delete-older-than")
        deleted = logstore.sweep(root, [name], cutoff)
    files = logstore.list_files(name, version=version, since=start, root=root)
    frame = logstore.read_log(name, version=version, since=start, root=root)
    counts = logstore.writer_stats(name, version=version, root=root)
    summary = {
        "model": name,
        "version": version,
        "store": root,
        "since": start.isoformat(),
        "rows": len(frame),
        "requests": int(frame["request_id"].nunique()) if len(frame) else 0,
        "parts": len(files),
        "versions": sorted(set(frame["version"])) if len(frame) else [],
        "first": frame["time"].iloc[0].isoformat() if len(frame) else None,
        "last": frame["time"].iloc[-1].isoformat() if len(frame) else None,
        "writers": counts,
    }
    if deleted is not None:
        summary["deleted"] = deleted
    recent = frame.tail(limit) if limit else frame.iloc[:0]
    if as_json:
        rows = recent.astype(object).where(recent.notna(), None).to_dict(orient="records")
        print_json({"summary": summary, "rows": rows})
        return
    if not len(frame):
        where = f"version {version} of {name!r}" if version else repr(name)
        say(f"No predictions of {where} logged since {start:%Y-%m-%d %H:%M} UTC in {root}.")
    else:
        table(
            f"Latest {len(recent)} of {len(frame)} logged rows of {name} since "
            f"{start:%Y-%m-%d %H:%M} UTC",
            ["time (UTC)", "v", "request id", "row", "output", "inputs"],
            [_row(row) for _, row in recent.iterrows()],
            identifiers=["time (UTC)"],
        )
    fields(
        "Prediction log",
        [
            ("store", root),
            (
                "rows in window",
                f"{summary['rows']} ({summary['requests']} requests, {len(files)} parts)",
            ),
            (
                "logged (all time)",
                f"{counts.get('rows', 0)} rows, {counts.get('requests', 0)} requests",
            ),
            ("dropped", f"{counts.get('dropped', 0)} requests (buffer full)"),
            (
                "write errors",
                f"{counts.get('write_errors', 0)} ({counts.get('failed_rows', 0)} rows lost)",
            ),
            ("writers", counts.get("writers", 0)),
            *([("deleted", f"{deleted} files or folders")] if deleted is not None else []),
        ],
    )


def _row(row: Any) -> list[str]:
    outputs = [c for c in row.index if c.startswith(logstore.OUTPUT_PREFIX)]
    inputs = [c for c in row.index if c.startswith(logstore.INPUT_PREFIX)]
    first = outputs[0] if outputs else None
    output = _short(row[first]) if first is not None else ""
    features = " ".join(f"{c[len(logstore.INPUT_PREFIX) :]}={_short(row[c])}" for c in inputs)
    return [
        f"{row['time']:%m-%d %H:%M:%S}",
        str(row["version"]),
        _clip(str(row["request_id"]), _ID_WIDTH),
        str(row["row"]),
        _clip(output, _OUT_WIDTH),
        _clip(features, _IN_WIDTH),
    ]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
