"""Placeholder, replaced by the real flavor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seaway.errors import PackagingError
from seaway.packaging.flavors.base import Flavor, LoadContext, Predictor, SavedModel, SaveOptions


class TorchFlavor(Flavor):
    name = "torch"
    extra = "torch"

    def matches(self, model: Any) -> bool:
        return False

    def save(self, model: Any, model_dir: Path, options: SaveOptions) -> SavedModel:
        raise PackagingError("not written yet")

    def wrap(self, model: Any) -> Predictor:
        raise PackagingError("not written yet")

    def load(self, context: LoadContext) -> Predictor:
        raise PackagingError("not written yet")
