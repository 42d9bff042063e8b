"""`seaway batch schedule` and `seaway scheduler` as a user runs them: real `python -m seaway`
processes against the fixture's registry (SQLite, and PostgreSQL where it is configured)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.registry import Registry


def seaway_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The CLI against the fixture's registry (the `registry` fixture exports its URL)."""
    done = subprocess.run(
        [sys.executable, "-m", "seaway", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def model(registry: Registry, tabular: tuple[pd.DataFrame, np.ndarray]) -> str:
    frame, target = tabular
    seaway.log_model(
        LogisticRegression().fit(frame, target),
        "fraud",
        sample_input=frame.head(),
        registry=registry,
    )
    registry.set_alias("fraud", "production", 1)
    return "models:/fraud@production"


CREATE = ("batch", "schedule", "create")


def test_create_list_delete(registry: Registry, model: str) -> None:
    made = seaway_cli(
        *(*CREATE, "nightly", "--cron", "0 2 * * *", "--model", model),
        *("--input", "data/{date}/", "--output", "preds/{date}/", "--timezone", "Europe/Paris"),
        *("--keep", "id", "--proba", "--workers", "1", "--format", "csv", "--json"),
    )
    created = json.loads(made.stdout)
    assert (created["name"], created["cron"], created["timezone"]) == (
        "nightly",
        "0 2 * * *",
        "Europe/Paris",
    )
    assert created["params"]["keep"] == ["id"] and created["params"]["proba"] is True
    assert created["params"]["output_format"] == "csv" and created["params"]["workers"] == 1
    next_run = datetime.fromisoformat(created["next_run"]).astimezone(ZoneInfo("Europe/Paris"))
    assert (next_run.hour, next_run.minute) == (2, 0)
    seaway_cli(
        *(*CREATE, "weekly", "--cron", "@weekly", "--model", "models:/fraud/1"),
        *("--input", "data/all.parquet", "--output", "preds/weekly/{date}", "--disabled"),
    )

    listed = json.loads(seaway_cli("batch", "schedule", "list", "--json").stdout)
    assert [(s["name"], s["enabled"], s["last_occurrence"]) for s in listed] == [
        ("nightly", True, None),
        ("weekly", False, None),
    ]
    assert listed[0]["next_run"] == created["next_run"] and listed[1]["next_run"] is None
    shown = seaway_cli("batch", "schedule", "list").stdout
    assert "nightly" in shown and "Europe/Paris" in shown and "disabled" in shown

    once = seaway_cli("scheduler", "--once")  # nothing is due right after creation
    assert "Nothing was due." in once.stderr

    deleted = seaway_cli("batch", "schedule", "delete", "nightly")
    assert "Deleted schedule nightly" in deleted.stderr
    listed = json.loads(seaway_cli("batch", "schedule", "list", "--json").stdout)
    assert [s["name"] for s in listed] == ["weekly"]
    again = seaway_cli("batch", "schedule", "delete", "nightly", check=False)
    assert again.returncode == 1 and "no batch schedule 'nightly'" in again.stderr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"--cron": "0 25 * * *"}, "the hour field '25' is not valid"),
        ({"--timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"--output": "preds/"}, "same folder for two runs"),
        ({"--input": "data/{day}/"}, "unknown placeholder"),
        ({"--model": "models:/nope@production"}, "nope"),
        ({"--model": "./package"}, "not a model URI"),
        ({"--workers": "0"}, "--workers must be at least 1"),
    ],
)
def test_create_refuses_with_the_reason(
    registry: Registry, model: str, changes: dict[str, str], message: str
) -> None:
    options = {
        "--cron": "0 2 * * *",
        "--model": model,
        "--input": "data/{date}/",
        "--output": "preds/{date}/",
        **changes,
    }
    done = seaway_cli(
        *CREATE, "nightly", *[part for pair in options.items() for part in pair], check=False
    )
    assert done.returncode == 1, done.stderr
    assert message in done.stderr.replace("\n", " ")
    assert "Traceback" not in done.stderr
    assert registry.schedules.list() == []


def test_a_name_is_taken_once(registry: Registry, model: str) -> None:
    args = (*CREATE, "nightly", "--cron", "@daily", "--model", model)
    args += ("--input", "data/", "--output", "preds/{date}")
    seaway_cli(*args)
    done = seaway_cli(*args, check=False)
    assert done.returncode == 1 and "exists already" in done.stderr
