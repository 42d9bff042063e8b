"""A real `seaway serve` process on a free port, stopped after the test."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from servers import Server, start_server
from sklearn.linear_model import LogisticRegression

import seaway


@pytest.fixture
def serve(seaway_home: Path, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def _serve(*args: str, wait_ready: bool = True, **options: Any) -> Server:
        log = tmp_path / f"server-{len(started)}.log"
        server = start_server(list(args), seaway_home, log, wait_ready=wait_ready, **options)
        started.append(server)
        return server

    yield _serve
    for server in started:
        server.stop(signal.SIGKILL)


@pytest.fixture
def fraud_model(
    tabular: tuple[pd.DataFrame, np.ndarray],
) -> tuple[LogisticRegression, pd.DataFrame]:
    """A registered dataframe-signature classifier: models:/fraud/1 (alias production)."""
    frame, target = tabular
    model = LogisticRegression().fit(frame, target)
    with seaway.Registry.from_settings() as registry:
        seaway.log_model(model, "fraud", sample_input=frame.head(10), registry=registry)
        registry.set_alias("fraud", "production", 1)
    return model, frame
