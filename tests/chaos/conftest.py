"""The chaos suite starts real servers with the integration tests' helpers (``servers``,
``testmodels``): make them importable here."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import seaway

sys.path.insert(0, str(Path(__file__).parents[1] / "integration" / "serving"))

import testmodels
from servers import Server, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of a LogisticRegression (`fraud`) and the echo model, one per module."""
    root = tmp_path_factory.mktemp("chaos")
    home = root / "home"
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(np.int64))
    with seaway.Registry.from_settings(seaway.Settings.resolve(home=home)) as registry:
        seaway.log_model(model, "fraud", sample_input=frame.head(5), registry=registry)
    testmodels.save_echo(root / "echo")
    started = start_server(
        ["models:/fraud/latest", str(root / "echo"), "--trusted"], home, Path(root / "server.log")
    )
    yield started
    started.stop(signal.SIGKILL)
