"""Reading a deployment spec's YAML, from a file or an admin API request, within bounds.

A spec is a few dozen values, but YAML lets a few hundred bytes say far more: nesting deep enough
to exhaust PyYAML's recursion (a RecursionError), an integer too long for Python to convert (a
ValueError), or aliases that expand to millions of values (``a: &a [1, 1]``, ``b: [*a, *a]``,
...) which any later walk, or an error message quoting a field, pays for in full. Each is
refused here with an :class:`~seaway.errors.InvalidInputError` saying so, before the spec's own
rules look at it.
"""

from __future__ import annotations

from typing import Any

import yaml

from seaway.errors import InvalidInputError

#: values a spec may hold, counting each use of an alias as the values it stands for
MAX_VALUES = 10_000
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(text: str | bytes, where: str) -> Any:
    """The document in ``text`` (``where`` names it in errors: a file, "the deployment spec")."""
    try:
        doc = yaml.load(text, Loader=_LOADER)  # a safe loader (SafeLoader or libyaml's)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{where} is not valid YAML: {exc}") from None
    except RecursionError:
        raise InvalidInputError(
            f"{where} is nested too deeply to read; a deployment spec is a few levels deep"
        ) from None
    except ValueError as exc:  # an integer of more digits than Python converts, a bad date
        problem = str(exc).split("; use sys.", 1)[0]  # Python's advice is not the user's
        raise InvalidInputError(f"{where} holds a value that cannot be read: {problem}") from None
    _check_size(doc, where)
    return doc


def _check_size(doc: Any, where: str) -> None:
    """Count the values ``doc`` holds, aliases expanded, stopping at the first past the limit
    (a self-referring alias never ends otherwise)."""
    pending, seen = [doc], 0
    while pending:
        value = pending.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise InvalidInputError(
                f"{where} holds more than {MAX_VALUES:,} values (each use of a YAML alias "
                "counting as what it stands for); a deployment spec is a few dozen"
            )
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list | tuple | set):
            pending.extend(value)
