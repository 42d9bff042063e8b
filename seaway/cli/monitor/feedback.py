"""``seaway monitor feedback NAME --file labels.parquet``: true labels that arrive in bulk, later."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from seaway.cli.monitor import app
from seaway.cli.output import print_json, say
from seaway.cli.state import state
from seaway.errors import InvalidInputError
from seaway.monitoring import logstore
from seaway.monitoring.feedback import feedback_root, record_feedback_columns

STORE_HELP = (
    "Folder or fsspec URL of the prediction log [default: <SEAWAY_HOME>/monitoring/predictions]."
)
FEEDBACK_HELP = "Folder or fsspec URL of the feedback store [default: beside the prediction log]."


@app.command("feedback")
def feedback_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model's name.")],
    file: Annotated[Path, typer.Option("--file", help="Labels: a .parquet, .csv or .jsonl file.")],
    id_column: Annotated[
        str | None,
        typer.Option(
            help="Column of request ids (the X-Request-ID of each prediction).",
            show_default="request_id",
        ),
    ] = None,
    label_column: Annotated[str, typer.Option(help="Column of true labels or values.")] = "label",
    row_column: Annotated[
        str | None,
        typer.Option(help="Column of row numbers within each request [default: every row 0]."),
    ] = None,
    key_column: Annotated[
        str | None,
        typer.Option(help="Column of batch keys (a batch job's kept key column) instead of ids."),
    ] = None,
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
    feedback_store: Annotated[str | None, typer.Option(help=FEEDBACK_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Record true labels of logged predictions, joined to them by request id (or batch key)."""
    if id_column is not None and key_column is not None:
        raise InvalidInputError("give --id-column or --key-column, not both")
    ids = key_column or id_column or "request_id"
    frame = read_labels_file(file, text=(ids, label_column))
    wanted = [ids, label_column, *([row_column] if row_column else [])]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"{file} has no column {', '.join(map(repr, missing))}; its columns are "
            f"{', '.join(map(repr, map(str, frame.columns[:30])))}"
        )
    root = feedback_store or feedback_root(
        store or logstore.default_root(state(ctx).settings().home)
    )
    try:
        count = record_feedback_columns(
            name,
            frame[ids],
            frame[label_column],
            frame[row_column] if row_column else None,
            root=root,
        )
    except InvalidInputError as exc:
        raise InvalidInputError(f"{file}: {exc}") from None
    if as_json:
        print_json({"model": name, "recorded": count, "store": root})
    else:
        say(f"Recorded {count} labels of {name!r} in {root}.")


def read_labels_file(path: Path, text: tuple[str, ...] = ()) -> Any:
    """A labels file as a DataFrame, by its suffix. CSV columns in ``text`` stay text as written
    (an id "00123" keeps its zeros; "1" and 1 label alike anyway)."""
    import pandas as pd

    suffix = path.suffix.lower()
    if not path.is_file():
        raise InvalidInputError(f"--file {path} does not exist")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path, dtype=dict.fromkeys(text, str))
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
    except (ValueError, OSError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from None
    raise InvalidInputError(f"--file {path} must be a .parquet, .csv or .jsonl file")
