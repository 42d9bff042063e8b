"""What a flavor is: how one framework's models are recognised, saved and loaded.

A flavor never imports its framework at module import time: ``matches`` looks at the class's
module names, and ``save``/``load`` import lazily through :func:`require`, so a missing framework
raises an error that names the extra to install.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Protocol, runtime_checkable

from seaway.errors import MissingDependencyError
from seaway.packaging.signature import Signature


@runtime_checkable
class Predictor(Protocol):
    """A loaded model, taking the native input form its signature coerces to."""

    def predict(self, data: Any) -> Any: ...


@dataclass(frozen=True)
class SavedModel:
    """What a flavor reports after writing a model's files into ``model_dir``."""

    framework: str
    framework_version: str
    #: Distribution names to pin in the package's requirements.
    requirements: tuple[str, ...] = ()
    #: Facts ``load`` needs; JSON-serialisable.
    options: dict[str, Any] = field(default_factory=dict)
    #: Reasons loading needs ``trusted=True``.
    needs_trust: tuple[str, ...] = ()
    #: A signature the format itself declares (ONNX graphs); a sample input then only validates.
    signature: Signature | None = None


@dataclass(frozen=True)
class SaveOptions:
    """What the caller of ``save_model`` passed beyond the model itself."""

    sample_input: Any = None
    #: Python-function models only: name -> file or folder copied into the package.
    artifacts: dict[str, Path] = field(default_factory=dict)
    #: Python-function models only: files or folders of code copied into the package.
    code_paths: tuple[Path, ...] = ()


@dataclass(frozen=True)
class LoadContext:
    """Where a flavor finds its files when loading."""

    package_dir: Path
    model_dir: Path
    options: dict[str, Any]
    trusted: bool


class Flavor(ABC):
    name: ClassVar[str]
    #: The pip extra that installs the framework, named in MissingDependencyError.
    extra: ClassVar[str]

    @abstractmethod
    def matches(self, model: Any) -> bool:
        """Whether this flavor handles ``model``; must not import the framework."""

    @abstractmethod
    def save(self, model: Any, model_dir: Path, options: SaveOptions) -> SavedModel:
        """Write ``model`` into the empty folder ``model_dir`` in the framework's native format."""

    @abstractmethod
    def wrap(self, model: Any) -> Predictor:
        """The live object as a Predictor, to run the sample input through before saving."""

    def sample_predictor(self, model: Any, model_dir: Path, saved: SavedModel) -> Predictor:
        """What ``save_model`` runs the sample input through, once ``save`` wrote ``model_dir``.

        The live object by default; a flavor whose saved form is rebuilt differently when
        served (python-function models restore themselves from artifacts) returns that instead.
        """
        return self.wrap(model)

    @abstractmethod
    def load(self, context: LoadContext) -> Predictor:
        """Load the files written by ``save``."""


def class_modules(obj: Any) -> list[str]:
    """Module names of every class in ``obj``'s MRO, for import-free detection."""
    return [cls.__module__ for cls in type(obj).__mro__]


def from_module(obj: Any, *prefixes: str) -> bool:
    return any(mod == p or mod.startswith(p + ".") for mod in class_modules(obj) for p in prefixes)


def require(module: str, *, package: str, extra: str, purpose: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package, extra, purpose) from exc


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
