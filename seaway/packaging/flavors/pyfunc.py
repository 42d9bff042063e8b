"""Python-function models: any class deriving from :class:`PythonModel`.

The package stores a reference to the class and, when the class lives in a script (``__main__``)
or ``code_paths`` are given, the code itself; its artifacts are copied alongside. Loading builds
the class with no arguments and calls ``load(context)``. Packaged code runs when the model loads,
so such packages need ``trusted=True``; a class importable from an installed module does not.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import shutil
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from seaway.errors import ModelLoadError, UnsupportedModelError, UntrustedPackageError
from seaway.packaging.flavors.base import Flavor, LoadContext, Predictor, SavedModel, SaveOptions

CODE_DIR = "code"
ARTIFACTS_DIR = "artifacts"


@dataclass(frozen=True)
class ModelContext:
    """Handed to :meth:`PythonModel.load`: where the model's artifacts are on disk."""

    artifacts: dict[str, Path] = field(default_factory=dict)


class PythonModel(ABC):
    """Base class for a model Seaway has no flavor for.

    Subclasses must be constructible with no arguments: state belongs in artifacts, restored by
    :meth:`load`. ``predict`` receives inputs in the form of the signature (a DataFrame, an array
    or a dict of arrays).
    """

    def load(self, context: ModelContext) -> None:  # noqa: B027 - optional hook
        """Restore state from ``context.artifacts``; the default needs none."""

    @abstractmethod
    def predict(self, inputs: Any) -> Any:
        """Return predictions for a batch of inputs."""


class PythonFunctionFlavor(Flavor):
    name = "python_function"
    extra = "sklearn"  # never needed: the flavor has no framework

    def matches(self, model: Any) -> bool:
        return isinstance(model, PythonModel)

    def save(self, model: Any, model_dir: Path, options: SaveOptions) -> SavedModel:
        cls = type(model)
        try:
            cls()
        except TypeError as exc:
            raise UnsupportedModelError(
                f"{cls.__qualname__} must be constructible with no arguments ({exc}); keep its "
                "state in artifacts and restore it in load(context)"
            ) from exc
        artifacts = {
            name: _copy_into(Path(src), model_dir, f"{ARTIFACTS_DIR}/{name}", f"artifact {name!r}")
            for name, src in options.artifacts.items()
        }
        code: list[str] = []
        module = cls.__module__
        if options.code_paths:
            for src in options.code_paths:
                code.append(_copy_into(Path(src), model_dir, CODE_DIR, "code path"))
        elif module == "__main__":
            source = inspect.getsourcefile(cls)
            if source is None:
                raise UnsupportedModelError(
                    f"{cls.__qualname__} was defined interactively, so its code cannot be packaged; "
                    "define it in a .py file or pass code_paths=[...]"
                )
            module = Path(source).stem
            code.append(_copy_into(Path(source), model_dir, CODE_DIR, "the model's script"))
        reasons = (
            (f"packaged Python code ({', '.join(code)}) runs when the model loads",) if code else ()
        )
        return SavedModel(
            framework="python",
            framework_version=sys.version.split()[0],
            options={
                "module": module,
                "class": cls.__qualname__,
                "code": code,
                "artifacts": artifacts,
                "script": module != cls.__module__,
            },
            needs_trust=reasons,
        )

    def wrap(self, model: Any) -> Predictor:
        return model  # type: ignore[no-any-return]

    def load(self, context: LoadContext) -> Predictor:
        opts = context.options
        if opts.get("code") and not context.trusted:
            raise UntrustedPackageError(
                f"this python-function model carries code ({', '.join(opts['code'])}) that runs when "
                "it loads. Load with trusted=True (CLI: --trusted) only if you trust its source"
            )
        module = _import_model_module(context.model_dir, opts)
        cls = _resolve(module, opts["class"])
        try:
            instance = cls()
            artifacts = {
                name: context.model_dir / rel for name, rel in opts.get("artifacts", {}).items()
            }
            instance.load(ModelContext(artifacts=artifacts))
        except Exception as exc:
            raise ModelLoadError(
                f"{opts['class']}.load() failed: {type(exc).__name__}: {exc}"
            ) from exc
        return instance  # type: ignore[no-any-return]


def _copy_into(src: Path, model_dir: Path, subdir: str, what: str) -> str:
    """Copy ``src`` into ``model_dir/subdir``; return its path relative to ``model_dir``."""
    dest_dir = model_dir / subdir
    if not src.exists():
        raise UnsupportedModelError(f"{what} {src} does not exist")
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    if src.is_dir():
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        shutil.copy2(src, dest)
    return dest.relative_to(model_dir).as_posix()


@contextlib.contextmanager
def _no_bytecode() -> Iterator[None]:
    """Importing packaged code must not write __pycache__ into a checksummed package."""
    previous = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = previous


def _import_model_module(model_dir: Path, opts: dict[str, Any]) -> ModuleType:
    module_name: str = opts["module"]
    try:
        with _no_bytecode():
            if opts.get("script"):
                path = model_dir / CODE_DIR / f"{module_name}.py"
                unique = f"seaway_model_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{module_name}"
                spec = importlib.util.spec_from_file_location(unique, path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot import {path}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[unique] = module
                spec.loader.exec_module(module)
                return module
            if opts.get("code"):
                code_dir = str(model_dir / CODE_DIR)
                if code_dir not in sys.path:
                    sys.path.insert(0, code_dir)
            return importlib.import_module(module_name)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot import module {module_name!r} of this python-function model: "
            f"{type(exc).__name__}: {exc}. Install the package that provides it, or log the model "
            "with code_paths=[...]"
        ) from exc


def _resolve(module: ModuleType, qualname: str) -> type:
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ModelLoadError(f"module {module.__name__!r} has no class {qualname!r}")
    return obj  # type: ignore[no-any-return]
