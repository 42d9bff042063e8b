"""Progressive rollout: a simulated deployment driven by decide() on an injected clock."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

from seaway.errors import InvalidInputError
from seaway.routing.rollout import Decision, RolloutState, current_weight, decide, start
from seaway.routing.spec import Gates, Rollout, Step
from seaway.routing.stats import ArmStats, DeploymentStats
from seaway.types import RolloutAction, RolloutPhase

T0 = 1_700_000_000.0
STABLE, CANDIDATE = "3", "4"


def rollout_spec(**gates: float) -> Rollout:
    return Rollout(
        version=4,
        steps=(
            Step(weight=5, min_duration=300, min_requests=200),
            Step(weight=25, min_duration=300, min_requests=200),
            Step(weight=50, min_duration=300, min_requests=200),
            Step(weight=100),
        ),
        gates=Gates(
            **{"max_error_rate_increase": 0.01, "max_p99_ratio": 1.5, "min_samples": 100, **gates}
        ),
    )


@dataclass
class Behaviour:
    """How a version answers: its error rate, latency and predicted labels."""

    error_rate: float = 0.0
    latency_ms: float = 10.0
    labels: tuple[str, ...] = ("a", "b")


@dataclass
class Simulation:
    """Traffic split by the rollout's weight; the clock moves only when the test says so."""

    rollout: Rollout
    candidate: Behaviour = field(default_factory=Behaviour)
    stable: Behaviour = field(default_factory=Behaviour)
    per_poll: int = 500
    poll_s: float = 30.0
    drift: float | None = None
    now: float = T0
    rng: random.Random = field(default_factory=lambda: random.Random(12))
    stats: DeploymentStats = field(
        default_factory=lambda: DeploymentStats(arms={STABLE: ArmStats(), CANDIDATE: ArmStats()})
    )
    decisions: list[Decision] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = start(self.rollout, STABLE, CANDIDATE, self.now, self.stats)

    def serve(self, requests: int) -> None:
        weight = current_weight(self.rollout, self.state)
        assert weight is not None
        for _ in range(requests):
            version = CANDIDATE if self.rng.random() * 100 < weight else STABLE
            how = self.candidate if version == CANDIDATE else self.stable
            ok = self.rng.random() >= how.error_rate
            latency = how.latency_ms * self.rng.uniform(0.8, 1.2) / 1000.0
            self.stats.arms[version].observe(latency, ok)
            if ok:
                label = how.labels[self.rng.randrange(len(how.labels))]
                self.stats.arms[version].observe_outputs(np.array([label]))

    def poll(self) -> Decision:
        self.serve(self.per_poll)
        self.now += self.poll_s
        self.state, decision = decide(
            self.rollout, self.state, self.stats, self.now, drift=self.drift
        )
        self.decisions.append(decision)
        return decision

    def run(self, polls: int) -> list[Decision]:
        for _ in range(polls):
            self.poll()
            if self.state.terminal:
                break
        return self.decisions

    def actions(self) -> list[RolloutAction]:
        return [d.action for d in self.decisions if d.action is not RolloutAction.HOLD]


def test_start_is_the_first_step_with_a_snapshot_of_the_stats() -> None:
    stats = DeploymentStats(arms={STABLE: ArmStats()})
    stats.arms[STABLE].observe(0.01, True)
    state = start(rollout_spec(), STABLE, CANDIDATE, T0, stats)
    assert state.phase is RolloutPhase.PROGRESSING and state.step == 0
    assert state.started_at == state.step_started_at == T0
    assert state.at_step_start == stats.to_json()
    assert current_weight(rollout_spec(), state) == 5
    assert "version 4 started at 5%" in state.reason


def test_a_good_candidate_advances_step_by_step_to_complete() -> None:
    sim = Simulation(rollout_spec(max_divergence=0.1))
    sim.run(200)
    assert sim.state.phase is RolloutPhase.SUCCEEDED
    assert sim.actions() == [RolloutAction.ADVANCE] * 3 + [RolloutAction.COMPLETE]
    moves = [d for d in sim.decisions if d.action is not RolloutAction.HOLD]
    assert [d.weight for d in moves] == [25, 50, 100, 100]
    assert [d.step for d in moves] == [1, 2, 3, 3]
    for move in moves[:3]:  # each step's minimums were met before it moved on
        assert move.values["elapsed_s"] >= move.values["min_duration_s"] == 300
        assert move.values["candidate_requests"] >= 200
        assert move.values["max_error_rate_increase"] is not None
        assert {g.name for g in move.gates} == {
            "max_error_rate_increase",
            "max_p99_ratio",
            "max_divergence",
        }
        assert "gates passed" in move.reason
    # at 5% with 500 requests a poll the candidate had its 200 requests long before 5 minutes
    first_holds = sim.decisions[: sim.decisions.index(moves[0])]
    assert first_holds and all(d.action is RolloutAction.HOLD for d in first_holds)
    assert any("of 5m elapsed" in d.reason for d in first_holds)
    assert moves[0].reason.startswith("advanced to 25%: 5m")
    assert moves[-1].reason.startswith("completed:")
    assert current_weight(sim.rollout, sim.state) is None


def test_the_last_step_compares_with_all_the_stable_version_served() -> None:
    rollout = Rollout(
        version=4,
        steps=(Step(weight=50, min_requests=150), Step(weight=100, min_duration=120)),
        gates=Gates(max_error_rate_increase=0.01, min_samples=100),
    )
    sim = Simulation(rollout, per_poll=400)
    sim.run(50)
    assert sim.actions() == [RolloutAction.ADVANCE, RolloutAction.COMPLETE]
    done = sim.decisions[-1]
    assert done.values["stable_requests"] > 100  # not the empty window at 100%
    assert done.values["elapsed_s"] >= 120


def test_an_error_prone_candidate_is_rolled_back_with_the_reason() -> None:
    sim = Simulation(rollout_spec(), candidate=Behaviour(error_rate=0.1))
    sim.run(200)
    assert sim.state.phase is RolloutPhase.ROLLED_BACK
    assert sim.actions() == [RolloutAction.ROLLBACK]
    back = sim.decisions[-1]
    assert back.weight == 0 and back.step == 0
    assert back.reason.startswith("rolled back at step 1 of 4 (5%): max_error_rate_increase:")
    assert back.values["max_error_rate_increase"] > 0.01
    assert back.values["candidate_errors"] > 0 and back.values["candidate_requests"] >= 100
    assert sim.state.reason == back.reason
    assert current_weight(sim.rollout, sim.state) is None
    # a failing gate does not wait out the step's minimum duration
    assert back.values["elapsed_s"] < 300


def test_a_slow_candidate_is_rolled_back_on_p99() -> None:
    sim = Simulation(rollout_spec(), candidate=Behaviour(latency_ms=40.0))
    sim.run(200)
    assert sim.state.phase is RolloutPhase.ROLLED_BACK
    back = sim.decisions[-1]
    assert "max_p99_ratio" in back.reason and "max_error_rate_increase" not in back.reason
    assert back.values["max_p99_ratio"] > 1.5


def test_a_diverging_candidate_is_rolled_back() -> None:
    sim = Simulation(rollout_spec(max_divergence=0.1), candidate=Behaviour(labels=("a", "c")))
    sim.run(200)
    assert sim.state.phase is RolloutPhase.ROLLED_BACK
    back = sim.decisions[-1]
    assert "max_divergence: prediction divergence" in back.reason
    assert back.values["max_divergence"] == pytest.approx(0.5, abs=0.15)


def test_a_drifting_candidate_is_rolled_back_and_unknown_drift_holds() -> None:
    unknown = Simulation(rollout_spec(max_drift=0.2))
    unknown.run(40)
    assert unknown.actions() == []
    assert "drift needs the prediction log" in unknown.decisions[-1].reason
    drifting = Simulation(rollout_spec(max_drift=0.2), drift=0.6)
    drifting.run(40)
    assert drifting.actions() == [RolloutAction.ROLLBACK]
    assert drifting.decisions[-1].values["max_drift"] == 0.6


def test_low_traffic_holds_for_insufficient_data_and_never_promotes() -> None:
    # a bad candidate on a trickle: too little to judge, so it neither rolls back nor advances
    sim = Simulation(rollout_spec(), candidate=Behaviour(error_rate=0.5), per_poll=1)
    sim.run(6 * 120)  # six hours of polls
    assert sim.actions() == []
    assert sim.state.phase is RolloutPhase.PROGRESSING and sim.state.step == 0
    last = sim.decisions[-1]
    assert last.action is RolloutAction.HOLD and last.weight == 5
    assert "requests on version 4" in last.reason
    assert "insufficient data" in last.reason
    assert "of 100 requests on the candidate" in last.reason


def test_minimum_requests_hold_even_after_the_duration() -> None:
    rollout = Rollout(
        version=4,
        steps=(Step(weight=5, min_duration=60, min_requests=200), Step(weight=100)),
        gates=Gates(min_samples=1),
    )
    sim = Simulation(rollout, per_poll=100)
    sim.run(10)
    holds = [d for d in sim.decisions if d.action is RolloutAction.HOLD]
    assert holds and "of 200 requests on version 4" in holds[-1].reason
    assert all("elapsed" not in d.reason for d in holds if d.values["elapsed_s"] >= 60)


def test_paused_holds_and_changes_nothing() -> None:
    sim = Simulation(rollout_spec())
    sim.state = replace(sim.state, phase=RolloutPhase.PAUSED)
    before = sim.state
    sim.run(100)
    assert sim.actions() == [] and sim.state is before
    assert sim.decisions[-1].reason == "paused at step 1 of 4 (5%)"
    assert current_weight(sim.rollout, sim.state) == 5


@pytest.mark.parametrize(
    ("phase", "weight"),
    [(RolloutPhase.SUCCEEDED, 100), (RolloutPhase.ROLLED_BACK, 0), (RolloutPhase.ABORTED, 0)],
)
def test_terminal_states_hold(phase: RolloutPhase, weight: float) -> None:
    rollout = rollout_spec()
    state = replace(start(rollout, STABLE, CANDIDATE, T0, DeploymentStats()), phase=phase)
    after, decision = decide(rollout, state, DeploymentStats(), T0 + 10_000)
    assert after is state
    assert decision.action is RolloutAction.HOLD and decision.weight == weight
    assert decision.reason.startswith("rollout already ")
    assert current_weight(rollout, state) is None


def test_a_restart_continues_at_the_same_step_and_never_jumps_to_100() -> None:
    sim = Simulation(rollout_spec())
    while sim.state.step < 1:
        sim.poll()
    assert sim.state.step == 1
    sim.serve(300)
    # the process dies; another reads the state and the stats back from the registry
    state = RolloutState.from_json(json.loads(json.dumps(sim.state.to_json())))
    stats = DeploymentStats.from_json(json.loads(json.dumps(sim.stats.to_json())))
    assert state == sim.state
    assert current_weight(sim.rollout, state) == 25
    # long after, with plenty of traffic: still one step at a time
    sim.state, sim.stats, sim.now = state, stats, sim.now + 86_400
    first = sim.poll()
    assert first.action is RolloutAction.ADVANCE and first.weight == 50
    assert sim.state.step == 2
    second = sim.poll()
    assert second.action is RolloutAction.HOLD and second.weight == 50


def test_a_state_past_the_steps_holds() -> None:
    rollout = rollout_spec()
    state = replace(start(rollout, STABLE, CANDIDATE, T0, DeploymentStats()), step=7)
    after, decision = decide(rollout, state, DeploymentStats(), T0 + 10_000)
    assert after is state and decision.action is RolloutAction.HOLD
    assert "step 8 but the spec has 4 steps" in decision.reason
    assert current_weight(rollout, state) is None


def test_decisions_and_states_round_trip_through_json() -> None:
    sim = Simulation(rollout_spec(max_divergence=0.1))
    sim.run(30)
    for decision in sim.decisions:
        assert Decision.from_json(json.loads(json.dumps(decision.to_json()))) == decision
    doc = sim.state.to_json()
    assert doc["phase"] == "progressing"
    assert RolloutState.from_json(doc) == sim.state


def test_an_unreadable_state_names_the_missing_field() -> None:
    doc = start(rollout_spec(), STABLE, CANDIDATE, T0, DeploymentStats()).to_json()
    del doc["step"]
    with pytest.raises(InvalidInputError, match="rollout state: missing field 'step'"):
        RolloutState.from_json(doc)
