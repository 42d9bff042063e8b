"""The model registry: versions, aliases, lineage and artifacts. See docs/registry.md."""

from seaway.apikeys import ApiKey
from seaway.registry.records import ModelVersion, RegisteredModel
from seaway.registry.registry import Registry
from seaway.registry.uri import ModelRef, parse_model_uri, parse_reference

__all__ = [
    "ApiKey",
    "ModelRef",
    "ModelVersion",
    "RegisteredModel",
    "Registry",
    "parse_model_uri",
    "parse_reference",
]
