"""The package manifest: what a package holds and how to load it, written as ``manifest.json``.

The manifest lists the SHA-256 of every other file, so a package is verified before any byte of it
is handed to a framework loader. The registry stores the manifest's own digest, which closes the
chain for packages that come from a registry.

Every path a manifest names (its file list, the example and profile, the path-valued flavor
options) must stay inside the package folder: relative, POSIX, no ``..``. A manifest naming
``/etc/passwd`` or ``../other/model.pkl`` would otherwise have Seaway hash, or a loader open, files
that are not the package's; such a manifest is refused when read and cannot be written.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from seaway.errors import PackageIntegrityError
from seaway.packaging.signature import Signature

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
#: Flavor options whose values are paths (or lists or maps of paths) inside the model folder.
PATH_OPTIONS = ("file", "python_model", "data", "code", "artifacts")


def outside_reason(rel: str) -> str | None:
    """Why ``rel`` does not name a file inside a package folder; ``None`` when it does."""
    if not rel or rel.strip() != rel:
        return "is empty or padded with spaces"
    if "\\" in rel or "\0" in rel:
        return "holds a backslash or NUL (package paths are POSIX)"
    if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        return "is absolute"
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return "has an empty, '.' or '..' part"
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, str):
        return [value]
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def require_inside(rel: str, what: str) -> None:
    """Refuse a manifest path that would leave the package folder, naming it."""
    reason = outside_reason(rel)
    if reason is not None:
        raise PackageIntegrityError(
            f"the package manifest names {what} {rel!r}, which {reason}: a package may only name "
            "relative paths inside its own folder; refusing it"
        )


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
    #: Seconds one model call may take before its replica is killed as hung.
    call_timeout: float | None = Field(default=None, gt=0)
    #: Share of requests written to the prediction log (0 to 1; ``seaway serve --log-sample``).
    log_sample: float | None = Field(default=None, ge=0, le=1)
    #: Inputs never written to the prediction log (privacy: ``["email", "ssn"]``).
    log_exclude: list[str] | None = None


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
    #: The model's outputs on its reference data (a profile) and its classifier calibration
    #: (``packaging/reference.py``); absent from manifests without them.
    reference_predictions: str | None = Field(default=None, exclude_if=lambda value: value is None)
    calibration: str | None = Field(default=None, exclude_if=lambda value: value is None)
    #: Why loading needs ``trusted=True`` (pickle files, packaged code); empty when it does not.
    needs_trust: list[str] = Field(default_factory=list)
    #: The model's own serving defaults (batching, replicas, timeout).
    serving: ServingConfig | None = Field(default=None, exclude_if=lambda value: value is None)
    #: Relative path (POSIX) -> SHA-256 hex digest, for every file but the manifest.
    files: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _paths_stay_inside(self) -> Manifest:
        # raises PackageIntegrityError itself (not ValueError), so pydantic passes it through
        for name in self.files:
            require_inside(name, "file")
        for field, part in (
            ("input_example", self.input_example),
            ("reference_profile", self.reference_profile),
            ("reference_predictions", self.reference_predictions),
            ("calibration", self.calibration),
        ):
            if part is not None:
                require_inside(part, field)
        for key in PATH_OPTIONS:
            for option in _strings(self.flavor_options.get(key)):
                require_inside(option, f"flavor option {key!r} path")
        return self

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
