"""The transport-agnostic data plane: every adapter (REST, gRPC, MLflow) calls into this.

It holds the routing table (model name -> served versions, and which version answers when none is
named), never touches the registry or the database, and sets each request's deadline (the
batcher keeps it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from seaway.errors import (
    BatcherClosedError,
    ModelUnavailableError,
    NotFoundError,
    PredictionError,
    listed,
    quoted,
)
from seaway.packaging.signature import PROBA_OUTPUT_NAME
from seaway.protocol.types import InferRequest, InferResponse, ModelMetadata
from seaway.serving import logs
from seaway.serving.model import ServedModel, output_tensors

if TYPE_CHECKING:
    from seaway.monitoring.predlog import ModelLog


@dataclass(frozen=True)
class RoutingTable:
    """An immutable snapshot: swapped whole, so a request sees one consistent table."""

    versions: dict[str, dict[str, ServedModel]]
    default: dict[str, str]


class DataPlane:
    def __init__(self, *, request_timeout: float | None = None) -> None:
        self._table = RoutingTable({}, {})
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

    def publish(self, models: Sequence[ServedModel], default: dict[str, str] | None = None) -> None:
        """Replace the routing table. ``default`` names the version that answers unversioned
        requests per model; otherwise the highest version number does."""
        versions: dict[str, dict[str, ServedModel]] = {}
        for model in models:
            versions.setdefault(model.name, {})[model.version] = model
            if self.log_models is not None:
                self.log_models(model)
        chosen = dict(default or {})
        for name, by_version in versions.items():
            chosen.setdefault(name, max(by_version, key=_version_key))
        self._table = RoutingTable(versions, chosen)

    def replace(self, old: ServedModel, new: ServedModel) -> None:
        """Put ``new`` where ``old`` is (same name and version), in one assignment; a table that
        no longer holds ``old`` is left alone."""
        table = self._table
        by_version = table.versions.get(old.name, {})
        if by_version.get(old.version) is not old:
            return
        if self.log_models is not None:
            self.log_models(new)
        versions = dict(table.versions)
        versions[old.name] = {**by_version, old.version: new}
        self._table = RoutingTable(versions, table.default)

    @property
    def models(self) -> list[ServedModel]:
        return [m for by_version in self._table.versions.values() for m in by_version.values()]

    def get(self, name: str, version: str | None = None) -> ServedModel:
        table = self._table
        by_version = table.versions.get(name)
        if by_version is None:
            known = listed(sorted(table.versions)) if table.versions else "none"
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
        """Why the server is not ready ("" when it is): shutdown, no model, or each model's."""
        if not self.accepting:
            return "the server is shutting down"
        models = self.models
        if not models:
            return "no model is loaded yet"
        return "; ".join(reason for m in models if (reason := m.unready_reason))

    def model_ready(self, name: str, version: str | None = None) -> bool:
        return self.get(name, version).ready

    def model_unready_reason(self, name: str, version: str | None = None) -> str:
        return self.get(name, version).unready_reason

    def metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        model = self.get(name, version)
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
        try:
            model = self._ready(request.model_name, request.model_version)
        except NotFoundError as exc:
            model = await self._after_loading(request.model_name, request.model_version, exc)
        native, rows = model.native_inputs(request.inputs)
        asked = model.requested_outputs([o.name for o in request.outputs])
        logged, outputs = _logged_outputs(model, asked)
        model, results = await self._predict(model, request.model_version, native, rows, outputs)
        if logged and model.logger is not None:
            _record(model.logger, native, results, rows, started, request.id)
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
        """For formats that are not tensors (MLflow scoring): ``data`` goes to the signature as is."""
        started = time.perf_counter()
        try:
            model = self._ready(name, version)
        except NotFoundError as exc:
            model = await self._after_loading(name, version, exc)
        native, rows = model.native_data(data)
        asked = model.requested_outputs(outputs)
        logged, wanted = _logged_outputs(model, asked)
        model, results = await self._predict(model, version, native, rows, wanted)
        if logged and model.logger is not None:
            _record(model.logger, native, results, rows, started, None)
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

    async def _predict(
        self, model: ServedModel, version: str | None, native: Any, rows: int, outputs: list[str]
    ) -> tuple[ServedModel, dict[str, np.ndarray[Any, Any]]]:
        """Predict within the model's timeout (else the server's), over queueing and predicting;
        a version retired between routing and queueing hands over to its successor. A request
        the model fails on (PredictionError) is counted for ``on_model_error``."""
        try:
            try:
                return model, await model.predict(native, rows, outputs, self._timeout(model))
            except BatcherClosedError:
                successor = self.get(model.name, version)
                if successor is model:
                    raise
                model = successor
                return successor, await successor.predict(
                    native, rows, outputs, self._timeout(successor)
                )
        except PredictionError:
            if self.on_model_error is not None:
                self.on_model_error(model.name, model.version)
            raise

    def _timeout(self, model: ServedModel) -> float | None:
        return model.options.timeout or self.request_timeout

    async def stop(self, drain: bool = True) -> None:
        await asyncio.gather(*(m.stop(drain=drain) for m in self.models), return_exceptions=True)


def _record(
    logger: ModelLog,
    native: Any,
    results: dict[str, np.ndarray[Any, Any]],
    rows: int,
    started: float,
    given_id: str | None,
) -> None:
    """Hand an answered request to the prediction log under the id a client knows it by: its
    V2 ``id`` when it has one, else its X-Request-ID (the client's, or the one the server made
    and sent back in the header or gRPC metadata)."""
    rid = given_id or logs.request_id.get()
    logger.record(native, results, rows, time.perf_counter() - started, rid, drawn=True)


def _logged_outputs(model: ServedModel, asked: list[str]) -> tuple[bool, list[str]]:
    """Whether this request is logged (drawn now, before predicting), and the outputs to ask
    the model for: a logged request of a ``log_proba`` classifier adds ``predict_proba``, for
    estimated performance (``asked`` itself when nothing is added)."""
    logger = model.logger
    if logger is None or not logger.take():
        return False, asked
    if model.log_proba and PROBA_OUTPUT_NAME not in asked:
        return True, [*asked, PROBA_OUTPUT_NAME]
    return True, asked


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)
