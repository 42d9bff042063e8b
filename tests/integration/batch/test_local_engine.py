"""How the local engine starts its workers: native threads capped, fork only where it is safe.

Each check runs in a fresh interpreter: thread pools, OpenMP settings and the threads alive in
the process are what is tested, and pytest's own process has its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import batchmodels
import numpy as np
import pandas as pd
import pytest

import seaway

pytestmark = pytest.mark.slow

SPEC = """
from seaway.batch.local import WorkerSpec

def spec(path, flavor, out, trusted=False):
    return WorkerSpec(package_path=path, manifest_sha256=None, trusted=trusted, model_name="m",
                      model_version=1, keep=(), proba=False, features=(), columns=(),
                      output_url=out, output_format="parquet", on_error="skip", flavor=flavor)
"""


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    root = tmp_path_factory.mktemp("packages")
    x = np.random.default_rng(0).standard_normal((200, 4))
    trees = HistGradientBoostingClassifier(max_iter=5).fit(x, x[:, 0] > 0)
    seaway.save_model(trees, root / "sklearn", sample_input=x[:5])
    sample = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    seaway.save_model(
        batchmodels.SlowSum(),
        root / "python",
        sample_input=sample,
        code_paths=[batchmodels.__file__],
    )
    return {"sklearn": str(root / "sklearn"), "python": str(root / "python")}


def _python(script: str, *args: str, env: dict[str, str] | None = None) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", SPEC + script, *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_holds_its_share_of_native_threads(
    packages: dict[str, str], tmp_path: Path
) -> None:
    """The model's OpenMP runtime loads with the model: capping before loading capped nothing."""
    script = """
import json, sys
from threadpoolctl import threadpool_info
from seaway.batch.local import build_limited
build_limited(spec(sys.argv[1], "sklearn", sys.argv[2]), 1)
print(json.dumps([[i["user_api"], i["num_threads"]] for i in threadpool_info()]))
"""
    # a process that would otherwise run 3 OpenMP threads, whatever the machine's cores
    pools = _python(
        script, packages["sklearn"], str(tmp_path / "out"), env={"OMP_NUM_THREADS": "3"}
    )
    assert "openmp" in {api for api, _ in pools}
    assert {threads for _, threads in pools} == {1}


def test_workers_are_forked_with_the_model_only_where_that_is_safe(
    packages: dict[str, str], tmp_path: Path
) -> None:
    script = """
import json, sys, threading
from seaway.batch import local

PROBE = "id(__import__('seaway.batch.local', fromlist=['_state'])._state.get('scorer'))"
found = {}

def check(name, worker_spec):
    pool, _ = local._start_pool(worker_spec, 1)
    try:
        # a forked worker holds the driver's very model object (ids survive a fork); a spawned
        # one loaded its own, and the driver loaded none
        found[name] = pool.submit(eval, PROBE).result() == id(local._state.get("scorer"))
    finally:
        pool.shutdown()
        local._state.clear()

sklearn, python, out = sys.argv[1:4]
check("sklearn", spec(sklearn, "sklearn", out))
check("python", spec(python, "python_function", out, trusted=True))
threading.Thread(target=threading.Event().wait, daemon=True).start()
check("sklearn, driver with a thread", spec(sklearn, "sklearn", out))
print(json.dumps(found))
"""
    found = _python(script, packages["sklearn"], packages["python"], str(tmp_path / "out"))
    assert found == {"sklearn": True, "python": False, "sklearn, driver with a thread": False}


def test_a_worker_imports_neither_the_registry_nor_torch(packages: dict[str, str]) -> None:
    """What a spawned worker or replica imports to load a scikit-learn package."""
    pytest.importorskip("torch")  # the test extra installs it: the case skops made slow
    script = """
import json, sys
import seaway.batch.local
from seaway.runtime.model import load_package
load_package(sys.argv[1])
loaded = {name: name in sys.modules for name in ("sqlalchemy", "alembic", "torch", "httpx")}
import sklearn.externals.array_api_compat.torch  # hidden only while skops imported
print(json.dumps(loaded))
"""
    loaded = _python(script, packages["sklearn"])
    assert loaded == {"sqlalchemy": False, "alembic": False, "torch": False, "httpx": False}


def test_forked_workers_die_with_a_killed_driver(packages: dict[str, str], tmp_path: Path) -> None:
    """They hold copies of the pool's pipes, so the driver's death is no end-of-file to them."""
    script = """
import json, os, signal, sys
from seaway.batch import local

pool, _ = local._start_pool(spec(sys.argv[1], "sklearn", sys.argv[2]), 2)
pids = sorted({pool.submit(os.getpid).result() for _ in range(8)})
print(json.dumps(pids), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run(
        [sys.executable, "-c", SPEC + script, packages["sklearn"], str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == -9, done.stderr
    workers = json.loads(done.stdout)
    assert workers  # forked: one or two, whichever took the calls
    deadline = time.monotonic() + 15
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_running(pid) for pid in workers)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's new parent may be slow to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_forked_workers_leave_the_drivers_objects_uncollected(
    packages: dict[str, str], tmp_path: Path
) -> None:
    """The driver collects and freezes once before forking; a worker that collected on its own
    would write to (and so copy) every page holding one of the model's objects."""
    script = """
import gc, json, sys
from seaway.batch import local

pool, _ = local._start_pool(spec(sys.argv[1], "sklearn", sys.argv[2]), 1)
child = pool.submit(eval, "(__import__('gc').get_stats()[2]['collections'], "
                    "__import__('gc').get_freeze_count())").result()
driver = (gc.get_stats()[2]["collections"], gc.get_freeze_count())
pool.shutdown()
local._state.clear()
gc.unfreeze()
local.run_local(iter(()), spec(sys.argv[1], "sklearn", sys.argv[2]), 1, print)
print(json.dumps({"child": child, "driver": driver, "after": gc.get_freeze_count()}))
"""
    found = _python(script, packages["sklearn"], str(tmp_path / "out"))
    child_collections, child_frozen = found["child"]
    driver_collections, driver_frozen = found["driver"]
    assert child_frozen > 0 and driver_frozen > 0  # frozen before the fork
    assert child_collections == driver_collections  # the worker collected nothing since
    assert found["after"] == 0  # the driver's objects are collectable again after the job
