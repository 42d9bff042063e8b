"""Helpers for tests of deployments on real ``seaway serve --deployment`` processes: the CLI as a
user runs it (in this process, on the same registry), what a server serves now, and waiting for a
condition with a deadline (never a fixed sleep).

Which revision a server serves is read from the deployment's metadata
(``GET /v2/models/{name}``: ``versions`` lists the arms of the route it publishes), so tests
switch to a split with a version the last one did not have, and know the moment it is followed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from servers import Server

from seaway.cli.main import main

T = TypeVar("T")

#: every server of these tests looks at the registry this often (seconds)
POLL = "0.2"
#: the longest any condition is waited for: a bound for a broken server, not a timing
DEADLINE = 60.0


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``seaway ARGS`` in this process: exit code, stdout, stderr."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def apply(capsys: pytest.CaptureFixture[str], folder: Path, doc: dict[str, Any]) -> str:
    """``seaway deploy apply`` of ``doc`` (written as YAML); its output. Fails unless it applied."""
    path = folder / f"deploy-{time.monotonic_ns()}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, out, err = cli(capsys, "deploy", "apply", str(path))
    assert code == 0, err
    return out


def history(capsys: pytest.CaptureFixture[str], name: str) -> dict[str, Any]:
    """``seaway deploy history NAME --decisions --json``."""
    code, out, err = cli(capsys, "deploy", "history", name, "--decisions", "--json")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def serving(server: Server, name: str, key: str | None = None) -> list[str]:
    """The versions ``server`` routes ``name``'s traffic to now ([] while it serves none);
    ``key``: the API key to ask with."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    answer = httpx.get(f"{server.url}/v2/models/{name}", headers=headers, timeout=10)
    if answer.status_code != 200:
        return []
    return sorted(answer.json()["versions"], key=int)


def wait_until(condition: Callable[[], T | None], what: str, *, server: Server | None = None) -> T:
    """``condition()``'s first truthy value, checked until ``DEADLINE`` (then the test fails,
    showing the end of the server's log)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = server.output()[-4000:] if server is not None else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.05)


def tolerance(n: int, p: float, z: float = 5.0) -> float:
    """How far a binomial count of ``n`` draws at ``p`` may stray from ``n * p`` (``z`` standard
    deviations: a correct split fails this about once in millions of runs)."""
    return float(z * (n * p * (1 - p)) ** 0.5)
