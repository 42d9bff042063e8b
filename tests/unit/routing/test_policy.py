"""Traffic splits and the picker: measured splits within statistical tolerance of the weights,
sticky keys, and moves between splits that shift only the keys that must move."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from seaway.errors import InvalidInputError
from seaway.routing.policy import Picker, Split, effective_split, sticky_bucket, take
from seaway.routing.spec import parse_spec

PICKS = 100_000


def within_five_sigma(count: int, n: int, percent: float) -> bool:
    """A binomial count of ``n`` trials at ``percent`` within 5 standard deviations."""
    p = percent / 100
    return abs(count - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1e-9


def split(*arms: tuple[str, float]) -> Split:
    return Split(tuple(arms))


# -- splits --------------------------------------------------------------------------------------


def test_a_split_keeps_its_order_and_answers_weights() -> None:
    s = split(("3", 90), ("4", 10))
    assert s.versions == ("3", "4")
    assert s.weight("4") == 10
    assert s.weight("9") == 0


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        ((), "at least one version"),
        ((("3", 50), ("3", 50)), "names a version twice"),
        ((("3", 90), ("4", 5)), "must sum to 100"),
        ((("3", 110), ("4", -10)), "from 0 to 100"),
        ((("3", math.nan),), "from 0 to 100"),
    ],
)
def test_a_bad_split_is_refused(arms: tuple[tuple[str, float], ...], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Split(arms)


def test_the_effective_split_is_the_routes_or_the_rollout_step() -> None:
    canary = parse_spec(
        {
            "name": "fraud",
            "model": "fraud",
            "routes": [{"version": 3, "weight": 90}, {"version": 4, "weight": 10}],
        }
    )
    assert effective_split(canary, None).arms == (("3", 90.0), ("4", 10.0))
    with pytest.raises(InvalidInputError, match="no rollout"):
        effective_split(canary, 25)

    rollout = parse_spec(
        {"name": "fraud", "model": "fraud", "routes": [{"version": 3}], "rollout": {"version": 4}}
    )
    assert effective_split(rollout, None).arms == (("3", 100.0),)
    assert effective_split(rollout, 25).arms == (("3", 75.0), ("4", 25.0))
    assert effective_split(rollout, 100).arms == (("3", 0.0), ("4", 100.0))
    with pytest.raises(InvalidInputError, match="from 0 to 100"):
        effective_split(rollout, 120)


# -- random picks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arms",
    [
        (("3", 90.0), ("4", 10.0)),
        (("1", 50.0), ("2", 30.0), ("3", 20.0)),
        (("1", 99.0), ("2", 1.0)),
        (("1", 100 / 3), ("2", 100 / 3), ("3", 100 / 3)),
    ],
)
def test_measured_split_is_within_statistical_tolerance(
    arms: tuple[tuple[str, float], ...],
) -> None:
    picker = Picker(Split(arms), salt="fraud", rng=random.Random(12))
    counts = Counter(picker.pick() for _ in range(PICKS))
    assert set(counts) == {version for version, _ in arms}
    for version, weight in arms:
        assert within_five_sigma(counts[version], PICKS, weight), (version, counts)


def test_a_seeded_picker_repeats_its_picks() -> None:
    s = split(("3", 50), ("4", 50))
    first = Picker(s, salt="x", rng=random.Random(7))
    second = Picker(s, salt="x", rng=random.Random(7))
    assert [first.pick() for _ in range(200)] == [second.pick() for _ in range(200)]


def test_weight_zero_arms_are_never_picked() -> None:
    picker = Picker(split(("3", 0), ("4", 100), ("5", 0)), salt="fraud", rng=random.Random(1))
    assert {picker.pick() for _ in range(20_000)} == {"4"}
    assert {picker.pick(f"user-{i}") for i in range(20_000)} == {"4"}


def test_a_random_draw_at_the_top_of_the_range_stays_in_the_last_arm() -> None:
    class Top(random.Random):
        def random(self) -> float:
            return math.nextafter(1.0, 0.0)

    picker = Picker(split(("3", 100 / 3), ("4", 100 / 3), ("5", 100 / 3)), salt="", rng=Top())
    assert picker.pick() == "5"


# -- sticky keys ---------------------------------------------------------------------------------


def test_the_same_key_gets_the_same_version() -> None:
    s = split(("3", 50), ("4", 30), ("5", 20))
    one = Picker(s, salt="fraud", rng=random.Random(1))
    other = Picker(s, salt="fraud", rng=random.Random(2))  # another server, other randomness
    for i in range(2000):
        key = f"user-{i}"
        version = one.pick(key)
        assert one.pick(key) == version
        assert other.pick(key) == version


def test_sticky_keys_split_by_the_weights() -> None:
    picker = Picker(split(("3", 90), ("4", 10)), salt="fraud", rng=random.Random(0))
    counts = Counter(picker.pick(f"user-{i}") for i in range(PICKS))
    assert within_five_sigma(counts["4"], PICKS, 10), counts


def test_moving_from_90_10_to_80_20_moves_only_the_keys_that_must_move() -> None:
    keys = [f"user-{i}" for i in range(PICKS)]
    before = Picker(split(("3", 90), ("4", 10)), salt="fraud", rng=random.Random(0))
    after = Picker(split(("3", 80), ("4", 20)), salt="fraud", rng=random.Random(0))
    moved = Counter((before.pick(k), after.pick(k)) for k in keys)
    assert moved[("4", "3")] == 0  # nobody on the canary goes back
    # exactly the keys in the band that changed hands move: 10% of them, no more
    assert within_five_sigma(moved[("3", "4")], PICKS, 10), moved
    assert within_five_sigma(moved[("4", "4")], PICKS, 10), moved


def test_rollout_steps_only_ever_add_keys_to_the_candidate() -> None:
    spec = parse_spec(
        {"name": "fraud", "model": "fraud", "routes": [{"version": 3}], "rollout": {"version": 4}}
    )
    keys = [f"user-{i}" for i in range(20_000)]
    on_candidate: set[str] = set()
    for weight in (0, 5, 25, 50, 100):
        picker = Picker(effective_split(spec, weight), salt="fraud", rng=random.Random(0))
        now = {k for k in keys if picker.pick(k) == "4"}
        assert on_candidate <= now
        on_candidate = now
    assert on_candidate == set(keys)


def test_the_salt_makes_deployments_assign_keys_independently() -> None:
    keys = [f"user-{i}" for i in range(20_000)]
    s = split(("a", 50), ("b", 50))
    fraud = Picker(s, salt="fraud", rng=random.Random(0))
    churn = Picker(s, salt="churn", rng=random.Random(0))
    same = sum(fraud.pick(k) == churn.pick(k) for k in keys)
    assert within_five_sigma(same, len(keys), 50)


def test_sticky_bucket_is_a_fixed_function_of_key_and_salt() -> None:
    # pinned (not Python's hash, which varies per process): a change of hash would move every user of every running A/B test to a new arm
    assert sticky_bucket("user-1", "fraud") == pytest.approx(51.138981325274045, abs=1e-12)
    assert sticky_bucket("user-1", "churn") == pytest.approx(90.1904438787389, abs=1e-12)


def test_sticky_buckets_lie_in_0_to_100_for_any_text() -> None:
    for key in ("", "é", "\ud800", "x" * 10_000, "user-1"):
        for salt in ("", "fraud", "s" * 200):
            assert 0 <= sticky_bucket(key, salt) < 100
    assert sticky_bucket("k", "s" * 65) != sticky_bucket("k", "s" * 66)


def test_pick_by_key_agrees_with_the_bucket() -> None:
    picker = Picker(split(("3", 25), ("4", 75)), salt="fraud", rng=random.Random(0))
    for i in range(5000):
        key = f"k{i}"
        assert picker.pick(key) == ("3" if sticky_bucket(key, "fraud") < 25 else "4")


# -- shadow sampling -----------------------------------------------------------------------------


def test_take_samples_the_fraction() -> None:
    rng = random.Random(3)
    taken = sum(take(0.3, rng) for _ in range(PICKS))
    assert within_five_sigma(taken, PICKS, 30)


def test_take_everything_or_nothing_without_drawing() -> None:
    class NoDraws(random.Random):
        def random(self) -> float:
            raise AssertionError("drew a number")

    rng = NoDraws()
    assert take(1.0, rng) is True
    assert take(0.0, rng) is False
