"""The package format: a folder with model files, a manifest and checksums. See docs/packaging.md."""

from seaway.packaging.flavors import ModelContext, PythonModel
from seaway.packaging.manifest import Manifest
from seaway.packaging.reader import load_predictor, open_package
from seaway.packaging.signature import Signature, TensorSpec, infer_signature
from seaway.packaging.writer import Package, save_model

__all__ = [
    "Manifest",
    "ModelContext",
    "Package",
    "PythonModel",
    "Signature",
    "TensorSpec",
    "infer_signature",
    "load_predictor",
    "open_package",
    "save_model",
]
