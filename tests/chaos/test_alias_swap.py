"""Chaos: the alias a server follows is moved back and forth under load. Nothing fails, every
answer is right for the version that gave it, and once the new version has answered, every
request sent afterwards is answered by it (the switch is one atomic publish)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from _fraud import TwoVersions
from _traffic import Outcome, Traffic, figures, running

import seaway

MOVES = ["2", "1", "2", "1"]
#: answers from the new version to see after each move before the next one
SETTLE = 20


def test_moving_the_alias_repeatedly_under_load(
    seaway_home: Path, tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]
) -> None:
    fraud = TwoVersions(*tabular)
    args = ["models:/fraud@production", "--poll-interval", "0.2"]
    with running(args, seaway_home, tmp_path / "server.log") as server:
        url = f"{server.url}/v2/models/fraud/infer"
        moves: list[tuple[str, float, float]] = []  # (version, alias set at, first answer at)
        with Traffic(url, fraud.body, fraud.check) as traffic:
            traffic.wait_for(lambda seen: len(seen) >= SETTLE, "the first answers")
            for target in MOVES:
                with seaway.Registry.from_settings() as registry:
                    moved_at = time.monotonic()
                    registry.set_alias("fraud", "production", int(target))

                def settled(seen: list[Outcome], target: str = target, at: float = moved_at):
                    new = [o for o in seen if o.done > at and o.version == target]
                    return len(new) >= SETTLE

                traffic.wait_for(settled, f"version {target} to take over")
                first = min(
                    o.done for o in traffic.outcomes if o.done > moved_at and o.version == target
                )
                moves.append((target, moved_at, first))
        print(figures(traffic, "alias swap"), f"moves {len(moves)}")

    outcomes = traffic.outcomes
    failed = [o for o in outcomes if o.status != 200 or not o.correct]
    assert not failed, failed[:5]
    for index, (target, _, first) in enumerate(moves):
        until = moves[index + 1][1] if index + 1 < len(moves) else float("inf")
        stale = [o for o in outcomes if first < o.sent and o.done < until and o.version != target]
        assert not stale, f"after version {target} answered, older answers came: {stale[:5]}"
