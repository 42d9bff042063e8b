"""Replicas forked from the zygote: scikit-learn, XGBoost and LightGBM models load and answer, the
zygote's framework imports start no OpenMP thread pool (a pool started before fork makes XGBoost
and LightGBM hang in the child), and the replicas really are the zygote's children."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import seaway
from seaway.runtime import spawner as spawner_module
from seaway.runtime.replica import Replica, ReplicaSpec
from seaway.runtime.spawner import Spawner
from seaway.runtime.zygote import BASE_PRELOAD, FLAVOR_PRELOAD

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(sys.platform != "linux", reason="the zygote is Linux-only"),
]

OMP_THREADS = "3"  # more than one, so that a started OpenMP pool shows as threads on any machine


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 4))
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def sklearn_model(x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(x, y)


def xgboost_model(x: np.ndarray, y: np.ndarray) -> Any:
    import xgboost as xgb

    return xgb.XGBClassifier(n_estimators=6, max_depth=3).fit(x, y)


def lightgbm_model(x: np.ndarray, y: np.ndarray) -> Any:
    import lightgbm as lgb

    return lgb.LGBMClassifier(n_estimators=6, verbose=-1).fit(x, y)


BUILDERS: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
    "sklearn": sklearn_model,
    "xgboost": xgboost_model,
    "lightgbm": lightgbm_model,
}


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, np.ndarray]]:
    x, y = data()
    built = {}
    for flavor, build in BUILDERS.items():
        model = build(x, y)
        path = tmp_path_factory.mktemp(flavor) / "pkg"
        seaway.save_model(model, path, sample_input=x[:5])
        built[flavor] = (path, np.asarray(model.predict(x[:10])))
    return built


@pytest.fixture(scope="module")
def zygote() -> Iterator[Spawner]:
    """A zygote of this module's own, started with OpenMP allowed several threads, that replicas
    use in place of the default one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", OMP_THREADS)
        own = Spawner()
        own.start()
    previous = spawner_module._DEFAULT
    spawner_module._DEFAULT = own
    try:
        yield own
    finally:
        spawner_module._DEFAULT = previous
        own.close()


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def tasks(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.parametrize("flavor", sorted(BUILDERS))
def test_forked_replicas_load_and_answer(
    flavor: str,
    packages: dict[str, tuple[Path, np.ndarray]],
    zygote: Spawner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", OMP_THREADS)  # the replicas' pools: several threads
    path, expected = packages[flavor]
    x, _ = data()

    async def main() -> None:
        # one after the other: the second is forked after the first predicted (in its child)
        for index in range(2):
            replica = Replica(ReplicaSpec(str(path)), index)
            await replica.start(timeout=120)
            try:
                assert replica.pid is not None and parent_of(replica.pid) == zygote.zygote_pid
                answer = await replica.call(x[:10], ["predict"], timeout=60)
                np.testing.assert_array_equal(answer["predict"].ravel(), expected.ravel())
            finally:
                await replica.stop()

    asyncio.run(asyncio.wait_for(main(), 150))


def test_the_zygote_starts_no_openmp_threads(
    packages: dict[str, tuple[Path, np.ndarray]], zygote: Spawner
) -> None:
    for path, _ in packages.values():  # a start per flavor: the zygote preloads each framework
        child = zygote.process(os._exit, (0,), package=str(path))
        child.start()
        child.join(60)
        assert child.exitcode == 0
    assert zygote.zygote_pid is not None
    in_zygote = tasks(zygote.zygote_pid)
    # the same imports and a fork in a fresh interpreter (OpenBLAS stops its threads at a fork, an
    # OpenMP pool does not), then an XGBoost fit: the count shows a started pool
    everything = [*BASE_PRELOAD, *(name for names in FLAVOR_PRELOAD.values() for name in names)]
    script = (
        "import os, sys\n"
        "from seaway.runtime.zygote import preload\n"
        "count = lambda: len(os.listdir('/proc/self/task'))\n"
        "assert not preload(sys.argv[1:])\n"
        "pid = os.fork()\n"
        "os._exit(0) if pid == 0 else os.waitpid(pid, 0)\n"
        "before = count()\n"
        "import numpy as np, xgboost as xgb\n"
        "x = np.random.default_rng(0).normal(size=(200, 4))\n"
        "xgb.XGBClassifier(n_estimators=4).fit(x, (x[:, 0] > 0).astype(int))\n"
        "print(before, count())\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": OMP_THREADS}
    out = subprocess.run(
        [sys.executable, "-c", script, *everything],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    imported, after_fit = (int(v) for v in out.split())
    assert after_fit > imported  # the check can see an OpenMP pool
    assert in_zygote <= imported  # and the zygote has none
