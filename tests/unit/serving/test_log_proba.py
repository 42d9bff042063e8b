"""Which logged requests also ask for probabilities: the setting's order, and the data plane's
outputs (asked for the logged requests only, left out of their answers)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from seaway.monitoring.predlog import LogConfig, PredictionLog
from seaway.packaging.manifest import FrameworkInfo, Manifest
from seaway.serving.config import ServeConfig
from seaway.serving.dataplane import DataPlane
from seaway.serving.predlog import log_proba


def _manifest(calibration: str | None) -> Manifest:
    return Manifest(
        flavor="sklearn",
        framework=FrameworkInfo(name="scikit-learn", version="1"),
        python_version="3.11",
        seaway_version="0",
        created_at=datetime.now(UTC),
        calibration=calibration,
    )


@dataclass
class _Model:
    name: str
    manifest: Manifest
    supports_proba: bool = True


def test_the_setting_order(tmp_path: Path) -> None:
    calibrated = _Model("fraud", _manifest("calibration.json"))
    plain = _Model("fraud", _manifest(None))
    config = ServeConfig.load(None, {"models": ["m"]}, environ={})
    assert log_proba(config, calibrated) is True  # type: ignore[arg-type]
    assert log_proba(config, plain) is False  # type: ignore[arg-type]
    assert log_proba(config, _Model("r", _manifest("c.json"), False)) is False  # type: ignore[arg-type]
    off = ServeConfig.load(None, {"models": ["m"], "log_proba": False}, environ={})
    assert log_proba(off, calibrated) is False  # type: ignore[arg-type]
    path = tmp_path / "serve.yaml"
    path.write_text("log_proba: false\nper_model:\n  fraud: {log_proba: true}\n")
    entry = ServeConfig.load(path, {"models": ["m"]}, environ={})
    assert log_proba(entry, plain) is True  # type: ignore[arg-type]
    env = ServeConfig.load(None, {"models": ["m"]}, environ={"SEAWAY_SERVE_LOG_PROBA": "true"})
    assert log_proba(env, plain) is True  # type: ignore[arg-type]


@dataclass
class _Served:
    """A served version that answers from its inputs, recording which outputs it was asked."""

    name: str = "m"
    version: str = "1"
    log_proba: bool = True
    logger: Any = None
    asked: list[tuple[str, ...]] = field(default_factory=list)
    options: Any = None
    ready: bool = True

    def native_data(self, data: Any) -> tuple[Any, int]:
        return np.asarray(data), len(data)

    def requested_outputs(self, requested: Any) -> list[str]:
        return list(requested) or ["predict"]

    async def predict(self, native: Any, rows: int, outputs: Any, timeout: Any) -> dict[str, Any]:
        self.asked.append(tuple(outputs))
        found = {"predict": np.zeros(rows), "predict_proba": np.full((rows, 2), 0.5)}
        return {name: found[name] for name in outputs}


def test_only_logged_requests_ask_for_probabilities_and_answers_leave_them_out(
    tmp_path: Path,
) -> None:
    log = PredictionLog(LogConfig(root=str(tmp_path)), rng=random.Random(4))
    served = _Served()
    served.logger = log.model("m", "1", sample=0.5, exclude=(), classes=[0, 1], profile=None)
    served.options = type("O", (), {"timeout": None})()
    plane = DataPlane()
    plane.publish([served])  # type: ignore[list-item]

    async def send() -> list[dict[str, Any]]:
        return [(await plane.predict_native("m", None, [[1.0]]))[1] for _ in range(40)]

    answers = asyncio.run(send())
    assert all(list(answer) == ["predict"] for answer in answers)
    logged = served.logger.accepted
    assert 0 < logged < 40
    assert served.asked.count(("predict", "predict_proba")) == logged
    assert served.asked.count(("predict",)) == 40 - logged
    with log.lock:
        buffered = list(log.buffer)
    assert all(set(item[4]) == {"predict", "predict_proba"} for item in buffered)
    log.close()
