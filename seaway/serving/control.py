"""What the HTTP and gRPC adapters may ask of the control plane: a narrow, typed interface.

The adapters (``serving/http``, ``serving/grpc``) and the data plane must serve requests while
the database is down, so they never import the registry, SQLAlchemy or the controller's module:
they see the controller only through these protocols (an import-linter contract in
``pyproject.toml`` keeps it so). The controller (``serving/controller.py``) implements
:class:`ModelRepository`; the deployments controller implements :class:`DeploymentAdmin`; a
control plane that does both is a :class:`ControlPlane`. The deployment calls take and return
JSON-able values, so an adapter only decodes and encodes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class IndexEntry(Protocol):
    """One row of ``/v2/repository/index``: a version and its state (``READY``, ``LOADING``,
    ``UNAVAILABLE``) with the reason when it is not ready."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def reason(self) -> str: ...


class ModelRepository(Protocol):
    """The Open Inference repository extension: load, unload and list served models."""

    async def load(self, name: str, parameters: Mapping[str, Any]) -> None: ...

    async def unload(self, name: str) -> None: ...

    def index(self) -> Sequence[IndexEntry]: ...


class DeploymentAdmin(Protocol):
    """The admin API of deployments (admin scope when auth is on). ``actor`` says who asks
    (``key:<id>`` with auth on, else the server's own); every answer is a JSON-able dict, and
    every refusal a ``SeawayError`` naming what is wrong."""

    async def list_deployments(self) -> list[dict[str, Any]]: ...

    async def get_deployment(self, name: str) -> dict[str, Any]: ...

    async def apply_deployment(
        self, spec: Mapping[str, Any], *, actor: str | None, dry_run: bool = False
    ) -> dict[str, Any]: ...

    async def deployment_action(
        self,
        name: str,
        action: str,
        *,
        actor: str | None,
        to_revision: int | None = None,
    ) -> dict[str, Any]: ...

    async def deployment_history(
        self, name: str, *, decisions: bool = False, limit: int | None = None
    ) -> dict[str, Any]: ...

    async def deployment_results(self, name: str) -> dict[str, Any]: ...


class ControlPlane(ModelRepository, DeploymentAdmin, Protocol):
    """A control plane that serves both the repository extension and the deployments API."""
