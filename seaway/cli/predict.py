"""``seaway predict``: send a file of inputs to a running server and print the predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer

from seaway.cli.output import print_json
from seaway.client import Client
from seaway.errors import InvalidInputError


def predict_command(
    model: Annotated[
        str, typer.Argument(metavar="MODEL[/VERSION]", help="A model the server serves.")
    ],
    data: Annotated[
        Path, typer.Option("--data", "-d", help="A .csv (header row) or .json file of inputs.")
    ],
    url: Annotated[
        str, typer.Option(envvar="SEAWAY_URL", help="The server.")
    ] = "http://127.0.0.1:8080",
    proba: Annotated[bool, typer.Option("--proba", help="Print probabilities instead.")] = False,
    api_key: Annotated[
        str | None, typer.Option(envvar="SEAWAY_API_KEY", help="Bearer key.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 30.0,
) -> None:
    """Predict with a served model. JSON files hold records, a dict of columns, or rows."""
    name, _, version = model.partition("/")
    inputs = read_inputs(data)
    with Client(url, api_key=api_key, timeout=timeout) as client:
        if proba:
            result = client.predict_proba(name, inputs, version=version or None)
        else:
            result = client.predict(name, inputs, version=version or None)
    print_json({"predictions": np.asarray(result).tolist()}, compact=True)


def read_inputs(path: Path) -> Any:
    if not path.is_file():
        raise InvalidInputError(f"--data {path} does not exist")
    if path.suffix.lower() == ".csv":
        try:
            return pd.read_csv(path)
        except (ValueError, pd.errors.ParserError) as exc:
            raise InvalidInputError(f"{path} is not a readable CSV file: {exc}") from exc
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path} is not valid JSON: {exc}") from exc
    if isinstance(content, list) and content and all(isinstance(row, dict) for row in content):
        return pd.DataFrame.from_records(content)
    if isinstance(content, dict):
        content = content.get("inputs", content)
        if isinstance(content, dict):
            return pd.DataFrame(content)
    if isinstance(content, list):
        return np.asarray(content)
    raise InvalidInputError(f"{path}: expected records, a dict of columns, or rows of values")
