"""The deployments admin API's side in the server: ``seaway.deploy`` run off the event loop.

The HTTP adapter (``serving/http/deployments.py``) sees this only as a
:class:`~seaway.serving.control.DeploymentAdmin`. Every call is the same library function the
CLI and the Python API call (same validation, same audit record), run in a worker thread; a call
that changed a deployment is followed by this server at once (``after_change``), the other
servers within their poll interval.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from seaway import deploy
from seaway.deploy.actor import local_actor
from seaway.errors import ConflictError

if TYPE_CHECKING:
    from seaway.registry import Registry


class DeploymentAdminService:
    def __init__(
        self,
        registry: Registry,
        after_change: Callable[[], Awaitable[None]] | None = None,
        *,
        trusted: bool = False,
        served_models: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self.registry = registry
        self._after_change = after_change
        self._trusted = trusted
        #: the names this server serves as plain models: a deployment by one of them could not
        #: be served here (each name serves one thing)
        self._served_models = served_models

    async def list_deployments(self) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            names = [d.name for d in self.registry.deployments.list()]
            return [deploy.status(self.registry, name).to_json() for name in names]

        return await asyncio.to_thread(read)

    async def get_deployment(self, name: str) -> dict[str, Any]:
        return (await asyncio.to_thread(deploy.status, self.registry, name)).to_json()

    async def apply_deployment(
        self, spec: Mapping[str, Any], *, actor: str | None, dry_run: bool = False
    ) -> dict[str, Any]:
        name = spec.get("name")
        if isinstance(name, str) and name in self._served_models():
            raise ConflictError(
                f"deployment spec: name: {name} is a model this server serves under that name, "
                "so it could not serve the deployment; give the deployment another name (such as "
                f"{name}-prod)"
            )
        result = await asyncio.to_thread(
            deploy.apply,
            self.registry,
            spec,
            actor=actor or local_actor(),
            dry_run=dry_run,
            trusted=self._trusted,
        )
        if not dry_run and not result.unchanged:
            await self._changed()
        return result.to_json()

    async def deployment_action(
        self, name: str, action: str, *, actor: str | None, to_revision: int | None = None
    ) -> dict[str, Any]:
        result = await asyncio.to_thread(
            deploy.act,
            self.registry,
            name,
            action,
            actor=actor or local_actor(),
            to_revision=to_revision,
        )
        await self._changed()
        return result.to_json()

    async def deployment_history(
        self, name: str, *, decisions: bool = False, limit: int | None = None
    ) -> dict[str, Any]:
        return await asyncio.to_thread(
            deploy.history_json, self.registry, name, with_decisions=decisions, limit=limit
        )

    async def deployment_results(self, name: str) -> dict[str, Any]:
        return (await asyncio.to_thread(deploy.results, self.registry, name)).to_json()

    async def _changed(self) -> None:
        if self._after_change is not None:
            await self._after_change()
