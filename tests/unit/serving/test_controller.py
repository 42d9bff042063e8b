"""The controller without replica processes: models whose pools the test sets, a clock it moves,
and polls it drives itself (no sleeping for the loop)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.errors import ModelLoadError
from seaway.registry import Registry
from seaway.runtime.pool import PoolState
from seaway.serving.controller import Controller
from seaway.serving.dataplane import DataPlane
from seaway.serving.model import ServedModel, ServingOptions


class FakePool:
    def __init__(self, size: int = 1) -> None:
        self.size = size
        self.healthy = 0
        self.state = PoolState.LOADING
        self.error: str | None = None


class FakeModel:
    """What the controller and the data plane read of a served model; readiness is the real
    ``ServedModel`` logic over a pool the test sets."""

    ready = ServedModel.ready
    refusing = ServedModel.refusing
    unready_reason = ServedModel.unready_reason

    def __init__(
        self, factory: Factory, name: str, version: str, *args: Any, **kwargs: Any
    ) -> None:
        self.factory = factory
        self.name = name
        self.version = version
        self.pool = FakePool()
        self.stopped = False

    async def start(self) -> None:
        self.factory.starts += 1
        if self.factory.failures:
            self.factory.failures -= 1
            raise ModelLoadError("the model's load() raised: disk on fire")
        self.pool.state, self.pool.healthy = PoolState.READY, 1

    async def stop(self, drain: bool = True) -> None:
        self.stopped = True
        self.pool.state, self.pool.healthy = PoolState.STOPPED, 0


class Factory:
    def __init__(self) -> None:
        self.starts = 0
        self.failures = 0  # how many of the next starts fail
        self.made: list[FakeModel] = []

    def __call__(self, *args: Any, **kwargs: Any) -> FakeModel:
        model = FakeModel(self, *args, **kwargs)
        self.made.append(model)
        return model


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pkg") / "churn"
    x = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    seaway.save_model(LogisticRegression().fit(x, [0, 1, 0, 1]), folder, sample_input=x)
    return folder


def _controller(factory: Factory, clock: Clock, **kwargs: Any) -> tuple[Controller, DataPlane]:
    plane = DataPlane()
    controller = Controller(
        plane,
        lambda manifest: ServingOptions(),
        poll_interval=0,
        retry_base=1.0,
        retry_cap=4.0,
        clock=clock,
        model_factory=factory,
        **kwargs,
    )
    return controller, plane


def test_readiness_follows_healthy_replicas_not_the_pool_state(package: Path) -> None:
    async def main() -> None:
        factory, clock = Factory(), Clock()
        controller, plane = _controller(factory, clock)
        await controller.start([str(package)])
        model = factory.made[0]
        assert plane.ready and plane.model_ready("churn")
        model.pool.size, model.pool.state, model.pool.healthy = 2, PoolState.DEGRADED, 1
        assert plane.ready  # one of two replicas restarting: still able to answer
        model.pool.healthy = 0  # both down, restarts not yet back
        assert not plane.ready and not plane.model_ready("churn")
        assert "no healthy replica (0 of 2; restarting)" in plane.unready_reason()
        [entry] = controller.index()
        assert entry.state == "UNAVAILABLE" and "no healthy replica" in entry.reason
        assert plane._ready("churn", None) is model  # an ordinary restart: requests wait
        model.pool.error = "replica 0 failed to restart: disk on fire"
        with pytest.raises(seaway.errors.ModelUnavailableError, match="no healthy replica"):
            plane._ready("churn", None)  # restarts fail: at once, not after their deadline
        model.pool.healthy, model.pool.error = 1, None
        assert plane.ready and controller.index()[0].state == "READY"
        await controller.stop()

    asyncio.run(main())


def test_a_failed_pool_is_replaced_with_backoff_and_says_why(package: Path) -> None:
    async def main() -> None:
        factory, clock = Factory(), Clock()
        controller, plane = _controller(factory, clock)
        await controller.start([str(package)])
        failed = factory.made[0]
        failed.pool.state, failed.pool.healthy = PoolState.FAILED, 0
        failed.pool.error = "replica 0 failed to restart: out of memory"
        assert not plane.ready and "out of memory" in plane.unready_reason()

        factory.failures = 3
        await controller.poll()  # noticed: the first replacement goes at once (and fails)
        assert factory.starts == 2
        [entry] = controller.index()
        assert entry.state == "UNAVAILABLE"
        assert "out of memory" in entry.reason and "next try in 1 s" in entry.reason
        assert plane.get("churn") is failed  # still published: its requests get the reason

        delays = []
        for _ in range(3):  # the second, third and fourth tries: 1 s, 2 s, then 4 s later
            starts = factory.starts
            while factory.starts == starts:
                await controller.poll()
                clock.now += 0.5
            delays.append(clock.now)
        assert [b - a for a, b in itertools.pairwise(delays)] == [2.0, 4.0]

        fresh = factory.made[-1]
        assert plane.get("churn") is fresh and plane.ready
        assert controller.index()[0].state == "READY"
        await asyncio.sleep(0)  # the failed one drains in the background
        await controller.stop()
        assert failed.stopped

    asyncio.run(main())


def test_the_backoff_stops_growing_at_its_cap(package: Path) -> None:
    async def main() -> None:
        factory, clock = Factory(), Clock()
        controller, _ = _controller(factory, clock)
        await controller.start([str(package)])
        factory.made[0].pool.state = PoolState.FAILED
        factory.failures = 10
        await controller.poll()
        waits = []
        for _ in range(5):
            starts, began = factory.starts, clock.now
            while factory.starts == starts:
                clock.now += 0.5
                await controller.poll()
            waits.append(clock.now - began)
        assert waits == [1.0, 2.0, 4.0, 4.0, 4.0]
        await controller.stop()

    asyncio.run(main())


def test_a_repository_load_retries_a_failed_pool_at_once(package: Path) -> None:
    async def main() -> None:
        factory, clock = Factory(), Clock()
        controller, plane = _controller(factory, clock)
        await controller.start([str(package)])
        factory.made[0].pool.state = PoolState.FAILED
        factory.made[0].pool.error = "gave up"
        factory.failures = 2
        await controller.poll()  # first replacement fails; the next is 1 s away
        with pytest.raises(ModelLoadError, match="gave up|disk on fire"):
            await controller.load("churn", {})  # asked: tries at once (and fails, and says so)
        assert factory.starts == 3
        await controller.load("churn", {})  # and again at once: this one starts
        assert factory.starts == 4 and plane.ready
        await controller.stop()

    asyncio.run(main())


# ---- the registry going away under a running server --------------------------------------------


def _registry_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "registry" in r.getMessage()]


@pytest.mark.parametrize("outage", ["moved", "corrupt"])
def test_a_registry_outage_logs_one_warning_and_one_recovery_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, outage: str
) -> None:
    db = tmp_path / "registry.db"
    url = f"sqlite:///{db}"
    registry = Registry(url, str(tmp_path / "artifacts"))

    async def main() -> None:
        controller, _ = _controller(Factory(), Clock(), registry=registry)
        await controller.start([])
        await controller.poll()
        assert not _registry_records(caplog)
        saved = db.read_bytes()
        if outage == "moved":
            db.rename(tmp_path / "elsewhere.db")
        else:
            db.write_bytes(b"this is not a database " * 400)
        for _ in range(3):
            await controller.poll()
        if outage == "moved":
            (tmp_path / "elsewhere.db").rename(db)
            assert not list(tmp_path.glob("registry.db")) or db.read_bytes() == saved
        else:
            db.write_bytes(saved)
        for _ in range(2):
            await controller.poll()
        await controller.stop()

    with caplog.at_level(logging.INFO, logger="seaway.serving.controller"):
        asyncio.run(main())
    registry.close()
    records = _registry_records(caplog)
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in records]
    message = warnings[0].getMessage()
    assert url in message and "unreachable" in message
    if outage == "moved":
        assert f"{db} is missing" in message
    else:
        assert "not a database" in message
    assert warnings[0].exc_info is None  # a line, not a traceback
    assert [r.levelno for r in records] == [logging.WARNING, logging.INFO]
    assert "reachable again" in records[1].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_moved_registry_file_is_not_recreated_empty(tmp_path: Path) -> None:
    db = tmp_path / "registry.db"
    registry = Registry(f"sqlite:///{db}", str(tmp_path / "artifacts"))

    async def main() -> None:
        controller, _ = _controller(Factory(), Clock(), registry=registry)
        await controller.start([])
        shutil.move(db, tmp_path / "elsewhere.db")
        await controller.poll()
        await controller.stop()

    asyncio.run(main())
    registry.close()
    assert not db.exists()
