"""What the CLI prints, as a user running it in a shell or a pipe sees it: messages as written (no
Rich markup eaten), usage lines with Click's PATH, and tables whose identifiers stay on one line
whatever the width."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import seaway

LONG_NAME = "fraud-scoring-model-for-the-risk-team-trained-on-last-quarter"


def run_cli(
    *args: str, home: Path, python: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI with stdout a pipe and COLUMNS unset, as in ``seaway ... | grep``."""
    environ = {**os.environ, "SEAWAY_HOME": str(home), **(env or {})}
    environ.pop("COLUMNS", None)
    environ.pop("SEAWAY_REGISTRY_URL", None)
    command = [sys.executable, "-m", "seaway"] if python is None else [sys.executable, "-c", python]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=environ, timeout=120
    )


def test_an_install_hint_keeps_its_extra(seaway_home: Path) -> None:
    # s3fs made unimportable: the artifact store's error names the extra, in square brackets
    block_s3fs = "import sys; sys.modules['s3fs'] = None; from seaway.cli.main import run; run()"
    done = run_cli(
        "--artifact-root", "s3://bucket/artifacts", "models", "list", home=seaway_home,
        python=block_s3fs,
    )  # fmt: skip
    assert done.returncode == 1
    assert "pip install 'seaway[s3]'" in done.stderr, done.stderr
    assert done.stderr.startswith("Error: ")


def test_usage_names_arguments_as_click_does(seaway_home: Path) -> None:
    done = run_cli("models", "register", home=seaway_home)
    assert done.returncode == 2
    assert "Usage: seaway models register [OPTIONS] PATH\n" in done.stderr, done.stderr
    assert "Missing argument 'PATH'" in done.stderr
    helped = run_cli("models", "alias", "--help", home=seaway_home)
    assert "seaway models alias [OPTIONS] NAME ALIAS [VERSION]" in helped.stdout, helped.stdout
    for command in (["models", "show"], ["models", "import-mlflow"], ["predict"]):
        usage = run_cli(*command, "--help", home=seaway_home).stdout
        assert "{" not in usage.split("\n\n")[0] + usage.splitlines()[1], usage


def test_a_bad_choice_reads_without_pydantic_prefix(seaway_home: Path) -> None:
    done = run_cli("keys", "create", "--scope", "root", home=seaway_home)
    assert done.returncode == 2
    assert "Invalid value for '--scope': 'root' is not one of 'predict', 'admin'" in done.stderr
    assert "Value error" not in done.stderr


@pytest.fixture
def long_rows(seaway_home: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> str:
    """A model with a long name and description, and a batch job record; returns the job id."""
    frame, target = tabular
    with seaway.Registry.from_settings() as registry:
        seaway.log_model(
            LogisticRegression().fit(frame, target),
            LONG_NAME,
            sample_input=frame.head(),
            description="logistic regression over age, income, score and tenure, weekly retrain",
            registry=registry,
        )
        job = registry.jobs.create(
            model_uri=f"models:/{LONG_NAME}/1",
            model_name=LONG_NAME,
            model_version=1,
            input=str(seaway_home / "a" / "long" / "path" / "to" / "the" / "input.parquet"),
            output=str(seaway_home / "a" / "long" / "path" / "to" / "the" / "output"),
            params={},
        )
    return job.job_id


def test_tables_in_a_pipe_keep_identifiers_on_one_line(seaway_home: Path, long_rows: str) -> None:
    listed = run_cli("models", "list", home=seaway_home)
    assert listed.returncode == 0, listed.stderr
    assert any(LONG_NAME in line for line in listed.stdout.splitlines()), listed.stdout

    jobs = run_cli("batch", "list", home=seaway_home)
    assert jobs.returncode == 0, jobs.stderr
    lines = jobs.stdout.splitlines()
    row = [line for line in lines if long_rows in line]
    assert len(row) == 1 and f"{LONG_NAME}/1" in row[0], jobs.stdout
    assert all(line == line.rstrip() for line in lines)  # no padding for grep and cut

    shown = run_cli("models", "show", f"{LONG_NAME}/1", home=seaway_home)
    assert any(f"models:/{LONG_NAME}/1" in line for line in shown.stdout.splitlines())
    model = run_cli("models", "show", LONG_NAME, home=seaway_home)
    assert model.stdout.splitlines()[0] == f"Model {LONG_NAME}", model.stdout  # a title too


def test_identifier_columns_never_wrap_on_a_narrow_terminal(
    long_rows: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    from seaway.cli import output

    narrow = Console(width=60, force_terminal=True, color_system=None)
    monkeypatch.setattr(output, "console", narrow)
    row = [long_rows, f"{LONG_NAME}/1", "x " * 40]
    output.table("Batch jobs", ["job", "model", "notes"], [row], identifiers=("job", "model"))
    printed = capsys.readouterr().out
    assert long_rows in printed and LONG_NAME in printed, printed
    assert printed.splitlines()[1].split()[:2] == [long_rows, f"{LONG_NAME}/1"], printed

    monkeypatch.setattr(output, "console", Console(width=120, force_terminal=True))
    output.table("Batch jobs", ["job", "model", "notes"], [row], identifiers=("job", "model"))
    boxed = capsys.readouterr().out
    assert any(long_rows in line and f"{LONG_NAME}/1" in line for line in boxed.splitlines())


def test_read_only_commands_leave_no_registry_behind(tmp_path: Path) -> None:
    home = tmp_path / "empty" / ".seaway"
    for args, expected in [
        (["models", "list"], "No models registered yet"),
        (["models", "list", "--json"], "[]"),
        (["keys", "list"], "No API keys"),
        (["batch", "list"], "No batch jobs yet"),
        (["batch", "schedule", "list"], "No schedules yet"),
        (["registry", "status"], "no Seaway schema yet"),
    ]:
        done = run_cli(*args, home=home)
        assert done.returncode == 0 and expected in done.stdout, (args, done.stderr)
    missing = run_cli("models", "show", "fraud", home=home)
    assert missing.returncode == 1 and "no model named 'fraud'" in missing.stderr
    assert not home.exists() and not home.parent.exists()


def test_gc_json(seaway_home: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, target = tabular
    package = seaway.save_model(
        LogisticRegression().fit(frame, target), seaway_home.parent / "pkg", sample_input=frame
    )
    with seaway.Registry.from_settings() as registry:
        registry.register(package.path, "fraud")
        orphan = registry.store.upload(package.path, "fraud")  # as a crashed registration leaves
    done = run_cli("models", "gc", "--older-than", "0", "--json", home=seaway_home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"removed": [orphan]}
    again = run_cli("models", "gc", "--older-than", "0", "--json", home=seaway_home)
    assert json.loads(again.stdout) == {"removed": []}
