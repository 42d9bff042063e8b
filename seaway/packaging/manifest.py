"""The package manifest: what a package holds and how to load it, written as ``manifest.json``.

The manifest lists the SHA-256 of every other file, so a package is verified before any byte of it
is handed to a framework loader. The registry stores the manifest's own digest, which closes the
chain for packages that come from a registry.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seaway.errors import PackageIntegrityError
from seaway.packaging.signature import Signature

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


class FrameworkInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str


class ServingConfig(BaseModel):
    """How a model likes to be served; ``seaway serve`` flags override each setting."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Rows per model call; 1 turns batching off (models whose output is not per row).
    max_batch_size: int | None = Field(default=None, ge=1)
    #: Under load, how long (ms) a freed replica may wait for its batch to fill.
    max_latency_ms: float | None = Field(default=None, ge=0)
    #: Worker processes per served version.
    replicas: int | None = Field(default=None, ge=1, le=256)
    #: Requests waiting per version before the server answers 429.
    max_queue: int | None = Field(default=None, ge=1)
    #: Seconds a request may take.
    timeout: float | None = Field(default=None, gt=0)


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = FORMAT_VERSION
    flavor: str
    #: Flavor-specific facts needed to load (file names, model class, classes_, ...).
    flavor_options: dict[str, Any] = Field(default_factory=dict)
    framework: FrameworkInfo
    python_version: str
    seaway_version: str
    created_at: datetime
    #: Pinned pip requirements of what the model needs to load.
    requirements: list[str] = Field(default_factory=list)
    signature: Signature | None = None
    #: Relative paths of optional parts.
    input_example: str | None = None
    reference_profile: str | None = None
    #: Why loading needs ``trusted=True`` (pickle files, packaged code); empty when it does not.
    needs_trust: list[str] = Field(default_factory=list)
    #: The model's own serving defaults (batching, replicas, timeout).
    serving: ServingConfig | None = Field(default=None, exclude_if=lambda value: value is None)
    #: Relative path (POSIX) -> SHA-256 hex digest, for every file but the manifest.
    files: dict[str, str] = Field(default_factory=dict)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def read(cls, package_dir: Path) -> Manifest:
        path = package_dir / MANIFEST_NAME
        if not package_dir.is_dir():
            raise PackageIntegrityError(f"{package_dir} is not a folder holding a Seaway package")
        try:
            raw = path.read_bytes()
        except FileNotFoundError as exc:
            raise PackageIntegrityError(
                f"{package_dir} is not a Seaway package: it has no {MANIFEST_NAME}. "
                "Create one with seaway.save_model(), or import an MLflow model with "
                "'seaway models import-mlflow'"
            ) from exc
        return cls.parse(raw, source=str(path))

    @classmethod
    def parse(cls, raw: bytes, *, source: str) -> Manifest:
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PackageIntegrityError(f"{source} is corrupt: not valid JSON ({exc})") from exc
        if isinstance(data, dict) and data.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise PackageIntegrityError(
                f"{source} uses package format {data['format_version']}, newer than this Seaway "
                f"understands ({FORMAT_VERSION}); upgrade seaway"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise PackageIntegrityError(f"{source} is corrupt: {exc}") from exc
