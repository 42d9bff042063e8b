"""`seaway serve` refuses what it cannot serve before it starts anything: one `Error:` line, exit
code 1, no log line and no traceback first (unknown models, a name without `models:/`, a missing
folder, a taken port), with the hints batch gives."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from test_cli import seaway_cli

import seaway
from seaway.serving import preflight
from seaway.serving.config import ServeConfig


@pytest.fixture
def churn(seaway_home: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> str:
    frame, target = tabular
    with seaway.Registry.from_settings() as registry:
        seaway.log_model(
            LogisticRegression().fit(frame, target),
            "churn",
            sample_input=frame.head(),
            registry=registry,
        )
        registry.set_alias("churn", "production", 1)
    return "churn"


@pytest.fixture
def package_folder(tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> Path:
    frame, target = tabular
    model = LogisticRegression().fit(frame, target)
    return seaway.save_model(model, tmp_path / "fraud", sample_input=frame.head()).path


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _refused(*args: str, home: Path) -> str:
    """The one error line of a serve that must not start (ports free unless the test says)."""
    ports = ["--port", str(_free_port()), "--grpc-port", str(_free_port())]
    done = seaway_cli("serve", *args, *ports, home=home, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert "Traceback" not in done.stderr
    assert not any(line.lstrip().startswith("{") for line in lines), "a log line came first"
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    return lines[0]


def test_an_unknown_model_is_one_error_line(churn: str, seaway_home: Path) -> None:
    line = _refused("models:/chrun@production", home=seaway_home)
    assert "'chrun'" in line and "churn" in line  # names the registered ones


def test_an_unknown_alias_says_how_to_set_it(churn: str, seaway_home: Path) -> None:
    line = _refused("models:/churn@staging", home=seaway_home)
    assert "seaway models alias churn staging" in line


@pytest.mark.parametrize(
    ("given", "suggested"),
    [("churn", "models:/churn@ALIAS"), ("churn@production", "models:/churn@production")],
)
def test_a_name_without_the_scheme_gets_the_uri_hint(
    churn: str, seaway_home: Path, given: str, suggested: str
) -> None:
    line = _refused(given, home=seaway_home)
    assert f"{given} does not exist" in line and suggested in line


def test_batch_gives_the_same_hint(churn: str, seaway_home: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("a\n1\n")
    done = seaway_cli(
        "batch", "run", "churn", "--input", str(rows), "--output", str(tmp_path / "out"),
        home=seaway_home, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "to use a registered model, name it by URI: models:/churn@ALIAS" in done.stderr


@pytest.mark.parametrize("flag", ["--port", "--grpc-port"])
def test_a_taken_port_is_one_error_line(
    churn: str, seaway_home: Path, taken_port: int, flag: str
) -> None:
    ports = {"--port": str(_free_port()), "--grpc-port": str(_free_port()), flag: str(taken_port)}
    done = seaway_cli(
        "serve", "models:/churn@production", *[x for kv in ports.items() for x in kv],
        home=seaway_home, check=False,
    )  # fmt: skip
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 1
    assert lines == [
        f"Error: cannot listen on 127.0.0.1:{taken_port} ({flag}): Address already in use; "
        "the port is taken or the address is not this machine's"
    ]


def test_the_checks_pass_what_can_be_served_and_hold_no_port(
    churn: str, seaway_home: Path, package_folder: Path
) -> None:
    port, grpc_port = _free_port(), _free_port()
    config = ServeConfig.load(
        None,
        {
            "models": ["models:/churn@production", "models:/churn/1", str(package_folder)],
            "port": port,
            "grpc_port": grpc_port,
        },
    )
    with seaway.Registry.from_settings() as registry:
        preflight.check(config, registry)
    for free in (port, grpc_port):  # released: the server binds them next
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", free))


def test_a_folder_without_a_package_says_so(seaway_home: Path, tmp_path: Path) -> None:
    line = _refused(str(tmp_path), home=seaway_home)
    assert "is not a Seaway package: it has no manifest.json" in line
