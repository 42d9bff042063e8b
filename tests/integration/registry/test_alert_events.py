"""Alert events in the registry (issue 11, item 5), on SQLite and PostgreSQL: recorded with ids,
listed newest first and filtered, the alerts firing now, and migration 0005 matching the table."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from seaway.cli.main import main
from seaway.errors import InvalidInputError
from seaway.registry import Registry
from seaway.registry import tables as t
from seaway.registry.alerts import AlertEvent

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _event(
    rule: str,
    state: str,
    minutes: int,
    *,
    model: str = "fraud",
    version: str = "1",
    value: float | None = 0.2,
) -> AlertEvent:
    return AlertEvent(
        rule=rule,
        model=model,
        version=version,
        state=state,  # type: ignore[arg-type]
        value=value,
        threshold=0.05,
        message=f"{rule} {state}",
        time=T0 + timedelta(minutes=minutes),
        kind="error_rate_above",
        severity="critical",
    )


def test_events_are_recorded_listed_and_filtered(registry: Registry) -> None:
    recorded = registry.alerts.record(
        [
            _event("errors", "firing", 0),
            _event("errors", "resolved", 10, value=0.01),
            _event("latency", "firing", 5, model="churn", version="2", value=math.nan),
        ]
    )
    assert [e.id for e in recorded] == sorted({e.id for e in recorded if e.id is not None})
    listed = registry.alerts.list()
    assert [(e.rule, e.state) for e in listed] == [
        ("errors", "resolved"),
        ("latency", "firing"),
        ("errors", "firing"),
    ]
    first = listed[-1]
    assert first == recorded[0]  # what was stored comes back whole, times in UTC
    assert first.time == T0 and first.time.tzinfo is not None
    assert listed[1].value is None  # NaN is kept as null, on both databases
    assert first.to_dict()["time"] == T0.isoformat()

    assert [e.rule for e in registry.alerts.list(model="churn")] == ["latency"]
    assert [e.state for e in registry.alerts.list(rule="errors", version="1")] == [
        "resolved",
        "firing",
    ]
    assert len(registry.alerts.list(since=T0 + timedelta(minutes=5))) == 2
    assert len(registry.alerts.list(limit=1)) == 1


def test_firing_now_is_the_latest_event_of_each_alert(registry: Registry) -> None:
    assert registry.alerts.firing() == []
    registry.alerts.record(
        [_event("errors", "firing", 0), _event("errors", "firing", 1, version="2")]
    )
    registry.alerts.record([_event("errors", "resolved", 2)])
    registry.alerts.record([_event("latency", "firing", 3, model="churn")])
    firing = registry.alerts.firing()
    assert [(e.rule, e.model, e.version) for e in firing] == [
        ("latency", "churn", "1"),
        ("errors", "fraud", "2"),
    ]
    assert [e.rule for e in registry.alerts.firing(model="fraud")] == ["errors"]
    registry.alerts.record([_event("errors", "firing", 4)])  # fired again
    assert len(registry.alerts.firing(model="fraud")) == 2


def test_a_bad_state_is_refused(registry: Registry) -> None:
    with pytest.raises(InvalidInputError, match="firing or resolved"):
        registry.alerts.record([_event("errors", "pending", 0)])
    assert registry.alerts.list() == []  # nothing half-written


def test_the_migration_makes_the_table_the_code_declares(registry: Registry) -> None:
    engine = registry._engine
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        differences = [
            d for d in compare_metadata(context, t.metadata) if "seaway_alert_events" in repr(d)
        ]
    assert differences == []


def test_seaway_monitor_alerts_lists_events_and_firing_alerts(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    old = _event("errors", "firing", 0)
    registry.alerts.record(
        [
            AlertEvent(**{**old.__dict__, "time": now - timedelta(days=10)}),
            AlertEvent(**{**old.__dict__, "time": now - timedelta(hours=2)}),
            AlertEvent(**{**old.__dict__, "state": "resolved", "time": now - timedelta(hours=1)}),
            AlertEvent(**{**old.__dict__, "rule": "latency", "model": "churn", "time": now}),
        ]
    )
    assert main(["monitor", "alerts", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["rule"], e["state"]) for e in listed] == [
        ("latency", "firing"),
        ("errors", "resolved"),
        ("errors", "firing"),
    ]  # the one 10 days old is before the default 7d
    assert main(["monitor", "alerts", "--since", "90m", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["monitor", "alerts", "--firing", "--json"]) == 0
    assert [e["rule"] for e in json.loads(capsys.readouterr().out)] == ["latency"]
    assert main(["monitor", "alerts", "--model", "fraud", "--firing"]) == 0
    assert "No alert firing now for fraud." in capsys.readouterr().out
    assert main(["monitor", "alerts", "--model", "fraud"]) == 0
    table = capsys.readouterr().out
    assert "resolved" in table and "fraud/1" in table and "latency" not in table
    assert max(len(line) for line in table.splitlines()) <= 80
    assert main(["monitor", "alerts", "--since", "last week"]) == 1
    assert "Error: --since 'last week' is neither a duration" in capsys.readouterr().err
