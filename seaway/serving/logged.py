"""What the data plane hands the prediction log: which requests are logged, and each answer.

Shared by the plain models' path (``dataplane.py``) and the deployments' (``deployment_serving.py``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from seaway.packaging.signature import PROBA_OUTPUT_NAME
from seaway.serving import logs

if TYPE_CHECKING:
    from seaway.monitoring.predlog import ModelLog
    from seaway.serving.model import ServedModel


def record_logged(
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


def logged_outputs(model: ServedModel, asked: list[str]) -> tuple[bool, list[str]]:
    """Whether this request is logged (drawn now, before predicting), and the outputs to ask
    the model for: a logged request of a ``log_proba`` classifier adds ``predict_proba``, for
    estimated performance (``asked`` itself when nothing is added)."""
    logger = model.logger
    if logger is None or not logger.take():
        return False, asked
    if model.log_proba and PROBA_OUTPUT_NAME not in asked:
        return True, [*asked, PROBA_OUTPUT_NAME]
    return True, asked
