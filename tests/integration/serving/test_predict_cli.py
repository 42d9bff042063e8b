"""`seaway predict` as a user runs it, against a real `seaway serve --auth`: model URIs, Parquet
files, and what a refused key says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from servers import Server
from sklearn.linear_model import LogisticRegression

import seaway


def predict(server: Server, *args: str, key: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEAWAY_URL": server.url}
    env.pop("SEAWAY_API_KEY", None)
    if key is not None:
        env["SEAWAY_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "seaway", "predict", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.slow
def test_predict_takes_model_uris_and_parquet_and_explains_a_401(
    serve: Callable[..., Server],
    fraud_model: tuple[LogisticRegression, pd.DataFrame],
    tmp_path: Path,
) -> None:
    model, frame = fraud_model
    with seaway.Registry.from_settings() as registry:
        _, key = registry.create_api_key("predict", name="cli")
    server = serve("models:/fraud@production", "--auth")
    rows = frame.head(5)
    rows.to_parquet(tmp_path / "rows.parquet")
    rows.to_json(tmp_path / "rows.json", orient="records")

    by_alias = predict(
        server, "models:/fraud@production", "--data", str(tmp_path / "rows.parquet"), key=key
    )
    assert by_alias.returncode == 0, by_alias.stderr
    assert json.loads(by_alias.stdout) == {"predictions": model.predict(rows).tolist()}

    by_version = predict(
        server, "models:/fraud/1", "--data", str(tmp_path / "rows.json"), "--proba", key=key
    )
    assert by_version.returncode == 0, by_version.stderr
    np.testing.assert_allclose(
        json.loads(by_version.stdout)["predictions"], model.predict_proba(rows)
    )

    refused = predict(server, "fraud", "--data", str(tmp_path / "rows.json"), key=None)
    assert refused.returncode == 1
    assert "401" in refused.stderr and "no key was given" in refused.stderr
    assert "--api-key" in refused.stderr and "SEAWAY_API_KEY" in refused.stderr
