"""Lazy package attributes (PEP 562), so that importing one submodule does not import them all.

A replica or a batch worker process imports ``seaway.runtime`` or ``seaway.batch.local``, which
runs ``seaway/__init__.py`` first; with eager imports there, every such process also loaded the
registry (SQLAlchemy, Alembic) and the HTTP client it never uses, about a third of a second each.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps a name to its module."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
