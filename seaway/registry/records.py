"""What the registry hands out: immutable records of models and versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from seaway.packaging.manifest import Manifest
from seaway.packaging.signature import Signature
from seaway.registry.uri import SCHEME


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    flavor: str
    artifact_uri: str
    manifest_sha256: str
    manifest: Manifest
    created_at: datetime
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.name}/{self.version}"

    @property
    def signature(self) -> Signature | None:
        return self.manifest.signature

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as ``--json`` prints it."""
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "aliases": list(self.aliases),
            "flavor": self.flavor,
            "framework": self.manifest.framework.model_dump(),
            "created_at": self.created_at.isoformat(),
            "description": self.description,
            "tags": self.tags,
            "metrics": self.metrics,
            "lineage": self.lineage,
            "artifact_uri": self.artifact_uri,
            "manifest_sha256": self.manifest_sha256,
            "signature": None if self.signature is None else self.signature.model_dump(mode="json"),
            "requirements": self.manifest.requirements,
            "needs_trust": self.manifest.needs_trust,
            "has_reference_profile": self.manifest.reference_profile is not None,
        }


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    latest_version: int | None = None
    version_count: int = 0
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "tags": self.tags,
            "latest_version": self.latest_version,
            "version_count": self.version_count,
            "aliases": self.aliases,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }
