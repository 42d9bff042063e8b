"""`seaway.Client` and `seaway predict` against a real server, as a user calls them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from servers import Server, free_port, start_server
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.errors import InvalidInputError, ModelUnavailableError, NotFoundError, SeawayError


@dataclass
class Served:
    server: Server
    first: LogisticRegression
    second: LogisticRegression
    frame: pd.DataFrame


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """fraud/1 (alias production, the default) and fraud/2 predict opposite classes."""
    root = tmp_path_factory.mktemp("client")
    home = root / "home"
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(rng.normal(size=(100, 4)), columns=["age", "income", "score", "tenure"])
    target = ((frame["age"] - frame["income"]) > 0).astype(np.int64).to_numpy()
    first = LogisticRegression().fit(frame, target)
    second = LogisticRegression().fit(frame, 1 - target)
    with seaway.Registry.from_settings(seaway.Settings.resolve(home=home)) as registry:
        seaway.log_model(first, "fraud", sample_input=frame.head(5), registry=registry)
        seaway.log_model(second, "fraud", sample_input=frame.head(5), registry=registry)
        registry.set_alias("fraud", "production", 1)
    server = start_server(["models:/fraud@production", "models:/fraud/2"], home, root / "log")
    yield Served(server, first, second, frame)
    server.stop(signal.SIGKILL)


@pytest.fixture
def client(served: Served) -> Iterator[seaway.Client]:
    with seaway.Client(served.server.url, timeout=30) as client:
        yield client


# ---- seaway.Client ------------------------------------------------------------------------------


def test_predict_with_a_dataframe(client: seaway.Client, served: Served) -> None:
    rows = served.frame.head(8)
    np.testing.assert_array_equal(client.predict("fraud", rows), served.first.predict(rows))


def test_predict_with_a_dict_of_columns(client: seaway.Client, served: Served) -> None:
    rows = served.frame.iloc[10:17]
    columns = {name: rows[name].to_numpy() for name in rows.columns}
    np.testing.assert_array_equal(client.predict("fraud", columns), served.first.predict(rows))
    as_lists = {name: rows[name].tolist() for name in rows.columns}
    np.testing.assert_array_equal(client.predict("fraud", as_lists), served.first.predict(rows))


def test_predict_with_a_2d_array(client: seaway.Client, served: Served) -> None:
    rows = served.frame.iloc[20:25]
    np.testing.assert_array_equal(
        client.predict("fraud", rows.to_numpy()), served.first.predict(rows)
    )
    one = served.frame.iloc[[30]]
    np.testing.assert_array_equal(
        client.predict("fraud", one.to_numpy()), served.first.predict(one)
    )


def test_predict_proba(client: seaway.Client, served: Served) -> None:
    rows = served.frame.head(6)
    proba = client.predict_proba("fraud", rows)
    assert proba.shape == (6, 2)
    np.testing.assert_allclose(proba, served.first.predict_proba(rows))


def test_version_pins_the_answering_version(client: seaway.Client, served: Served) -> None:
    rows = served.frame.head(10)
    np.testing.assert_array_equal(
        client.predict("fraud", rows, version=2), served.second.predict(rows)
    )
    np.testing.assert_array_equal(
        client.predict("fraud", rows, version="1"), served.first.predict(rows)
    )
    np.testing.assert_allclose(
        client.predict_proba("fraud", rows, version=2), served.second.predict_proba(rows)
    )
    both = client.predict("fraud", rows, outputs=["predict", "predict_proba"])
    np.testing.assert_array_equal(both["predict"], served.first.predict(rows))
    np.testing.assert_allclose(both["predict_proba"], served.first.predict_proba(rows))


def test_unknown_model_and_version_raise_not_found(client: seaway.Client, served: Served) -> None:
    rows = served.frame.head(2)
    with pytest.raises(NotFoundError) as info:
        client.predict("nope", rows)
    assert "'nope'" in str(info.value) and "fraud" in str(info.value)  # the server's message
    with pytest.raises(NotFoundError) as info:
        client.predict("fraud", rows, version=9)
    assert "'9'" in str(info.value)


def test_bad_input_raises_invalid_input_with_the_servers_message(
    client: seaway.Client, served: Served
) -> None:
    rows = served.frame.head(3)
    with pytest.raises(InvalidInputError) as info:
        client.predict("fraud", rows.drop(columns=["income"]))
    assert "income" in str(info.value)
    with pytest.raises(InvalidInputError) as info:
        client.predict("fraud", rows.to_numpy()[:, :3])  # a column short
    assert "4" in str(info.value) or "income" in str(info.value) or "tenure" in str(info.value)
    text = rows.astype(str).assign(age="old")
    with pytest.raises(InvalidInputError) as info:
        client.predict("fraud", text)
    assert "age" in str(info.value)
    assert isinstance(info.value, SeawayError)


def test_live_and_ready(client: seaway.Client) -> None:
    assert client.live() is True
    assert client.ready() is True
    assert client.ready("fraud") is True
    assert client.ready("fraud", 2) is True
    assert client.metadata("fraud")["name"] == "fraud"


def test_an_unreachable_server_raises_a_seaway_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with seaway.Client(url, timeout=5) as client, pytest.raises(ModelUnavailableError) as info:
        client.predict("fraud", np.zeros((1, 4)))
    assert url in str(info.value)


# ---- seaway predict -----------------------------------------------------------------------------


def _predict_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SEAWAY_URL", "SEAWAY_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "seaway", "predict", *args, "--timeout", "30"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _write(path: Path, rows: pd.DataFrame, kind: str) -> Path:
    if kind == "records":
        path.write_text(json.dumps(rows.to_dict("records")))
    elif kind == "columns":
        path.write_text(json.dumps({c: rows[c].tolist() for c in rows.columns}))
    elif kind == "rows":
        path.write_text(json.dumps(rows.to_numpy().tolist()))
    else:
        rows.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("kind", "suffix"),
    [("records", ".json"), ("columns", ".json"), ("rows", ".json"), ("csv", ".csv")],
)
def test_cli_predict_prints_the_models_predictions(
    served: Served, tmp_path: Path, kind: str, suffix: str
) -> None:
    rows = served.frame.iloc[40:47]
    data = _write(tmp_path / f"inputs{suffix}", rows, kind)
    result = _predict_cli("fraud", "--data", str(data), "--url", served.server.url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"predictions": served.first.predict(rows).tolist()}


def test_cli_predict_with_a_version_and_probabilities(served: Served, tmp_path: Path) -> None:
    rows = served.frame.iloc[50:54]
    data = _write(tmp_path / "inputs.json", rows, "records")
    pinned = _predict_cli("fraud/2", "--data", str(data), "--url", served.server.url)
    assert pinned.returncode == 0, pinned.stderr
    assert json.loads(pinned.stdout) == {"predictions": served.second.predict(rows).tolist()}
    proba = _predict_cli("fraud", "--data", str(data), "--url", served.server.url, "--proba")
    assert proba.returncode == 0, proba.stderr
    np.testing.assert_allclose(
        json.loads(proba.stdout)["predictions"], served.first.predict_proba(rows)
    )


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.json", None, "missing.json"),
        ("broken.json", '{"age": [1.0, 2.0', "JSON"),
        ("scalar.json", '"hello"', "records"),
        ("empty.csv", "", "empty.csv"),
        ("wrong.csv", "height,weight\n1.0,2.0\n", "age"),  # the server names what is missing
    ],
)
def test_cli_predict_with_a_bad_file_fails_cleanly(
    served: Served, tmp_path: Path, name: str, content: str | None, fragment: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    result = _predict_cli("fraud", "--data", str(path), "--url", served.server.url)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert "Error" in result.stderr and fragment in result.stderr, result.stderr
    assert result.stdout.strip() == ""


def test_cli_predict_for_an_unknown_model_names_it(served: Served, tmp_path: Path) -> None:
    data = _write(tmp_path / "inputs.csv", served.frame.head(2), "csv")
    result = _predict_cli("nope", "--data", str(data), "--url", served.server.url)
    assert result.returncode != 0
    assert "'nope'" in result.stderr and "Traceback" not in result.stderr, result.stderr
