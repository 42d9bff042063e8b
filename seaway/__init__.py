"""Seaway: take a trained model to production and keep it healthy there.

The public surface is curated: ``__all__`` is checked by tests/unit/test_public_api.py, so a
change to it is deliberate.
"""

from seaway._version import __version__
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
