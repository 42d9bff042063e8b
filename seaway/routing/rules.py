"""The small rules a deployment spec's fields follow: names, version references, durations,
header names and metric names, each refusing a value with a message that says what to write.

The name and alias rules are the registry's (``seaway/registry/uri.py``), copied rather than
imported: routing sits beside the registry's users, not on top of the registry, and a spec is
checked before anything is looked up.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from seaway.errors import InvalidInputError

#: a field's path in a spec: keys and list indexes, ("routes", 1, "weight")
FieldPath = tuple[str | int, ...]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
_LATEST = "latest"
#: an HTTP header's name (RFC 9110 token)
_HEADER = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)\s*([smhd]?)$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: a century: longer is a typo, and would overflow a datetime downstream
LONGEST_S = 100 * 365.25 * 86400.0

#: metrics a validation gate may name (the model's, scored on held-out data; latency per row)
HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse", "p50_ms", "p99_ms"})
UNIT_INTERVAL = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc"})


class FieldProblem(ValueError):
    """Raised by a spec validator: ``path`` is relative to the model that raised it."""

    def __init__(self, path: FieldPath, message: str) -> None:
        super().__init__(message)
        self.path = path


def format_path(path: FieldPath) -> str:
    """``("routes", 1, "weight")`` as ``routes[1].weight``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def parse_duration(text: str | float | int) -> float:
    """Seconds from ``"30s"``, ``"5m"``, ``"1h"``, ``"2d"``, ``"1.5h"`` or a number of seconds."""
    example = "write seconds, or a number and a unit: 30s, 5m, 1h, 2d"
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise InvalidInputError(f"{text!r} is not a duration; {example}")
    if isinstance(text, str):
        match = _DURATION.match(text.strip().lower())
        if match is None:
            raise InvalidInputError(f"{text!r} is not a duration; {example}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        seconds = float(text)
        if not math.isfinite(seconds) or seconds < 0:
            raise InvalidInputError(f"{text!r} is not a duration; {example}")
    if seconds > LONGEST_S:
        raise InvalidInputError(f"{text!r} is longer than 100 years; {example}")
    return seconds


def model_name(value: Any) -> Any:
    """A deployment's or a model's name: the registry's model-name rule."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: use 1-128 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return value


def alias_name(value: Any) -> Any:
    if not isinstance(value, str) or value == _LATEST or not _ALIAS.match(value):
        raise ValueError(
            f"{value!r} is not a valid alias: use 1-64 letters, digits, '_' or '-', starting "
            f"with a letter ('{_LATEST}' is reserved)"
        )
    return value


def version_ref(value: Any) -> Any:
    """A version number (1 or more; ``"4"`` reads as 4) or an alias name."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() and int(text) >= 1:
            return int(text)
        if text != _LATEST and _ALIAS.match(text):
            return text
    raise ValueError(
        f"{value!r} is not a version: use a version number (1 or more) or an alias name "
        "(letters, digits, '_' or '-', starting with a letter)"
    )


def header_name(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not _HEADER.match(value):
        raise ValueError(
            f"{value!r} is not an HTTP header name: use letters, digits and '-', e.g. X-User-ID"
        )
    return value


def number_text(value: float) -> str:
    """``95`` rather than ``95.0`` in a message."""
    return str(int(value)) if math.isfinite(value) and value == int(value) else f"{value:g}"


# -- pydantic's report, in the spec's words ------------------------------------------------------


def describe(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    """One pydantic error as ``path: what is wrong and what to write``."""
    loc: FieldPath = tuple(error["loc"])
    problem = error.get("ctx", {}).get("error")
    if isinstance(problem, FieldProblem):
        loc, message = (*loc, *problem.path), str(problem)
    elif isinstance(problem, ValueError):  # a BeforeValidator's refusal: its message says it all
        message = str(problem)
    else:
        message = _pydantic_message(error, loc, root)
    where = format_path(loc)
    return f"{where}: {message}" if where else message


def _pydantic_message(error: Mapping[str, Any], loc: FieldPath, root: type[BaseModel]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "missing; add it"
    if kind == "extra_forbidden":
        return "unknown key" + _known_keys(loc, root)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping" + _known_keys((*loc, ""), root)
    if kind in ("tuple_type", "list_type"):
        return "must be a list"
    message = str(error["msg"]).replace("Input should", "must")
    value = error.get("input")
    if isinstance(value, str | int | float | bool) or value is None:
        message += f" (got {value!r})"
    return message


def _known_keys(loc: FieldPath, root: type[BaseModel]) -> str:
    """The keys the mapping holding ``loc[-1]`` takes, for an unknown-key message."""
    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return ""
        model = _model_of(field.annotation)
        if model is None:
            return ""
    keys = list(model.model_fields)
    hint = ""
    guess = difflib.get_close_matches(str(loc[-1]), keys, n=1) if loc[-1] else []
    if guess:
        hint = f"; did you mean {guess[0]!r}?"
    return f"{hint} (keys: {', '.join(keys)})"


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
