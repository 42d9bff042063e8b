"""``seaway monitor drift NAME``: does a window of a model's traffic still look like its training
data? ``seaway monitor report NAME --out report.html``: the same, and more, as one HTML file."""

from __future__ import annotations

import math
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from seaway.cli.monitor import app
from seaway.cli.output import parse_pairs, print_json, say, table
from seaway.cli.state import state
from seaway.errors import InvalidInputError
from seaway.monitoring import describe, logstore
from seaway.monitoring.drift import FeatureDrift
from seaway.monitoring.durations import parse_duration
from seaway.monitoring.window import (
    WindowDrift,
    assess,
    check_features,
    load_reference,
    pick_version,
    window_bounds,
)

#: More time buckets than this is a typo (--bucket 1s over --window 7d), not a chart.
MAX_BUCKETS = 1000

VersionOption = Annotated[
    str | None,
    typer.Option(
        "--version",
        help="A version number or alias [default: the newest version logged in the window].",
    ),
]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        "--log-store",
        help="Folder or fsspec URL of the prediction log [default: "
        "<SEAWAY_HOME>/monitoring/predictions].",
    ),
]
ThresholdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--threshold",
        help="FEATURE=VALUE: this feature's test statistic drifts above VALUE (replaces the "
        "threshold calibrated on the reference); repeatable.",
    ),
]


@app.command("drift")
def drift_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model's name.")],
    version: VersionOption = None,
    window: Annotated[
        str, typer.Option(help="How far back from now: a duration (24h, 7d, 90m).")
    ] = "24h",
    feature: Annotated[
        list[str] | None,
        typer.Option(
            "--feature", help="Show only this feature (repeatable); the verdict stays the model's."
        ),
    ] = None,
    threshold: ThresholdOption = None,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Compare a window of a model's logged inputs and predictions with its reference profile."""
    assessed = _assess(ctx, name, version, window, threshold, store)
    shown = check_features(assessed.reference.profile, feature) if feature else None
    if as_json:
        print_json(assessed.to_dict(shown))
        return
    result = assessed.result
    _say(
        f"Drift of {assessed.reference.model} version {assessed.reference.version}, last {window} "
        f"({assessed.since:%Y-%m-%d %H:%M} to {assessed.until:%Y-%m-%d %H:%M} UTC): "
        f"{result.n_window:,} rows against {result.n_reference:,} reference rows."
    )
    rows = [r for r in result.features if shown is None or r.feature in shown]
    _feature_table("Inputs", rows)
    if result.skipped:
        _say(f"Not in the log (excluded or absent): {', '.join(result.skipped)}")
    _say(describe.multivariate(result))
    _say(describe.verdict(result, "inputs"))
    if assessed.predictions is not None:
        _feature_table("Predictions", list(assessed.predictions.features))
        _say(describe.verdict(assessed.predictions, "predictions"))
    elif assessed.reference.predictions is None:
        _say(
            "Predictions: no predictions profile in this version (log_model records one when "
            "given reference_data and the model can predict on it)."
        )
    else:
        _say("Predictions: no outputs logged in this window.")


@app.command("report")
def report_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model's name.")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    version: VersionOption = None,
    window: Annotated[
        str, typer.Option(help="How far back from now: a duration (24h, 7d, 90m).")
    ] = "7d",
    bucket: Annotated[
        str | None,
        typer.Option(help="Time bucket of the charts over time [default: from the window]."),
    ] = None,
    threshold: ThresholdOption = None,
    store: StoreOption = None,
) -> None:
    """Write a model's drift, predictions and performance as one HTML file that opens offline."""
    from seaway.monitoring.report_view import build_report, pick_bucket

    started = time.perf_counter()
    span = parse_duration(window, what="--window")
    step = parse_duration(bucket, what="--bucket") if bucket else pick_bucket(span)
    if span / step > MAX_BUCKETS:
        raise InvalidInputError(
            f"--bucket {bucket} cuts --window {window} into {math.ceil(span / step):,} buckets; "
            f"take a longer --bucket (at most {MAX_BUCKETS:,} buckets)"
        )
    assessed = _assess(ctx, name, version, window, threshold, store, bucket=step)
    root = store or logstore.default_root(state(ctx).settings().home)
    html = build_report(
        assessed, root=root, window=window, bucket=step, thresholds=parse_thresholds(threshold)
    )
    if out.is_dir():
        raise InvalidInputError(f"--out {out} is a folder; name the HTML file to write")
    try:
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot write the report to {out}: {exc.strerror}") from exc
    verdict = "drift" if assessed.result.drifted else "no drift"
    say(
        f"Wrote {out} ({len(html.encode()) / 1024:,.0f} KiB, {verdict}, "
        f"{len(assessed.result.features)} features) in {time.perf_counter() - started:.1f} s"
    )


def _assess(
    ctx: typer.Context,
    name: str,
    version: str | None,
    window: str,
    threshold: list[str] | None,
    store: str | None,
    *,
    bucket: timedelta | None = None,
) -> WindowDrift:
    span = parse_duration(window, what="--window")
    since, until = window_bounds(span)
    cli = state(ctx)
    root = store or logstore.default_root(cli.settings().home)
    with cli.registry(read_only=True) as registry:
        record = pick_version(registry, name, version, since=since, root=root)
        reference = load_reference(registry, record)
    return assess(
        reference, since=since, until=until, root=root, thresholds=parse_thresholds(threshold),
        bucket=bucket, keep_rows=bucket is not None,  # the report: its performance reads them
    )  # fmt: skip


def parse_thresholds(pairs: list[str] | None) -> dict[str, float]:
    thresholds = {}
    for key, value in parse_pairs(pairs, "--threshold").items():
        try:
            thresholds[key] = float(value)
        except ValueError:
            raise InvalidInputError(
                f"--threshold {key}={value}: the threshold must be a number"
            ) from None
        if not 0 <= thresholds[key] < math.inf:  # NaN too: it would never drift
            raise InvalidInputError(
                f"--threshold {key}={value}: the threshold must be a finite number, 0 or more"
            )
    return thresholds


def _say(text: str) -> None:
    """Prose within 80 columns (identifiers are never broken)."""
    say(textwrap.fill(text, width=80, break_long_words=False, break_on_hyphens=False))


def _feature_table(title: str, rows: list[FeatureDrift]) -> None:
    say("")
    table(
        title,
        ["feature", "kind", "test", "statistic", "threshold", "effect", "drifted"],
        [
            [
                row.feature,
                row.kind,
                row.test,
                describe.number(row.statistic),
                describe.number(row.threshold),
                describe.effect(row),
                describe.drifted(row),
            ]
            for row in rows
        ],
        compact=True,
    )
    for line in describe.check_notes(rows):
        _say(line)
    say("")
