"""A rule whose model (or version) the server does not serve is evaluated for nothing: a typo in
``model:`` made an alert that could never fire, and nothing said so."""

from __future__ import annotations

import asyncio
import logging

import pytest

from seaway.monitoring.alerts import AlertKind, AlertRule, Signal
from seaway.serving.alerting import AlertEvaluator


def test_a_rule_matching_no_served_version_is_said_once_and_again_when_it_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    served = [("fraud", "1")]
    rules = [
        AlertRule.model_validate({"model": "fruad", "error_rate_above": 0.1}),
        AlertRule.model_validate({"model": "fraud", "version": "2", "error_rate_above": 0.1}),
        AlertRule.model_validate({"model": "fraud", "name": "ok", "error_rate_above": 0.1}),
    ]
    evaluator = AlertEvaluator(
        rules,
        {AlertKind.ERROR_RATE_ABOVE: lambda *_: Signal(0.0)},
        targets=lambda: served,
        interval=60,
    )

    async def rounds(count: int) -> None:
        for _ in range(count):
            await evaluator.round()

    with caplog.at_level(logging.WARNING, logger="seaway.serving.alerting"):
        asyncio.run(rounds(3))
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2, said  # once per idle rule, not per round
    assert "'fruad-error_rate_above'" in said[0] and "model fruad" in said[0]
    assert "fraud/1" in said[0]  # what is served
    assert "model fraud version 2" in said[1]
    caplog.clear()
    served.append(("fraud", "2"))  # loaded later (the repository API): it is evaluated, not said
    with caplog.at_level(logging.WARNING, logger="seaway.serving.alerting"):
        asyncio.run(rounds(1))
    assert not caplog.records
    assert ("fraud-error_rate_above", "fraud", "2") in evaluator.statuses
