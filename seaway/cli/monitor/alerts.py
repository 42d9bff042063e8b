"""``seaway monitor alerts``: the alert events the servers recorded, or the alerts firing now."""

from __future__ import annotations

from typing import Annotated

import typer

from seaway.cli.monitor import app
from seaway.cli.output import print_json, say, table
from seaway.cli.state import state
from seaway.monitoring.alerts import number
from seaway.monitoring.durations import parse_since
from seaway.registry.alerts import AlertEvent


@app.command("alerts")
def alerts(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Only this model's alerts.")] = None,
    since: Annotated[
        str, typer.Option(help="How far back: a duration (24h, 7d) or a date or time.")
    ] = "7d",
    firing: Annotated[
        bool, typer.Option("--firing", help="Only the alerts firing now (whenever they fired).")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many events.")] = 100,
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Alert events (fired, resolved) recorded by servers, newest first; --json adds each
    event's message."""
    start = None if firing else parse_since(since)
    with state(ctx).registry(read_only=True) as registry:
        if firing:
            events = registry.alerts.firing(model=model)[:limit]
        else:
            events = registry.alerts.list(model=model, since=start, limit=limit)
    if json:
        print_json([event.to_dict() for event in events])
        return
    if not events:
        where = f" for {model}" if model else ""
        say(f"No alert firing now{where}." if firing else f"No alert events since {since}{where}.")
        return
    table(
        "Alerts firing now" if firing else f"Alert events since {since}",
        ["TIME (UTC)", "STATE", "SEVERITY", "RULE", "MODEL", "VALUE", "LIMIT"],
        [_row(event) for event in events],
        identifiers=["RULE", "MODEL"],
        compact=True,
    )


def _row(event: AlertEvent) -> list[str]:
    """One event in a line that fits 80 columns; the message is in --json (and the webhook)."""
    return [
        event.time.strftime("%m-%d %H:%M"),
        event.state,
        event.severity,
        event.rule,
        f"{event.model}/{event.version}",
        number(event.kind, event.value),
        "-" if event.threshold is None else number(event.kind, event.threshold),
    ]
