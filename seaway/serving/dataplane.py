"""The transport-agnostic data plane: every adapter (REST, gRPC, MLflow) calls into this.

It holds the routing table (model name -> served versions, and which version answers when none is
named; deployment name -> its :class:`~seaway.serving.deployment_route.DeploymentRoute`), never
touches the registry or the database, and sets each request's deadline (the batcher keeps it).
A deployment is served like a model: its answers carry the deployment's name and the version of
the arm that answered, and each is recorded for that arm (``deployment_serving.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seaway.errors import (
    BatcherClosedError,
    ConfigError,
    ModelUnavailableError,
    NotFoundError,
    PredictionError,
    listed,
    quoted,
)
from seaway.protocol.types import InferRequest, InferResponse, ModelMetadata
from seaway.serving.deployment_route import DeploymentRoute
from seaway.serving.deployment_serving import infer_deployment, predict_deployment
from seaway.serving.logged import logged_outputs, record_logged
from seaway.serving.model import ServedModel, output_tensors


@dataclass(frozen=True)
class RoutingTable:
    """An immutable snapshot: swapped whole, so a request sees one consistent table."""

    versions: dict[str, dict[str, ServedModel]]
    default: dict[str, str]
    deployments: dict[str, DeploymentRoute]


class DataPlane:
    def __init__(self, *, request_timeout: float | None = None) -> None:
        self._table = RoutingTable({}, {}, {})
        self.request_timeout = request_timeout
        self.started_at = time.time()
        #: False once shutdown begins: readiness turns false so balancers stop sending.
        self.accepting = True
        #: called with a model's name and version for each request it failed on (the metrics)
        self.on_model_error: Callable[[str, str], None] | None = None
        #: called with each version published, to give it its prediction log (serving/predlog.py)
        self.log_models: Callable[[ServedModel], None] | None = None
        #: set once the models this process was started with are loaded (None: not loading)
        self._loaded: asyncio.Event | None = None

    def loading(self) -> None:
        """The models this process starts with are loading: a request for one it does not serve
        yet waits for them instead of a 404 (with ``--workers`` one worker takes connections
        while it loads, and a balancer may send traffic once another worker is ready)."""
        self._loaded = asyncio.Event()

    def loaded(self) -> None:
        if self._loaded is not None:
            self._loaded.set()

    # ---- routing table ------------------------------------------------------------------------

    def publish(
        self,
        models: Sequence[ServedModel],
        default: dict[str, str] | None = None,
        deployments: Sequence[DeploymentRoute] = (),
    ) -> None:
        """Replace the routing table. ``default`` names the version that answers unversioned
        requests per model; otherwise the highest version number does. ``deployments`` are
        served by their names, which must not be names of ``models`` (ConfigError)."""
        versions: dict[str, dict[str, ServedModel]] = {}
        for model in models:
            versions.setdefault(model.name, {})[model.version] = model
            if self.log_models is not None:
                self.log_models(model)
        chosen = dict(default or {})
        for name, by_version in versions.items():
            chosen.setdefault(name, max(by_version, key=_version_key))
        routes: dict[str, DeploymentRoute] = {}
        for route in deployments:
            if route.name in versions or route.name in routes:
                raise ConfigError(
                    f"deployment {quoted(route.name)} has the name of another served model or "
                    "deployment; each name serves one of them"
                )
            routes[route.name] = route
            if self.log_models is not None:  # its arms are logged as the model versions they are
                for model in route.arms.values():
                    self.log_models(model)
        self._table = RoutingTable(versions, chosen, routes)

    def replace(self, old: ServedModel, new: ServedModel) -> None:
        """Put ``new`` where ``old`` is (same name and version; a model, a deployment's arm or
        shadow), in one assignment; a table that no longer holds ``old`` is left alone."""
        table = self._table
        versions = table.versions
        by_version = versions.get(old.name, {})
        if by_version.get(old.version) is old:
            versions = {**versions, old.name: {**by_version, old.version: new}}
        routes = table.deployments
        if routes:  # a deployment's arm or shadow: its route again, with the same recorder
            routes = {name: route.replacing(old, new) or route for name, route in routes.items()}
            if all(routes[name] is route for name, route in table.deployments.items()):
                routes = table.deployments
        if versions is table.versions and routes is table.deployments:
            return
        if self.log_models is not None:
            self.log_models(new)
        self._table = RoutingTable(versions, table.default, routes)

    @property
    def models(self) -> list[ServedModel]:
        """Every version this process serves: models, deployments' arms and shadows (once each)."""
        table = self._table
        found = [m for by_version in table.versions.values() for m in by_version.values()]
        if table.deployments:
            seen = {id(m) for m in found}
            for route in table.deployments.values():
                for model in route.models:
                    if id(model) not in seen:
                        seen.add(id(model))
                        found.append(model)
        return found

    @property
    def names(self) -> list[str]:
        """The names requests may use: served models and deployments, sorted."""
        table = self._table
        return sorted([*table.versions, *table.deployments])

    @property
    def deployments(self) -> dict[str, DeploymentRoute]:
        return self._table.deployments

    def deployment(self, name: str) -> DeploymentRoute | None:
        """The deployment ``name`` names, or None (a model, or nothing served)."""
        return self._table.deployments.get(name)

    def get(self, name: str, version: str | None = None) -> ServedModel:
        """The version that answers for ``name``; for a deployment, the arm ``version`` names,
        else the arm with the most traffic (a request's own arm is picked as it is served)."""
        table = self._table
        by_version = table.versions.get(name)
        if by_version is None:
            route = table.deployments.get(name)
            if route is not None:
                return route.arm(version)
            known = listed(self.names) if table.versions or table.deployments else "none"
            raise NotFoundError(f"model {quoted(name)} is not served here (served models: {known})")
        if version is None:
            return by_version[table.default[name]]
        try:
            return by_version[version]
        except KeyError:
            served: list[str] = sorted(by_version, key=_version_key)
            raise NotFoundError(
                f"model {quoted(name)} has no served version {quoted(version)} "
                f"(served: {listed(served)})"
            ) from None

    def default_version(self, name: str) -> str:
        return self.get(name).version

    @property
    def ready(self) -> bool:
        """Every served model can answer now (each has a healthy replica), and no shutdown."""
        return not self.unready_reason()

    def unready_reason(self) -> str:
        """Why the server is not ready ("" when it is): shutdown, no model, or each model's
        (a deployment's shadow does not count: it never answers)."""
        if not self.accepting:
            return "the server is shutting down"
        table = self._table
        models = [m for by_version in table.versions.values() for m in by_version.values()]
        if not models and not table.deployments:
            return "no model is loaded yet"
        reasons = [reason for m in models if (reason := m.unready_reason)]
        reasons += [r for route in table.deployments.values() if (r := route.unready_reason)]
        return "; ".join(reasons)

    def model_ready(self, name: str, version: str | None = None) -> bool:
        return not self.model_unready_reason(name, version)

    def model_unready_reason(self, name: str, version: str | None = None) -> str:
        model = self.get(name, version)
        route = self.deployment(name) if version is None else None
        if route is not None:
            return route.unready_reason
        return model.unready_reason

    def metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        model = self.get(name, version)
        route = self.deployment(name)
        if route is not None:
            return route.metadata(version)
        meta = model.metadata()
        served = tuple(sorted(self._table.versions[name], key=_version_key))
        return ModelMetadata(
            meta.name,
            served if version is None else (model.version,),
            meta.platform,
            meta.inputs,
            meta.outputs,
        )

    # ---- inference ------------------------------------------------------------------------------

    async def infer(self, request: InferRequest) -> InferResponse:
        started = time.perf_counter()
        table = self._table
        if request.model_name not in table.versions:  # a deployment, or not served (yet)
            route = table.deployments.get(request.model_name)
            if route is not None:
                return await infer_deployment(self, route, request, started)
        try:
            model = self._ready(request.model_name, request.model_version)
        except NotFoundError as exc:
            model = await self._after_loading(request.model_name, request.model_version, exc)
        native, rows = model.native_inputs(request.inputs)
        asked = model.requested_outputs([o.name for o in request.outputs])
        logged, outputs = logged_outputs(model, asked)
        model, results = await self.predict_model(
            model, request.model_name, request.model_version, native, rows, outputs
        )
        if logged and model.logger is not None:
            record_logged(model.logger, native, results, rows, started, request.id)
        if outputs is not asked:
            results = {name: results[name] for name in asked}
        return InferResponse(
            model_name=model.name,
            model_version=model.version,
            id=request.id,
            outputs=output_tensors(results),
        )

    async def predict_native(
        self, name: str, version: str | None, data: Any, outputs: Sequence[str] = ()
    ) -> tuple[ServedModel, dict[str, np.ndarray[Any, Any]]]:
        """For formats that are not tensors (MLflow scoring): ``data`` goes to the signature as is.
        The model returned is the version that answered (for a deployment: the arm's model)."""
        started = time.perf_counter()
        table = self._table
        if name not in table.versions:
            route = table.deployments.get(name)
            if route is not None:
                return await predict_deployment(self, route, version, data, outputs, started)
        try:
            model = self._ready(name, version)
        except NotFoundError as exc:
            model = await self._after_loading(name, version, exc)
        native, rows = model.native_data(data)
        asked = model.requested_outputs(outputs)
        logged, wanted = logged_outputs(model, asked)
        model, results = await self.predict_model(model, name, version, native, rows, wanted)
        if logged and model.logger is not None:
            record_logged(model.logger, native, results, rows, started, None)
        if wanted is not asked:
            results = {name: results[name] for name in asked}
        return model, results

    async def route(self, name: str, version: str | None = None) -> ServedModel:
        """``get``, but a model this process is still loading at start-up is waited for."""
        try:
            return self.get(name, version)
        except NotFoundError:
            loaded = self._loaded
            if loaded is None or loaded.is_set():
                raise
        if not await self.settled():
            raise ModelUnavailableError(
                f"model {quoted(name)} is not loaded yet in this server process; retry shortly"
            )
        return self.get(name, version)

    async def settled(self) -> bool:
        """Wait (up to the request timeout) for the start-up models to load, if they are loading;
        False when they are still loading after that."""
        loaded = self._loaded
        if loaded is None or loaded.is_set():
            return True
        try:
            await asyncio.wait_for(loaded.wait(), self.request_timeout)
        except TimeoutError:
            return False
        return True

    async def _after_loading(
        self, name: str, version: str | None, not_found: NotFoundError
    ) -> ServedModel:
        """Route again once the start-up models are loaded; the 404 stands if none are loading."""
        loaded = self._loaded
        if loaded is None or loaded.is_set():
            raise not_found
        if not await self.settled():
            raise ModelUnavailableError(
                f"model {quoted(name)} is not loaded yet in this server process; retry shortly"
            ) from None
        return self._ready(name, version)

    def _ready(self, name: str, version: str | None) -> ServedModel:
        model = self.get(name, version)
        if not model.ready and model.refusing:  # restarts fail: answer now, not with a 504
            reason = model.unready_reason or f"model {name!r} is not ready"
            raise ModelUnavailableError(f"{reason}; retry shortly")
        return model

    async def predict_model(
        self,
        model: ServedModel,
        name: str,
        version: str | None,
        native: Any,
        rows: int,
        outputs: list[str],
    ) -> tuple[ServedModel, dict[str, np.ndarray[Any, Any]]]:
        """Predict within the model's timeout (else the server's), over queueing and predicting;
        a version retired between routing and queueing hands over to its successor (what
        ``name`` and ``version`` route to now). A request the model fails on (PredictionError)
        is counted for ``on_model_error``."""
        try:
            try:
                return model, await model.predict(native, rows, outputs, self.timeout(model))
            except BatcherClosedError:
                try:
                    successor = self.get(name, version)
                except NotFoundError:  # retired with no successor: retry (the new table's)
                    raise BatcherClosedError(
                        f"model {quoted(model.name)} version {model.version} was retired while "
                        "this request waited; retry"
                    ) from None
                if successor is model:
                    raise
                model = successor
                return successor, await successor.predict(
                    native, rows, outputs, self.timeout(successor)
                )
        except PredictionError:
            if self.on_model_error is not None:
                self.on_model_error(model.name, model.version)
            raise

    def timeout(self, model: ServedModel) -> float | None:
        return model.options.timeout or self.request_timeout

    async def stop(self, drain: bool = True) -> None:
        await asyncio.gather(*(m.stop(drain=drain) for m in self.models), return_exceptions=True)


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)
