"""``seaway validate MODEL_URI --data F``: the pre-release gate by hand (seaway.deploy.validate)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from seaway.cli.deploy_view import lines
from seaway.cli.output import print_json, say, table
from seaway.cli.state import state
from seaway.deploy.validate import ValidationReport, validate


def validate_command(
    ctx: typer.Context,
    uri: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_URI", help="models:/NAME/VERSION, models:/NAME@ALIAS, or NAME/VERSION."
        ),
    ],
    data: Annotated[
        str, typer.Option("--data", help="Held-out rows: a .parquet, .csv or .jsonl path or URL.")
    ],
    target: Annotated[
        str | None,
        typer.Option("--target", help="The label column (needed by every metric but latency)."),
    ] = None,
    minimum: Annotated[
        list[str] | None,
        typer.Option("--min", help="METRIC=NUMBER the version must reach, repeatable."),
    ] = None,
    maximum: Annotated[
        list[str] | None,
        typer.Option("--max", help="METRIC=NUMBER the version must not pass, repeatable."),
    ] = None,
    trusted: Annotated[
        bool, typer.Option("--trusted", help="Allow packages that run pickle or packaged code.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Score a registered version on held-out data and check it against thresholds.

    Metrics: accuracy, precision, recall, f1, roc_auc, log_loss (classifiers), mae, rmse, r2
    (regressors), and p50_ms, p99_ms (single-row predict latency). Exits 1 when a threshold is
    missed, naming the figures.
    """
    low, high = _numbers(minimum, "--min"), _numbers(maximum, "--max")
    with state(ctx).registry(read_only=True) as registry:
        report = validate(
            registry, uri, data, target=target, minimum=low, maximum=high, trusted=trusted
        )
    if as_json:
        print_json(report.to_json())
    else:
        show_report(report)
    report.raise_if_failed()  # the CLI prints it as one "Error:" line and exits 1
    if not as_json:
        say(f"Passed: {report.uri} meets every threshold.")


def show_report(report: ValidationReport) -> None:
    """The figures as a table: each with its threshold and whether it met it."""
    rows = []
    for name, value in report.figures.items():
        bound = _bound(report, name)
        missed = any(f.startswith(f"{name} ") for f in report.failures)
        rows.append(
            [name, _figure(value), bound, "" if bound == "" else "MISSED" if missed else "ok"]
        )
    lines(f"{report.uri} on {report.data} ({report.rows} rows)")
    table(None, ["metric", "value", "threshold", "result"], rows)


def _bound(report: ValidationReport, name: str) -> str:
    parts = []
    if name in report.minimum:
        parts.append(f">= {report.minimum[name]:g}")
    if name in report.maximum:
        parts.append(f"<= {report.maximum[name]:g}")
    return ", ".join(parts)


def _figure(value: Any) -> str:
    return "undefined" if value is None else f"{value:.4g}"


def _numbers(pairs: list[str] | None, option: str) -> dict[str, float]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        try:
            if not sep or not key:
                raise ValueError
            out[key] = float(value)
        except ValueError:
            raise typer.BadParameter(
                f"{pair!r} must look like METRIC=NUMBER (accuracy=0.9)", param_hint=option
            ) from None
    return out
