"""Serving one request of a deployment: pick the arm, answer, record it, copy it to the shadow.

The data plane hands a request here when its name is a deployment's. The arm is picked by the
route (a version the request names, else by its sticky key or at random by weight), predicts as
any served version does, and the answer names the deployment and the arm's version. Every
answer and every error after the pick is counted for that arm (latency, ok, first output).

A shadow copy starts only after the primary has answered, as a task of its own: the answer
never waits for it, and nothing the shadow does (slow, failing, dropped) reaches the client. Its
outputs are compared with the primary's: agreement for labels, absolute difference for numbers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from seaway.errors import ModelUnavailableError
from seaway.protocol.types import InferRequest, InferResponse
from seaway.routing.policy import take
from seaway.serving import logs
from seaway.serving.deployment_route import DeploymentRoute
from seaway.serving.logged import logged_outputs, record_logged
from seaway.serving.model import ServedModel, output_tensors

if TYPE_CHECKING:
    from seaway.serving.dataplane import DataPlane

Outputs = dict[str, np.ndarray[Any, Any]]


async def infer_deployment(
    plane: DataPlane, route: DeploymentRoute, request: InferRequest, started: float
) -> InferResponse:
    version = request.model_version
    arm = route.arm(version) if version is not None else route.pick_for_tensors(request.inputs)
    stats = route.recorder.arm(arm.version)
    try:
        _check_ready(arm)
        native, rows = arm.native_inputs(request.inputs)
        asked = arm.requested_outputs([o.name for o in request.outputs])
        logged, outputs = logged_outputs(arm, asked)
        served, results = await plane.predict_model(
            arm, route.name, arm.version, native, rows, outputs
        )
    except Exception:
        stats.observe(time.perf_counter() - started, False)
        raise
    stats.observe(time.perf_counter() - started, True)
    first = _answered(route, arm, served, results, request.id, stats)
    if logged and served.logger is not None:
        record_logged(served.logger, native, results, rows, started, request.id)
    if route.shadow is not None and take(route.shadow_fraction, route.rng):
        same = arm.version in route.same_inputs
        route.recorder.launch(
            _shadow_copy(plane, route, request.inputs, True, native if same else None, rows, first)
        )
    if outputs is not asked:
        results = {name: results[name] for name in asked}
    return InferResponse(
        model_name=route.name,
        model_version=served.version,
        id=request.id,
        outputs=output_tensors(results),
    )


async def predict_deployment(
    plane: DataPlane,
    route: DeploymentRoute,
    version: str | None,
    data: Any,
    outputs: Sequence[str],
    started: float,
) -> tuple[ServedModel, Outputs]:
    """``DataPlane.predict_native`` for a deployment (MLflow scoring)."""
    arm = route.arm(version) if version is not None else route.pick_for_data(data)
    stats = route.recorder.arm(arm.version)
    try:
        _check_ready(arm)
        native, rows = arm.native_data(data)
        asked = arm.requested_outputs(outputs)
        logged, wanted = logged_outputs(arm, asked)
        served, results = await plane.predict_model(
            arm, route.name, arm.version, native, rows, wanted
        )
    except Exception:
        stats.observe(time.perf_counter() - started, False)
        raise
    stats.observe(time.perf_counter() - started, True)
    first = _answered(route, arm, served, results, None, stats)
    if logged and served.logger is not None:
        record_logged(served.logger, native, results, rows, started, None)
    if route.shadow is not None and take(route.shadow_fraction, route.rng):
        same = arm.version in route.same_inputs
        route.recorder.launch(
            _shadow_copy(plane, route, data, False, native if same else None, rows, first)
        )
    if wanted is not asked:
        results = {name: results[name] for name in asked}
    return served, results


def _check_ready(model: ServedModel) -> None:
    if not model.ready and model.refusing:  # restarts fail: answer now, not with a 504
        reason = model.unready_reason or f"model {model.name!r} is not ready"
        raise ModelUnavailableError(f"{reason}; retry shortly")


def _answered(
    route: DeploymentRoute,
    arm: ServedModel,
    served: ServedModel,
    results: Outputs,
    given_id: str | None,
    stats: Any,
) -> np.ndarray[Any, Any] | None:
    """Count the answer's first output for its arm and remember the answer under the id a
    client knows it by (for outcomes and labels); the first output, if it was asked for."""
    first = results.get(route.observed[arm.version])
    if first is not None:
        stats.observe_outputs(first)
    rid = given_id or logs.request_id.get()
    if rid:
        route.recorder.remember(rid, served.version, first)
    return first


async def _shadow_copy(
    plane: DataPlane,
    route: DeploymentRoute,
    source: Any,
    tensors: bool,
    native: Any,
    rows: int,
    primary: np.ndarray[Any, Any] | None,
) -> None:
    """One copy for the shadow: its latency, errors and outputs (compared with the primary's
    ``primary``) are counted; nothing is raised (a task nobody awaits)."""
    shadow = route.shadow
    assert shadow is not None
    stats = route.recorder.shadow
    started = time.perf_counter()
    try:
        if native is None:  # another signature than the primary's: its own conversion
            native, rows = shadow.native_inputs(source) if tensors else shadow.native_data(source)
        results = await shadow.predict(native, rows, [route.shadow_output], plane.timeout(shadow))
    except Exception:
        stats.observe(time.perf_counter() - started, False)
        return
    stats.observe(time.perf_counter() - started, True)
    if primary is not None:
        stats.compare(primary, results[route.shadow_output])
