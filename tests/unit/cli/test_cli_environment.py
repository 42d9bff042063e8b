"""Unknown SEAWAY_* variables warn; every name Seaway reads (in code or docs) is known."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from seaway.cli.environment import known_variables, unknown_variable_warnings
from seaway.cli.main import command

REPO = Path(__file__).resolve().parents[3]
NAME = re.compile(r"\bSEAWAY_[A-Z0-9_]*[A-Z0-9]\b")
#: misspelt on purpose, where the docs show the warning
MISSPELT = {"SEAWAY_REGSITRY_URL"}


def test_a_misspelt_variable_warns_with_the_name_it_resembles() -> None:
    lines = unknown_variable_warnings({"SEAWAY_REGSITRY_URL": "sqlite:///x.db"}, command())
    assert lines == [
        "Warning: SEAWAY_REGSITRY_URL is not a Seaway variable and is ignored; "
        "did you mean SEAWAY_REGISTRY_URL?"
    ]
    assert unknown_variable_warnings({"SEAWAY_NOTHING_LIKE_IT": "1"}, command()) == [
        "Warning: SEAWAY_NOTHING_LIKE_IT is not a Seaway variable and is ignored"
    ]


def test_every_name_seaway_reads_or_documents_is_known() -> None:
    sources = [*(REPO / "seaway").rglob("*.py"), *(REPO / "docs").glob("*.md"), REPO / "README.md"]
    found = {name for path in sources for name in NAME.findall(path.read_text(encoding="utf-8"))}
    found -= MISSPELT
    assert {"SEAWAY_API_KEY", "SEAWAY_REPLICA_START", "SEAWAY_SERVE_PORT"} <= found
    environ = {name: "1" for name in found | {"SEAWAY_TEST_POSTGRES_URL", "SEAWAY_TEST_GATE"}}
    assert unknown_variable_warnings(environ, command()) == []
    assert found - {n for n in found if n.startswith("SEAWAY_TEST_")} <= known_variables(command())


def test_the_cli_warns_on_stderr_and_still_runs(tmp_path: Path) -> None:
    env = {**os.environ, "SEAWAY_HOME": str(tmp_path / "home"), "SEAWAY_REGSITRY_URL": "x"}
    done = subprocess.run(
        [sys.executable, "-m", "seaway", "models", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
    assert "SEAWAY_REGSITRY_URL is not a Seaway variable" in done.stderr
    assert "did you mean SEAWAY_REGISTRY_URL?" in done.stderr
