"""XGBoost and LightGBM jobs finish with any number of workers.

GNU OpenMP's thread pool does not survive a fork once it has started, and a driver has often
started it (XGBoost and LightGBM run OpenMP loops as they load; a notebook trains or predicts):
a worker forked from it that opens a parallel region of two threads or more waits for ever. Each
driver here is a process of its own, killed with its workers when it runs past its time, so that
a regression fails instead of hanging CI (and pytest's own threads do not change how workers
start).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import seaway

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROWS = 600
COLUMNS = ["a", "b", "c", "d"]
TRAIN = {
    "xgboost": "xgboost.XGBRegressor(n_estimators=20, max_depth=3)",
    "lightgbm": "lightgbm.LGBMRegressor(n_estimators=20, verbose=-1)",
}
#: trains in the driver itself (every core: its OpenMP pool is started), then scores
DRIVER = """
import sys, numpy as np, pandas as pd, xgboost, lightgbm
import seaway
from seaway.batch import BatchOptions, job, local, run_job

framework, train, source, out, workers = sys.argv[1:6]
data = pd.read_csv(source)
model = eval(train).fit(data.to_numpy(), data["a"].to_numpy() * 2)
# at least two cores to share out, so that one worker runs a parallel region of two threads
job.usable_cores = lambda: max(2, local.usable_cores())
with seaway.Registry.from_settings() as registry:
    seaway.log_model(model, framework, sample_input=data.head(5), registry=registry)
    done = run_job(registry, BatchOptions(f"models:/{framework}/1", source, out,
                                          workers=int(workers), chunk_rows=200))
    expected = model.predict(data.to_numpy())
result = pd.concat([pd.read_parquet(p) for p in sorted(__import__("pathlib").Path(out).glob("part-*"))])
np.testing.assert_allclose(result["predict"], expected, rtol=1e-5)
print(done.status.value, done.rows_out)
"""


def _run(command: list[str], what: str) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the driver and its workers
        process.communicate()
        raise AssertionError(f"{what} hung") from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    x = np.random.default_rng(0).standard_normal((ROWS, len(COLUMNS)))
    pd.DataFrame(x, columns=COLUMNS).to_csv(tmp_path / "num.csv", index=False)
    return tmp_path / "num.csv"


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("workers", [1, 2])
def test_a_booster_job_finishes_from_a_driver_that_trained_it(
    source: Path, tmp_path: Path, framework: str, workers: int
) -> None:
    args = [framework, TRAIN[framework], str(source), str(tmp_path / "out"), str(workers)]
    done = _run([sys.executable, "-c", DRIVER, *args], f"a {framework} job, {workers} workers")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["succeeded", str(ROWS)]


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_seaway_batch_run_with_one_worker_finishes(
    registry: seaway.Registry, source: Path, tmp_path: Path, framework: str
) -> None:
    """The command of the report: a fresh driver, which loads the model (starting OpenMP's pool)
    and started one worker."""
    data = pd.read_csv(source)
    model = eval(TRAIN[framework], {framework: __import__(framework)})
    model.fit(data.to_numpy(), data["a"].to_numpy() * 2)
    seaway.log_model(model, framework, sample_input=data.head(5), registry=registry)
    command = [sys.executable, "-m", "seaway", "batch", "run", f"models:/{framework}/1"]
    command += ["--input", str(source), "--output", str(tmp_path / "out")]
    command += ["--workers", "1", "--chunk-rows", "200"]
    done = _run(command, f"seaway batch run --workers 1 of a {framework} model")
    assert done.returncode == 0, done.stderr
    assert f"succeeded: {ROWS} of {ROWS} rows scored" in " ".join(done.stderr.split())
