"""Turning packages into running models. See docs/loading.md. Names are imported on first use
(``seaway._lazy``): the zygote's spawner (``runtime/spawner.py``) is imported before the CLI's
own imports, and must not wait for the packaging layer's."""

from typing import TYPE_CHECKING

from seaway._lazy import lazy_exports

if TYPE_CHECKING:
    from seaway.runtime.model import Model, ModelInfo, load_package

__getattr__, __dir__ = lazy_exports(
    __name__,
    {name: "seaway.runtime.model" for name in ("Model", "ModelInfo", "load_package")},
    globals(),
)

__all__ = ["Model", "ModelInfo", "load_package"]
