"""Unknown ``SEAWAY_*`` variables: a misspelt name (``SEAWAY_REGSITRY_URL``) is a setting silently
not applied, so the CLI warns about every ``SEAWAY_*`` name Seaway does not read.

The known names are gathered from where they are read, not from a list kept by hand: every
option's ``envvar`` in the command tree, the settings in :mod:`seaway.config`, the serve settings
(``SEAWAY_SERVE_<FIELD>``), the replica start method, and the test suite's ``SEAWAY_TEST_*``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

from seaway.config import CONFIG_ENV_VAR, ENV_VARS
from seaway.runtime.spawner import START_ENV
from seaway.serving.config import CONFIG_ENV, ENV_PREFIX, ServeConfig

PREFIX = "SEAWAY_"
#: Families of names that are all Seaway's: the test suite's switches.
KNOWN_PREFIXES = ("SEAWAY_TEST_",)


def known_variables(command: Any) -> set[str]:
    """Every ``SEAWAY_*`` variable this Seaway reads; ``command``: the CLI's root command (typer
    ships its own click, so commands and parameters are duck-typed)."""
    known = {*ENV_VARS.values(), CONFIG_ENV_VAR, CONFIG_ENV, START_ENV}
    known.update(ENV_PREFIX + field.upper() for field in ServeConfig.model_fields)
    for param in walk_params(command):
        envvar = param.envvar
        if isinstance(envvar, str):
            known.add(envvar)
        elif envvar:
            known.update(envvar)
    return {name for name in known if name.startswith(PREFIX)}


def unknown_variable_warnings(environ: Mapping[str, str], command: Any) -> list[str]:
    """One line per unknown ``SEAWAY_*`` name, with the nearest known name when one is close."""
    candidates = [
        name for name in environ if name.startswith(PREFIX) and not name.startswith(KNOWN_PREFIXES)
    ]
    if not candidates:
        return []
    known = known_variables(command)
    lines = []
    for name in sorted(set(candidates) - known):
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        lines.append(f"Warning: {name} is not a Seaway variable and is ignored{hint}")
    return lines


def walk_params(command: Any) -> Iterator[Any]:
    yield from command.params
    for sub in getattr(command, "commands", {}).values():
        yield from walk_params(sub)
