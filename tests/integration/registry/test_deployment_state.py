"""A deployment's live state in the registry (issue 12, items 1 and 5), on SQLite and PostgreSQL:
rollout records written by compare-and-set, the decision log, per-server traffic counters, and
leases that one of several servers wins, renews, loses on expiry and releases."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.errors import ConflictError, InvalidInputError, NotFoundError
from seaway.registry import Registry
from seaway.registry.deployments import DeploymentStore, RolloutRecord

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
R = TypeVar("R")


@pytest.fixture
def store(
    registry: Registry, tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]
) -> DeploymentStore:
    """Deployment fraud-prod at revision 2 (versions 1 and 2 of model fraud); times from T0 on."""
    frame, target = tabular
    model = LogisticRegression().fit(frame, target)
    package = seaway.save_model(model, tmp_path / "pkg", sample_input=frame.head()).path
    for _ in range(2):
        registry.register(package, "fraud")
    deployments = registry.deployments
    ticks = iter(range(10_000))
    deployments.clock = lambda: T0 + timedelta(seconds=next(ticks))
    deployments.apply("fraud-prod", "fraud", {"routes": [1]}, [1], actor="user:ana")
    deployments.apply("fraud-prod", "fraud", {"routes": [1], "rollout": 2}, [1, 2], actor="a")
    return deployments


def _together(count: int, work: Callable[[int], R]) -> list[R]:
    """Run ``work(i)`` on ``count`` threads released at once; their results, by i."""
    start = threading.Barrier(count)
    results: dict[int, R] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = work(i)
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [results[i] for i in range(count)]


def test_a_rollout_is_written_by_compare_and_set(store: DeploymentStore) -> None:
    assert store.rollout("fraud-prod") is None
    first = store.set_rollout(
        "fraud-prod", 2, {"phase": "progressing", "step": 0}, expect_generation=0
    )
    assert first.generation == 1 and store.rollout("fraud-prod") == first
    second = store.set_rollout(
        "fraud-prod", 2, {"phase": "progressing", "step": 1}, expect_generation=1
    )
    assert (second.generation, second.state["step"]) == (2, 1)

    # a writer that read generation 1 has lost: nothing changes
    with pytest.raises(ConflictError, match="at generation 2, not 1: someone changed it"):
        store.set_rollout("fraud-prod", 2, {"phase": "rolled_back"}, expect_generation=1)
    with pytest.raises(ConflictError, match="at generation 2, not 0"):
        store.set_rollout("fraud-prod", 2, {"phase": "progressing"}, expect_generation=0)
    assert store.rollout("fraud-prod") == second
    third = store.set_rollout("fraud-prod", 2, {"phase": "paused"})  # unconditional
    assert third.generation == 3

    # cleared and started again, generations keep counting: a stale one never matches again
    with pytest.raises(ConflictError, match="at generation 3, not 2"):
        store.clear_rollout("fraud-prod", expect_generation=2)
    assert store.clear_rollout("fraud-prod", expect_generation=3) == third
    assert store.rollout("fraud-prod") is None and store.clear_rollout("fraud-prod") is None
    with pytest.raises(ConflictError, match="has no rollout now .expected generation 3."):
        store.set_rollout("fraud-prod", 2, {"phase": "paused"}, expect_generation=3)
    restarted = store.set_rollout("fraud-prod", 2, {"phase": "progressing"}, expect_generation=0)
    assert restarted.generation == 4
    assert store.snapshot()[0] == (store.get("fraud-prod"), restarted)


def test_concurrent_rollout_writers_with_one_generation_one_wins(store: DeploymentStore) -> None:
    store.set_rollout("fraud-prod", 2, {"step": 0}, expect_generation=0)

    def advance(i: int) -> RolloutRecord | None:
        try:
            return store.set_rollout("fraud-prod", 2, {"step": 1, "by": i}, expect_generation=1)
        except ConflictError:
            return None

    won = [r for r in _together(4, advance) if r is not None]
    assert len(won) == 1 and store.rollout("fraud-prod") == won[0]
    assert won[0].generation == 2


def test_a_rollout_belongs_to_a_revision_of_the_deployment(store: DeploymentStore) -> None:
    with pytest.raises(
        NotFoundError, match=r"fraud-prod has no revision 3 \(its revisions are 1 to 2\)"
    ):
        store.set_rollout("fraud-prod", 3, {"phase": "progressing"})
    with pytest.raises(NotFoundError, match="no deployment named churn .deployments: fraud-prod."):
        store.set_rollout("churn", 1, {"phase": "progressing"})
    with pytest.raises(InvalidInputError, match="rollout state must be a mapping"):
        store.set_rollout("fraud-prod", 2, [1, 2])  # type: ignore[arg-type]


def test_the_decision_log_keeps_its_order(store: DeploymentStore) -> None:
    assert store.decisions("fraud-prod") == []
    made = [
        store.record_decision("fraud-prod", 1, {"action": "start"}, actor="user:ana"),
        store.record_decision("fraud-prod", 2, {"action": "start"}, actor="user:ana"),
        store.record_decision("fraud-prod", 2, {"action": "hold", "gates": []}, actor="controller"),
        store.record_decision(
            "fraud-prod", 2, {"action": "advance", "values": {"p99_ratio": float("inf")}}, actor="c"
        ),
    ]
    assert [d.seq for d in made] == sorted(d.seq for d in made)
    logged = store.decisions("fraud-prod")
    assert [d.decision["action"] for d in logged] == ["start", "start", "hold", "advance"]
    assert logged[:3] == made[:3] and logged[3].decision["values"] == {"p99_ratio": None}
    assert logged[0].at == T0 + timedelta(seconds=2) and logged[0].at.tzinfo is not None
    assert [d.decision["action"] for d in store.decisions("fraud-prod", revision=2)] == [
        "start",
        "hold",
        "advance",
    ]
    newest = store.decisions("fraud-prod", limit=2)  # the newest two, still oldest first
    assert [d.decision["action"] for d in newest] == ["hold", "advance"]
    assert store.decisions("fraud-prod", revision=1, limit=5) == [made[0]]
    with pytest.raises(NotFoundError, match="has no revision 9"):
        store.record_decision("fraud-prod", 9, {"action": "hold"}, actor="c")
    with pytest.raises(InvalidInputError, match="actor must be a non-empty string"):
        store.record_decision("fraud-prod", 2, {"action": "hold"}, actor="")


def test_stats_are_kept_per_server_and_revision(store: DeploymentStore) -> None:
    assert store.stats("fraud-prod", 2) == []
    store.put_stats("fraud-prod", 2, "server-b", {"arms": {"1": {"requests": 5}}})
    store.put_stats("fraud-prod", 2, "server-a", {"arms": {"1": {"requests": 3}}})
    latest = store.put_stats("fraud-prod", 2, "server-b", {"arms": {"1": {"requests": 9}}})
    store.put_stats("fraud-prod", 1, "server-a", {"arms": {"1": {"requests": 100}}})
    listed = store.stats("fraud-prod", 2)
    assert [(s.server, s.stats["arms"]["1"]["requests"]) for s in listed] == [
        ("server-a", 3),
        ("server-b", 9),  # replaced, not added
    ]
    assert listed[1] == latest
    assert [s.stats["arms"]["1"]["requests"] for s in store.stats("fraud-prod", 1)] == [100]
    with pytest.raises(NotFoundError, match="has no revision 5"):
        store.put_stats("fraud-prod", 5, "server-a", {})


def test_concurrent_flushes_of_one_server_keep_one_row(store: DeploymentStore) -> None:
    _together(4, lambda i: store.put_stats("fraud-prod", 2, "server-a", {"n": i}))
    [row] = store.stats("fraud-prod", 2)
    assert row.stats["n"] in range(4)


def test_one_of_several_acquirers_gets_a_free_lease(store: DeploymentStore) -> None:
    got = _together(4, lambda i: store.acquire_lease("rollout:fraud-prod", f"s{i}", 30, now=T0))
    assert got.count(True) == 1
    winner = f"s{got.index(True)}"
    assert store.lease_holder("rollout:fraud-prod", now=T0 + timedelta(seconds=29)) == winner
    assert store.lease_holder("rollout:other", now=T0) is None


def test_a_lease_is_renewed_by_its_holder_and_taken_over_once_expired(
    store: DeploymentStore,
) -> None:
    key = "rollout:fraud-prod"
    assert store.acquire_lease(key, "s1", 30, now=T0)
    assert not store.acquire_lease(key, "s2", 30, now=T0 + timedelta(seconds=10))
    assert store.acquire_lease(key, "s1", 30, now=T0 + timedelta(seconds=20))  # renewed to 50s
    assert not store.acquire_lease(key, "s2", 30, now=T0 + timedelta(seconds=45))
    assert store.lease_holder(key, now=T0 + timedelta(seconds=49)) == "s1"
    assert store.lease_holder(key, now=T0 + timedelta(seconds=50)) is None  # s1 died

    # several servers find it expired: one takes it over; the old holder cannot renew it
    later = T0 + timedelta(seconds=60)
    got = _together(3, lambda i: store.acquire_lease(key, f"s{i + 2}", 30, now=later))
    assert got.count(True) == 1
    winner = f"s{got.index(True) + 2}"
    assert not store.acquire_lease(key, "s1", 30, now=later)
    assert store.lease_holder(key, now=later) == winner

    assert not store.release_lease(key, "s1")  # not its lease: nothing happens
    assert store.lease_holder(key, now=later) == winner
    assert store.release_lease(key, winner)
    assert store.lease_holder(key, now=later) is None
    assert store.acquire_lease(key, "s1", 30, now=later)


def test_leases_use_the_stores_clock_and_refuse_a_bad_ttl(store: DeploymentStore) -> None:
    now = [T0]
    store.clock = lambda: now[0]
    assert store.acquire_lease("k", "s1", 5)
    now[0] = T0 + timedelta(seconds=6)
    assert store.lease_holder("k") is None and store.acquire_lease("k", "s2", 5)
    for ttl in (0, -1, float("nan")):
        with pytest.raises(InvalidInputError, match="ttl_s must be a positive number"):
            store.acquire_lease("k", "s2", ttl)
    with pytest.raises(InvalidInputError, match="lease holder must be a non-empty string"):
        store.acquire_lease("k", "x" * 201, 5)
