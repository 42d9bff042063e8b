"""Who registered a version, from which code, trained on what: recorded with every version."""

from __future__ import annotations

import getpass
import os
import subprocess
from pathlib import Path
from typing import Any


def collect_lineage(training_data: str | None = None, cwd: Path | None = None) -> dict[str, Any]:
    lineage: dict[str, Any] = {"user": current_user()}
    git = _git_state(cwd or Path.cwd())
    if git:
        lineage["git"] = git
    if training_data:
        lineage["training_data"] = training_data
    return lineage


def current_user() -> str | None:
    """The operating-system user running this process, recorded as who made a change."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return os.environ.get("USER")


def _git_state(cwd: Path) -> dict[str, Any] | None:
    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    if commit is None:
        return None
    status = run("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "dirty": bool(status),
        "branch": run("rev-parse", "--abbrev-ref", "HEAD"),
    }
