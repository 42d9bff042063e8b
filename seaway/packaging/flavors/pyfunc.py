"""Python-function models: any class deriving from :class:`PythonModel`.

The package stores a reference to the class and, when the class lives in a script (``__main__``)
or ``code_paths`` are given, the code itself; its artifacts are copied alongside. Loading builds
the class with no arguments and calls ``load(context)``; the sample input is checked against an
instance built that same way from the packaged artifacts, so a model that only works as the live
object in the training process is refused before it is registered. Packaged code runs when the
model loads, so such packages need ``trusted=True``; a class importable from an installed module
does not. Requirements are read from the code's imports (``seaway.packaging.imports``).
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
from seaway.packaging.imports import (
    distribution_of_file,
    distributions_for,
    imported_modules,
    own_modules,
    python_files,
)

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
        if "<locals>" in cls.__qualname__:
            raise UnsupportedModelError(
                f"{cls.__qualname__} is defined inside a function, so no server can import it; "
                "define the class at the top level of a module or script"
            )
        artifacts = {
            name: _copy_into(Path(src), model_dir, f"{ARTIFACTS_DIR}/{name}", f"artifact {name!r}")
            for name, src in options.artifacts.items()
        }
        code = [
            _copy_into(Path(src), model_dir, CODE_DIR, "code path") for src in options.code_paths
        ]
        module = cls.__module__
        script_path: str | None = None
        source = _source_file(cls)
        if module in _SCRIPT_MODULES:
            # a class from the running script: its module name (__main__) means another program
            # in a server or a replica, so it is saved under the script's file name and loaded
            # from the packaged file, whether or not code_paths also named that file
            if source is None:
                raise UnsupportedModelError(
                    f"{cls.__qualname__} was defined interactively, so its code cannot be "
                    "packaged; define it in a .py file (code_paths=[...] for its helpers)"
                )
            module = source.stem
            script_path = _packaged_copy(source, options.code_paths)
            if script_path is None:
                script_path = _copy_into(source, model_dir, CODE_DIR, "the model's script")
                code.append(script_path)
        reasons = (
            (f"packaged Python code ({', '.join(code)}) runs when the model loads",) if code else ()
        )
        return SavedModel(
            framework="python",
            framework_version=sys.version.split()[0],
            requirements=_requirements(cls, source, options.code_paths),
            options={
                "module": module,
                "class": cls.__qualname__,
                "code": code,
                "artifacts": artifacts,
                "script": script_path is not None,
                "script_path": script_path,
                "code_on_path": bool(options.code_paths),
            },
            needs_trust=reasons,
        )

    def wrap(self, model: Any) -> Predictor:
        return model  # type: ignore[no-any-return]

    def sample_predictor(self, model: Any, model_dir: Path, saved: SavedModel) -> Predictor:
        """A new instance restored by ``load(context)`` from the packaged artifacts, as a server
        builds it: the instance passed to ``save_model`` may never have been loaded at all."""
        cls = type(model)
        opts = saved.options
        if not opts["script"] and not opts["code"]:
            _importable(cls, opts["module"])
        instance = cls()
        try:
            instance.load(ModelContext(artifacts=_artifact_paths(model_dir, opts)))
        except Exception as exc:
            raise ModelLoadError(
                f"{cls.__qualname__}.load(context) failed on the packaged artifacts "
                f"({type(exc).__name__}: {exc}); it runs whenever the model is loaded or served, "
                "so it must restore the model from context.artifacts alone"
            ) from exc
        return instance  # type: ignore[no-any-return]

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
            instance.load(ModelContext(artifacts=_artifact_paths(context.model_dir, opts)))
        except Exception as exc:
            raise ModelLoadError(
                f"{opts['class']}.load() failed: {type(exc).__name__}: {exc}"
            ) from exc
        return instance  # type: ignore[no-any-return]


#: Module names of a class defined in the running script (``__mp_main__``: a spawned child's).
_SCRIPT_MODULES = frozenset({"__main__", "__mp_main__"})


def _source_file(cls: type) -> Path | None:
    try:
        source = inspect.getsourcefile(cls)
    except (TypeError, OSError):
        return None
    return Path(source) if source else None


def _packaged_copy(source: Path, code_paths: tuple[Path, ...]) -> str | None:
    """Where ``source`` lands inside the package when one of ``code_paths`` is or holds it."""
    target = source.resolve()
    for src in code_paths:
        root = Path(src).resolve()
        if root == target:
            return f"{CODE_DIR}/{root.name}"
        if root.is_dir() and target.is_relative_to(root):
            return f"{CODE_DIR}/{root.name}/{target.relative_to(root).as_posix()}"
    return None


def _requirements(cls: type, source: Path | None, code_paths: tuple[Path, ...]) -> tuple[str, ...]:
    """Distributions the model's code imports (see ``seaway.packaging.imports``)."""
    files = python_files([Path(p) for p in code_paths])
    found: list[str] = []
    if source is not None:
        files.append(source)
        if cls.__module__ not in _SCRIPT_MODULES and not code_paths:
            owner = distribution_of_file(cls.__module__, source)
            if owner is not None:
                found.append(owner)
    local = own_modules([Path(p) for p in code_paths])
    if source is not None:
        local.add(source.stem)
    return tuple(
        dict.fromkeys([*found, *distributions_for(imported_modules(files), exclude=local)])
    )


def _importable(cls: type, module_name: str) -> None:
    """A class stored by reference must come back from its module by name, as in a server."""
    try:
        found = _resolve(importlib.import_module(module_name), cls.__qualname__)
    except (ImportError, ModelLoadError) as exc:
        raise UnsupportedModelError(
            f"{cls.__qualname__} cannot be imported back from module {module_name!r} ({exc}); "
            "define it at the top level of a module, or pass code_paths=[...]"
        ) from exc
    if found is not cls:
        raise UnsupportedModelError(
            f"{module_name}.{cls.__qualname__} is not the class being saved (was the module "
            "reloaded or the class redefined?); restart and save again"
        )


def _artifact_paths(model_dir: Path, opts: dict[str, Any]) -> dict[str, Path]:
    return {name: model_dir / rel for name, rel in opts.get("artifacts", {}).items()}


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
    code_dir = str(model_dir / CODE_DIR)
    # packages from before code_on_path was recorded: code_paths went on sys.path, a script not
    on_path = opts.get("code_on_path", bool(opts.get("code")) and not opts.get("script"))
    try:
        with _no_bytecode():
            if on_path and code_dir not in sys.path:
                sys.path.insert(0, code_dir)  # the model's helpers import as they did in training
            if opts.get("script"):
                path = model_dir / (opts.get("script_path") or f"{CODE_DIR}/{module_name}.py")
                unique = f"seaway_model_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{module_name}"
                spec = importlib.util.spec_from_file_location(unique, path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot import {path}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[unique] = module
                spec.loader.exec_module(module)
                return module
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
