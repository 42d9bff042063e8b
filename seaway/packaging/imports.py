"""Requirements of Python-function models, read from what their code imports.

A ``PythonModel`` has no framework for Seaway to pin, so its requirements come from the code: the
top-level modules its files import (anywhere in them, since ``load`` often imports lazily) are
mapped to the installed distributions that provide them. Only what maps reliably is kept: the
standard library, Seaway itself, the package's own code and relative imports are skipped, and so is
a module that no installed distribution, or several, claim. Nothing is imported or run: the
files are parsed with :mod:`ast`.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import metadata
from pathlib import Path

#: Never a requirement: the package format itself needs Seaway to load.
_SELF = frozenset({"seaway"})


def python_files(paths: Iterable[Path]) -> list[Path]:
    """The ``.py`` files among ``paths`` and under the folders among them."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
        elif path.suffix == ".py":
            found.append(path)
    return found


def own_modules(paths: Iterable[Path]) -> set[str]:
    """Top-level module names the packaged code itself provides (``helpers.py``, ``features/``)."""
    names = set()
    for path in paths:
        names.add(path.stem if path.is_file() else path.name)
        if path.is_dir():  # a folder of code is also put on sys.path: its children import too
            names |= {child.stem for child in path.iterdir()}
    return names


def imported_modules(files: Iterable[Path]) -> set[str]:
    """Top-level names of the absolute imports in ``files`` (unparseable files are skipped)."""
    names: set[str] = set()
    for file in files:
        try:
            tree = ast.parse(file.read_bytes(), filename=str(file))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.partition(".")[0])
    return names


def distributions_for(modules: Iterable[str], *, exclude: Iterable[str] = ()) -> list[str]:
    """The installed distributions providing ``modules``, where exactly one does, sorted."""
    skip = set(exclude) | _SELF | set(sys.stdlib_module_names) | {"__future__", "__main__"}
    providers = _providers()
    found: set[str] = set()
    for module in modules:
        if module in skip:
            continue
        candidates = providers.get(module, ())
        if len(candidates) == 1 and _normal(candidates[0]) not in _SELF:
            found.add(candidates[0])
    return sorted(found, key=_normal)


def distribution_of_file(module: str, file: Path) -> str | None:
    """The distribution that installed ``file`` (the defining module of a model class), if any.

    Checked against the distribution's own file list, so a local folder that happens to share a
    top-level name with some installed distribution (``tests``, ``utils``) is not mistaken for it.
    """
    top = module.partition(".")[0]
    target = file.resolve()
    for name in _providers().get(top, ()):
        if _normal(name) in _SELF:
            return None
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            continue
        if any(Path(str(entry.locate())).resolve() == target for entry in files):
            return name
    return None


@lru_cache(maxsize=1)
def _providers() -> Mapping[str, tuple[str, ...]]:
    """Top-level module -> distinct distributions providing it (scanning them once per process)."""
    return {
        module: tuple({_normal(d): d for d in dists}.values())
        for module, dists in metadata.packages_distributions().items()
    }


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")
