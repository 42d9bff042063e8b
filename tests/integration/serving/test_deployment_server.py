"""Deployments on real ``seaway serve --deployment`` processes (issue 12, the server's side): a
canary's split as measured from the answers, a new split followed without a restart, a bad
version rolled back on its own, a restart in the middle of a rollout, two servers on one
PostgreSQL registry, the admin HTTP API with API keys, and a served version that cannot be
deleted.

Changes are made as a user makes them (``seaway deploy ...``, the admin API); what the servers
did is read from their answers and the registry's decision log. Every wait is for a condition,
with a deadline (``deployserver.wait_until``).
"""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import rolloutmodels
from deployserver import POLL, apply, cli, history, serving, tolerance, wait_until
from servers import Server

import seaway
from seaway.registry import Registry

NAME = "fraud-live"
Serve = Callable[..., Server]
#: a request, and what answered it: (HTTP status, model_version in the body, version header)
Answer = tuple[int, str, str]


def _fraud() -> Iterator[Registry]:
    with seaway.Registry.from_settings() as registry:
        rolloutmodels.register(
            registry,
            "fraud",
            rolloutmodels.Good(),
            rolloutmodels.Good(),
            rolloutmodels.FailsAbove(),
            rolloutmodels.Opposite(),
            rolloutmodels.Slow(),
        )
        yield registry


@pytest.fixture
def fraud(seaway_home: Path) -> Iterator[Registry]:
    """The registry the servers use, open, with model ``fraud``: versions 1 and 2 good, 3 fails
    on half the rows, 4 answers the opposite labels, 5 is slow."""
    yield from _fraud()


@pytest.fixture
def fraud_on_postgresql(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """The same on a PostgreSQL registry (the servers and the CLI use it too)."""
    monkeypatch.setenv("SEAWAY_REGISTRY_URL", postgres_url)
    yield from _fraud()


def _start(serve: Serve, *extra: str, **options: Any) -> Server:
    return serve("--deployment", NAME, "--trusted", "--poll-interval", POLL, *extra, **options)


def _spec(routes: list[tuple[int, float]], **sections: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": NAME,
        "model": "fraud",
        "routes": [{"version": v, "weight": w} for v, w in routes],
    }
    return {**doc, **sections}


def _send(server: Server, count: int, first_seed: int = 0) -> list[Answer]:
    """``count`` one-row requests, one after the other."""
    answers = []
    with httpx.Client(timeout=60) as client:
        for seed in range(first_seed, first_seed + count):
            answer = client.post(
                f"{server.url}/v2/models/{NAME}/infer", json=rolloutmodels.body(seed)
            )
            version = answer.json().get("model_version", "") if answer.status_code == 200 else ""
            header = answer.headers.get("x-seaway-model-version", "")
            answers.append((answer.status_code, version, header))
    return answers


def _versions(answers: list[Answer]) -> Counter[str]:
    assert [a for a in answers if a[0] != 200] == []
    assert [a for a in answers if a[1] != a[2]] == [], "the header names another version"
    return Counter(version for _, version, _ in answers)


def _decisions(registry: Registry) -> list[dict[str, Any]]:
    """The decision log, oldest first, each entry with its actor."""
    return [{**d.decision, "actor": d.actor} for d in registry.deployments.decisions(NAME)]


def _acted(registry: Registry, action: str) -> Callable[[], dict[str, Any] | None]:
    """A condition: the first decision taking ``action``."""

    def found() -> dict[str, Any] | None:
        return next((d for d in _decisions(registry) if d["action"] == action), None)

    return found


# ---- 1. canary -------------------------------------------------------------------------------


def test_a_canary_split_as_served_and_a_new_split_followed_without_a_restart(
    fraud: Registry, serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apply(capsys, tmp_path, _spec([(1, 80), (2, 20)]))
    server = _start(serve)
    assert serving(server, NAME) == ["1", "2"]
    n = 400
    counts = _versions(_send(server, n))
    assert set(counts) == {"1", "2"}
    assert abs(counts["2"] - 0.2 * n) <= tolerance(n, 0.2), counts

    # a split with a version the last one lacked: its first appearance is the moment of the switch
    apply(capsys, tmp_path, _spec([(2, 40), (4, 60)]))
    wait_until(lambda: serving(server, NAME) == ["2", "4"], "the new split", server=server)
    counts = _versions(_send(server, n, first_seed=n))
    assert set(counts) == {"2", "4"}, counts  # once switched, version 1 answers nothing
    assert abs(counts["4"] - 0.6 * n) <= tolerance(n, 0.6), counts
    assert server.process.poll() is None  # followed by the same process


# ---- 2. automatic rollback -------------------------------------------------------------------

BAD_VERSIONS = [
    # (candidate, its gates, the gate that must fail, a word of the reason)
    (3, {"max_error_rate_increase": 0.1, "min_samples": 20}, "max_error_rate_increase", "error rate"),
    (5, {"max_p99_ms": 50, "min_samples": 10}, "max_p99_ms", "p99"),
    (4, {"max_divergence": 0.3, "min_samples": 20}, "max_divergence", "diverge"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("candidate", "gates", "gate", "word"), BAD_VERSIONS, ids=["failing", "slow", "diverging"]
)
def test_a_bad_version_is_rolled_back_on_its_own(
    fraud: Registry,
    serve: Serve,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    candidate: int,
    gates: dict[str, Any],
    gate: str,
    word: str,
) -> None:
    apply(capsys, tmp_path, _spec([(1, 100)]))
    server = _start(serve)
    steps = [{"weight": 50, "min_duration": 0, "min_requests": 40}, {"weight": 100}]
    rollout = {"version": candidate, "steps": steps, "gates": gates}
    apply(capsys, tmp_path, _spec([(1, 100)], rollout=rollout))
    wait_until(lambda: serving(server, NAME) == ["1", str(candidate)], "the rollout's first step")

    sent = 0

    def rolled_back() -> dict[str, Any] | None:
        nonlocal sent
        answers = _send(server, 10, first_seed=sent)
        sent += len(answers)
        assert sent < 3000, "never rolled back"
        return _acted(fraud, "rollback")()

    wait_until(rolled_back, "a rollback", server=server)
    log = history(capsys, NAME)
    rollbacks = [d for d in log["decisions"] if d["decision"]["action"] == "rollback"]
    assert len(rollbacks) == 1
    decision = rollbacks[0]["decision"]
    assert rollbacks[0]["actor"].startswith("controller:")
    assert decision["step"] == 0 and decision["weight"] == 0
    assert gate in decision["reason"] and word in decision["reason"], decision["reason"]
    failed = [g for g in decision["gates"] if g["verdict"] == "fail"]
    assert [g["name"] for g in failed] == [gate]
    assert failed[0]["value"] > failed[0]["threshold"]
    assert not any(d["decision"]["action"] in ("advance", "complete") for d in log["decisions"])

    newest = log["revisions"][0]
    assert newest["actor"] == rollbacks[0]["actor"]
    assert [(r["version"], r["weight"]) for r in newest["spec"]["routes"]] == [(1, 100)]
    assert "rollout" not in newest["spec"]
    wait_until(lambda: serving(server, NAME) == ["1"], "the stable version alone", server=server)
    assert _versions(_send(server, 50, first_seed=sent)) == {"1": 50}


# ---- 4. restart in the middle of a rollout ----------------------------------------------------


def test_a_restarted_server_resumes_a_rollout_at_its_step(
    fraud: Registry, serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apply(capsys, tmp_path, _spec([(1, 100)]))
    steps = [
        {"weight": 20, "min_duration": 0, "min_requests": 0},
        {"weight": 50, "min_duration": 0, "min_requests": 200},
        {"weight": 100},
    ]
    rollout = {"version": 2, "steps": steps, "gates": {}}  # no gates: steps wait for requests
    apply(capsys, tmp_path, _spec([(1, 100)], rollout=rollout))
    first = _start(serve)
    wait_until(_acted(fraud, "advance"), "the first step's advance", server=first)
    wait_until(lambda: serving(first, NAME) == ["1", "2"], "the second step", server=first)
    before = _versions(_send(first, 100))
    held = fraud.deployments.rollout(NAME)
    assert held is not None and held.state["step"] == 1

    assert first.stop(signal.SIGTERM) == 0
    counted = sum(  # its last counts were left in the registry as it stopped
        s.stats["arms"].get("2", {}).get("requests", 0)
        for s in fraud.deployments.stats(NAME, held.revision)
    )
    assert counted == before["2"]

    second = _start(serve)
    assert serving(second, NAME) == ["1", "2"]  # step 2's split from its first answer, not 100%
    leader = _acted(fraud, "advance")()
    assert leader is not None

    def looked() -> bool:  # the new server took the lease and judged the step (holding)
        actors = {d["actor"] for d in _decisions(fraud) if d["actor"].startswith("controller:")}
        return bool(actors - {leader["actor"]})

    wait_until(looked, "the new server's first decision", server=second)
    same = fraud.deployments.rollout(NAME)
    assert same is not None
    assert (same.state, same.generation) == (held.state, held.generation)  # where it was left
    n = 100
    after = _versions(_send(second, n, first_seed=1000))
    assert abs(after["2"] - 0.5 * n) <= tolerance(n, 0.5), after

    sent = 2000

    def completed() -> dict[str, Any] | None:
        nonlocal sent
        _versions(_send(second, 10, first_seed=sent))
        sent += 10
        return _acted(fraud, "complete")()

    wait_until(completed, "the rollout to complete", server=second)
    decisions = _decisions(fraud)
    assert [d["action"] for d in decisions if d["action"] != "hold"] == [
        "start",
        "advance",
        "advance",
        "complete",
    ]
    advanced, resumed = [d for d in decisions if d["action"] == "advance"]
    assert resumed["step"] == 2 and resumed["values"]["candidate_requests"] >= 200
    assert resumed["actor"] != advanced["actor"]  # the new server's
    wait_until(lambda: serving(second, NAME) == ["2"], "the candidate alone", server=second)


# ---- 6. the admin HTTP API with API keys --------------------------------------------------------


def test_the_admin_api_applies_with_an_admin_key_only_and_refuses_a_bad_spec(
    fraud: Registry, serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apply(capsys, tmp_path, _spec([(1, 100)]))
    admin, admin_key = fraud.create_api_key("admin", name="ops")
    _, predict_key = fraud.create_api_key("predict", name="app")
    server = _start(serve, "--auth")

    def post(key: str, doc: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{server.url}/v2/deployments",
            json=doc,
            headers={"authorization": f"Bearer {key}"},
            timeout=30,
        )

    refused = post(predict_key, _spec([(1, 50), (2, 50)]))
    assert refused.status_code == 403, refused.text
    bad = post(admin_key, _spec([(1, 50), (2, 45)]))
    assert bad.status_code == 400
    assert "routes[1].weight: weights must sum to 100" in bad.json()["error"], bad.text
    unknown = post(admin_key, _spec([(1, 50), (9, 50)]))
    assert unknown.status_code in (400, 404)
    assert "routes[1].version" in unknown.json()["error"], unknown.text
    assert fraud.deployments.get(NAME).revision == 1
    assert serving(server, NAME, predict_key) == ["1"]

    applied = post(admin_key, _spec([(1, 50), (2, 50)]))
    assert applied.status_code == 200, applied.text
    current = fraud.deployments.get(NAME)
    assert (current.revision, current.actor) == (2, f"key:{admin.key_id}")
    assert serving(server, NAME, predict_key) == ["1", "2"]  # followed at once: no wait


# ---- 7. a served version cannot be deleted -------------------------------------------------------


def test_deleting_a_version_a_deployment_uses_is_refused_naming_it(
    fraud: Registry, serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apply(capsys, tmp_path, _spec([(1, 90), (2, 10)]))
    server = _start(serve)
    for target in ("fraud/2", "fraud"):
        code, out, err = cli(capsys, "models", "delete", target, "--force")
        assert code == 1 and out == ""
        assert NAME in err and "Traceback" not in err, err
    assert cli(capsys, "models", "delete", "fraud/3")[0] == 0  # one no deployment uses
    assert _versions(_send(server, 20)).keys() <= {"1", "2"}
    assert [v.version for v in fraud.list_versions("fraud")] == [1, 2, 4, 5]


# ---- 5. two servers on one PostgreSQL registry --------------------------------------------------


def _server_id(server: Server) -> str:
    """The id ``server`` takes its decisions under (it logs it at start)."""
    match = re.search(r"decisions are recorded as (controller:\S+)\)", server.output())
    assert match is not None, server.output()[-2000:]
    return match.group(1)


@pytest.mark.postgres
def test_two_servers_on_one_postgresql_registry_serve_alike_and_one_leads(
    fraud_on_postgresql: Registry,
    serve: Serve,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fraud = fraud_on_postgresql
    apply(capsys, tmp_path, _spec([(1, 100)]))
    lease = {"SEAWAY_SERVE_LEASE_SECONDS": "2"}  # a dead leader is replaced 2 s later, not 10
    servers = [_start(serve, env=lease), _start(serve, env=lease)]

    apply(capsys, tmp_path, _spec([(1, 50), (4, 50)]))
    applied = time.monotonic()
    followed = []
    for server in servers:
        wait_until(lambda s=server: serving(s, NAME) == ["1", "4"], "the new split", server=server)
        followed.append(time.monotonic() - applied)
    with capsys.disabled():
        print(f"\nboth servers serve the new revision {max(followed):.2f} s after the apply")

    steps = [
        {"weight": 10, "min_requests": 10},
        {"weight": 30, "min_requests": 10},
        {"weight": 60, "min_requests": 80},
        {"weight": 100},
    ]
    apply(capsys, tmp_path, _spec([(1, 100)], rollout={"version": 2, "steps": steps, "gates": {}}))
    sent = 0

    def advanced(times: int, to: list[Server]) -> bool:
        nonlocal sent
        for server in to:  # traffic to each live server, one batch after the other
            _versions(_send(server, 10, first_seed=sent))
            sent += 10
        return sum(d["action"] == "advance" for d in _decisions(fraud)) >= times

    wait_until(lambda: advanced(2, servers), "two advances with both servers live")
    ids = [_server_id(server) for server in servers]
    assert ids[0] != ids[1]
    holder = fraud.deployments.lease_holder(f"deployment:{NAME}")
    at_step = fraud.deployments.rollout(NAME)
    assert at_step is not None and at_step.state["step"] == 2  # held there: 80 requests to go
    leader = f"controller:{holder}"
    dead, survivor = (0, 1) if ids[0] == leader else (1, 0)
    killed = time.time()
    servers[dead].stop(signal.SIGKILL)  # no goodbye: its lease has to expire

    wait_until(
        lambda: advanced(3, [servers[survivor]]), "the survivor's advance", server=servers[survivor]
    )
    wait_until(_acted(fraud, "complete"), "the rollout to complete", server=servers[survivor])
    by_controllers = [d for d in _decisions(fraud) if d["actor"].startswith("controller:")]
    before = [d for d in by_controllers if d["at"] <= killed]
    after = [d for d in by_controllers if d["at"] > killed]
    assert {d["actor"] for d in before} == {leader}, before  # the other never decided
    assert [d["action"] for d in before if d["action"] != "hold"] == ["advance", "advance"]
    assert {d["actor"] for d in after} == {ids[survivor]}, after
    assert [d["action"] for d in after if d["action"] != "hold"] == ["advance", "complete"]
    wait_until(lambda: serving(servers[survivor], NAME) == ["2"], "the candidate alone")
