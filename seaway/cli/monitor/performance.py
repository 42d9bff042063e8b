"""``seaway monitor performance NAME --window 7d``: realised metrics beside estimated ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from seaway.cli.monitor import app
from seaway.cli.monitor.feedback import FEEDBACK_HELP, STORE_HELP
from seaway.cli.output import print_json, say, table
from seaway.cli.state import state
from seaway.errors import InvalidInputError, SeawayError
from seaway.monitoring import logstore
from seaway.monitoring.durations import parse_duration, parse_since
from seaway.monitoring.feedback import feedback_root
from seaway.monitoring.metrics import Metric
from seaway.monitoring.performance import ModelFacts, WindowPerformance, model_facts, performance
from seaway.registry import Registry

#: More windows than this is a typo (--every 1s over --window 30d), not a report.
MAX_WINDOWS = 500


@app.command("performance")
def performance_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model's name.")],
    version: Annotated[str | None, typer.Option(help="Only this version [default: all].")] = None,
    window: Annotated[
        str, typer.Option(help="How far back: a duration (7d, 24h) or a date or time.")
    ] = "7d",
    every: Annotated[
        str | None,
        typer.Option(help="Split the window into spans this long (1d) [default: one span]."),
    ] = None,
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
    feedback_store: Annotated[str | None, typer.Option(help=FEEDBACK_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Print realised metrics (from feedback) and estimated ones (CBPE) per version and span."""
    cli = state(ctx)
    now = datetime.now(UTC)
    since = parse_since(window, now, what="--window")
    span = parse_duration(every, what="--every") if every is not None else None
    if span is not None and (now - since) / span > MAX_WINDOWS:
        raise InvalidInputError(
            f"--every {every} cuts --window {window} into more than {MAX_WINDOWS} spans; "
            "take a longer --every"
        )
    log_root = store or logstore.default_root(cli.settings().home)
    facts: dict[str, ModelFacts | None] = {}
    try:
        registry: Registry | None = cli.registry(read_only=True)
    except SeawayError:  # no registry to ask: every version is guessed from the log
        registry = None

    def describe(found: str) -> ModelFacts | None:
        if found not in facts:
            try:
                facts[found] = model_facts(registry, name, found) if registry else None
            except SeawayError:  # registry down, package gone: guessed from the log instead
                facts[found] = None
        return facts[found]

    try:
        results = performance(
            name,
            since=since,
            until=now,
            every=span,
            version=version,
            facts=describe,
            log_root=log_root,
            labels_root=feedback_store or feedback_root(log_root),
        )
    finally:
        if registry is not None:
            registry.close()
    if as_json:
        print_json({"model": name, "results": [r.to_dict() for r in results]})
        return
    if not results:
        where = f"version {version} of {name!r}" if version else repr(name)
        say(f"No predictions of {where} logged since {since:%Y-%m-%d %H:%M} UTC in {log_root}.")
        return
    say(f"{name}, {since:%Y-%m-%d %H:%M} to {now:%Y-%m-%d %H:%M} UTC")
    if span is None:
        for result in results:
            _print(result, guessed=describe(result.version) is None)
        return
    for found in dict.fromkeys(r.version for r in results):
        _print_spans([r for r in results if r.version == found], every or "")


def _print(result: WindowPerformance, *, guessed: bool) -> None:
    title = f"v{result.version}: {result.rows} rows logged, {result.labelled} labelled"
    rows = []
    for name, metric in result.realised.items():
        estimate = result.estimated.get(name)
        rows.append([name, _value(metric), _value(estimate), metric.reason or ""])
    table(title, ["metric", "realised", "estimated", "note"], rows)
    # the estimate's notes once below: how it was calibrated, or why there is none (no
    # probabilities logged), which the realised column's reason must not hide
    notes = {m.reason for m in result.estimated.values() if m.reason}
    for note in sorted(notes):
        say(f"estimated: {note}")
    if guessed:
        say(f"v{result.version} is not in the registry: {result.task} guessed from the log")


def _print_spans(results: list[WindowPerformance], every: str) -> None:
    """One row per span: the headline metrics (all of them in --json)."""
    first = results[0]
    classifier = first.task == "classifier"
    names = ["accuracy", "f1"] if classifier else ["mae", "rmse", "r2"]
    columns = ["from (UTC)", "rows", "labels"]
    for name in names:
        columns += [name, "(est.)"] if classifier else [name]
    rows = []
    for result in results:
        row: list[str] = [f"{result.start:%Y-%m-%d %H:%M}", str(result.rows), str(result.labelled)]
        for name in names:
            row.append(_value(result.realised.get(name)))
            if classifier:
                row.append(_value(result.estimated.get(name)))
        rows.append(row)
    table(f"v{first.version}, every {every}", columns, rows)


def _value(metric: Metric | None) -> str:
    if metric is None or metric.value is None:
        return "-"
    return f"{metric.value:.4f}"
