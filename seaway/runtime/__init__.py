"""Turning packages into running models. See docs/loading.md."""

from seaway.runtime.model import Model, ModelInfo, load_package

__all__ = ["Model", "ModelInfo", "load_package"]
