"""Seaway: take a trained model to production and keep it healthy there.

The public surface is curated: ``__all__`` is checked by tests/unit/test_public_api.py, so a
change to it is deliberate. Names are imported on first use (``seaway._lazy``).
"""

from typing import TYPE_CHECKING

from seaway._lazy import lazy_exports
from seaway._version import __version__

if TYPE_CHECKING:
    from seaway.api import load_model, log_model
    from seaway.client import Client
    from seaway.config import Settings
    from seaway.errors import (
        InvalidInputError,
        ModelLoadError,
        NotFoundError,
        PackageIntegrityError,
        SeawayError,
        UntrustedPackageError,
    )
    from seaway.packaging import ModelContext, PythonModel, Signature, TensorSpec, save_model
    from seaway.registry import ModelVersion, RegisteredModel, Registry
    from seaway.runtime import Model

_EXPORTS = {
    "load_model": "seaway.api",
    "log_model": "seaway.api",
    "Client": "seaway.client",
    "Settings": "seaway.config",
    "InvalidInputError": "seaway.errors",
    "ModelLoadError": "seaway.errors",
    "NotFoundError": "seaway.errors",
    "PackageIntegrityError": "seaway.errors",
    "SeawayError": "seaway.errors",
    "UntrustedPackageError": "seaway.errors",
    "ModelContext": "seaway.packaging",
    "PythonModel": "seaway.packaging",
    "Signature": "seaway.packaging",
    "TensorSpec": "seaway.packaging",
    "save_model": "seaway.packaging",
    "ModelVersion": "seaway.registry",
    "RegisteredModel": "seaway.registry",
    "Registry": "seaway.registry",
    "Model": "seaway.runtime",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "Client",
    "InvalidInputError",
    "Model",
    "ModelContext",
    "ModelLoadError",
    "ModelVersion",
    "NotFoundError",
    "PackageIntegrityError",
    "PythonModel",
    "RegisteredModel",
    "Registry",
    "SeawayError",
    "Settings",
    "Signature",
    "TensorSpec",
    "UntrustedPackageError",
    "__version__",
    "load_model",
    "log_model",
    "save_model",
]
