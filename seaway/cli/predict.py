"""``seaway predict``: send a file of inputs to a running server and print the predictions.

The server serves each model under its name, so a model URI is mapped onto its routes:
``models:/NAME/VERSION`` goes to ``/v2/models/NAME/versions/VERSION``, ``models:/NAME@ALIAS`` and
``models:/NAME/latest`` to ``/v2/models/NAME``. The CLI does not ask the registry what an alias
points at: against a server, an alias means "the version this server answers for NAME", which is
the alias's version when the server was started with ``models:/NAME@ALIAS`` (it follows moves).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer

from seaway.cli.output import print_json, say
from seaway.client import Client
from seaway.errors import AuthenticationError, InvalidInputError, MissingDependencyError
from seaway.registry.uri import is_model_uri, parse_model_uri, parse_reference

API_KEY_ENV = "SEAWAY_API_KEY"
PARQUET_SUFFIXES = (".parquet", ".pq")


def predict_command(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="A model the server serves: NAME, NAME/VERSION, or a model URI "
            "(models:/NAME/VERSION; models:/NAME@ALIAS and models:/NAME/latest ask for the "
            "version the server answers NAME with).",
        ),
    ],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            "-d",
            help="A .csv (header row), .json or .parquet file of inputs (.parquet needs the "
            "batch extra).",
        ),
    ],
    url: Annotated[
        str, typer.Option(envvar="SEAWAY_URL", help="The server.")
    ] = "http://127.0.0.1:8080",
    proba: Annotated[
        bool,
        typer.Option(
            "--proba",
            help='Print probabilities instead, with "classes": the class of each column.',
        ),
    ] = False,
    api_key: Annotated[
        str | None, typer.Option(envvar=API_KEY_ENV, help="Bearer key (servers run with --auth).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 30.0,
) -> None:
    """Predict with a served model. JSON files hold records, a dict of columns, or rows."""
    name, version = served_route(model)
    inputs = read_inputs(data)
    try:
        with Client(url, api_key=api_key, timeout=timeout) as client:
            answer: dict[str, Any] = {}
            if proba:
                result = client.predict_proba(name, inputs, version=version)
                classes = client.classes(name, version)
                if classes is not None:  # which probability column is which class
                    answer["classes"] = classes
            else:
                result = client.predict(name, inputs, version=version)
    except AuthenticationError as exc:
        given = "the key given was refused" if api_key else "no key was given"
        raise AuthenticationError(
            f"{exc} ({given}; pass a key with --api-key KEY or set {API_KEY_ENV}; "
            "'seaway keys create --scope predict' makes one)"
        ) from exc
    print_json({"predictions": np.asarray(result).tolist(), **answer}, compact=True)


def served_route(model: str) -> tuple[str, str | None]:
    """The served name and version (``None``: the server's unversioned route) for ``model``."""
    if is_model_uri(model) or "@" in model:
        ref = parse_model_uri(model) if is_model_uri(model) else parse_reference(model)
        if ref.alias is not None:
            say(
                f"Note: {model} is answered by the version the server serves as {ref.name} (the "
                f"alias's, if the server was started with models:/{ref.name}@{ref.alias})",
                err=True,
            )
        return ref.name, None if ref.version is None else str(ref.version)
    name, _, version = model.partition("/")  # a served folder's name need not be a registry name
    return name, version or None


def read_inputs(path: Path) -> Any:
    if not path.is_file():
        raise InvalidInputError(f"--data {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            return pd.read_csv(path)
        except (ValueError, pd.errors.ParserError) as exc:
            raise InvalidInputError(f"{path} is not a readable CSV file: {exc}") from exc
    if suffix in PARQUET_SUFFIXES:
        return _read_parquet(path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"{path} is not valid JSON: {exc} (--data takes .csv, .json or .parquet files)"
        ) from exc
    if isinstance(content, list) and content and all(isinstance(row, dict) for row in content):
        return pd.DataFrame.from_records(content)
    if isinstance(content, dict):
        content = content.get("inputs", content)
        if isinstance(content, dict):
            return pd.DataFrame(content)
    if isinstance(content, list):
        return np.asarray(content)
    raise InvalidInputError(f"{path}: expected records, a dict of columns, or rows of values")


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependencyError("pyarrow", "batch", f"Reading {path.name}") from exc
    try:
        frame: pd.DataFrame = pq.read_table(path).to_pandas()
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise InvalidInputError(f"{path} is not a readable Parquet file: {exc}") from exc
    return frame
