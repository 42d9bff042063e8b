"""Seaway: take a trained model to production and keep it healthy there.

The public surface is curated: ``__all__`` is checked by tests/unit/test_public_api.py, so a
change to it is deliberate.
"""

__version__ = "0.1.0.dev0"

from seaway.api import load_model, log_model  # noqa: E402
from seaway.config import Settings  # noqa: E402
from seaway.errors import (  # noqa: E402
    InvalidInputError,
    ModelLoadError,
    NotFoundError,
    PackageIntegrityError,
    SeawayError,
    UntrustedPackageError,
)
from seaway.packaging import PythonModel, ModelContext, Signature, TensorSpec, save_model  # noqa: E402
from seaway.registry import ModelVersion, RegisteredModel, Registry  # noqa: E402
from seaway.runtime import Model  # noqa: E402

__all__ = [
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
