"""The CLI as a user runs it: a real `python -m seaway` process against a fresh home."""

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

REPO = Path(__file__).resolve().parents[2]


def seaway_cli(*args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEAWAY_HOME": str(home), "COLUMNS": "200"}
    env.pop("SEAWAY_REGISTRY_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "seaway", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def package(tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> Path:
    frame, target = tabular
    return seaway.save_model(
        LogisticRegression().fit(frame, target), tmp_path / "pkg", sample_input=frame.head()
    ).path


def test_register_list_show_alias_delete(package: Path, seaway_home: Path) -> None:
    out = seaway_cli(
        "models",
        "register",
        str(package),
        "--name",
        "fraud",
        "--tag",
        "team=risk",
        "--metric",
        "auc=0.9",
        "-d",
        "first",
        "--json",
        home=seaway_home,
    )
    assert json.loads(out.stdout)["uri"] == "models:/fraud/1"
    seaway_cli(
        "models",
        "register",
        str(package),
        "--name",
        "fraud",
        "--alias",
        "staging",
        home=seaway_home,
    )
    seaway_cli("models", "alias", "fraud", "production", "1", home=seaway_home)

    listed = json.loads(seaway_cli("models", "list", "--json", home=seaway_home).stdout)
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in listed] == [
        ("fraud", 2, {"production": 1, "staging": 2})
    ]
    shown = json.loads(
        seaway_cli("models", "show", "fraud@production", "--json", home=seaway_home).stdout
    )
    assert (shown["version"], shown["tags"], shown["metrics"], shown["description"]) == (
        1,
        {"team": "risk"},
        {"auc": 0.9},
        "first",
    )
    assert [s["name"] for s in shown["signature"]["inputs"]] == ["age", "income", "score", "tenure"]
    model = json.loads(seaway_cli("models", "show", "fraud", "--json", home=seaway_home).stdout)
    assert [v["version"] for v in model["versions"]] == [1, 2]

    table = seaway_cli("models", "show", "fraud/2", home=seaway_home).stdout
    assert "models:/fraud/2" in table and "staging" in table and "income" in table

    refused = seaway_cli("models", "delete", "fraud/1", home=seaway_home, check=False)
    assert refused.returncode == 1
    assert "production" in refused.stderr and "--force" in refused.stderr
    seaway_cli("models", "delete", "fraud/1", "--force", home=seaway_home)
    listed = json.loads(seaway_cli("models", "list", "--json", home=seaway_home).stdout)
    assert listed[0]["version_count"] == 1


def test_register_an_onnx_file(tmp_path: Path, seaway_home: Path, tabular) -> None:
    from skl2onnx import to_onnx

    frame, target = tabular
    x = frame.to_numpy(dtype=np.float32)
    clf = LogisticRegression().fit(x, target)
    onnx_file = tmp_path / "clf.onnx"
    onnx_file.write_bytes(
        to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}}).SerializeToString()
    )
    seaway_cli("models", "register", str(onnx_file), "--name", "clf-onnx", home=seaway_home)
    model = seaway.load_model("models:/clf-onnx/1")
    assert model.flavor == "onnx"
    np.testing.assert_array_equal(model.predict(x), clf.predict(x))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "show", "nope"], "no model named 'nope'"),
        (["models", "show", "fraud/0"], "positive integer"),
        (["models", "alias", "nope", "production", "1"], "no model named 'nope'"),
        (["models", "delete", "fraud@production"], "not an alias"),
        (["models", "register", "/does/not/exist", "--name", "x"], "does not exist"),
        (["models", "register", "README.md", "--name", "x"], "an .onnx file"),
        (["models", "register", ".", "--name", "x", "--metric", "auc=high"], "must be a number"),
        (
            ["--registry-url", "postgresql+psycopg://u@127.0.0.1:1/db", "models", "list"],
            "cannot use the registry database",
        ),
        (["--registry-url", "nonsense", "models", "list"], "not a database URL"),
        (
            ["--registry-url", "postgres://u@127.0.0.1:1/db", "models", "list"],
            "write PostgreSQL URLs as postgresql+psycopg://u@127.0.0.1:1/db",
        ),
        (["models", "import-mlflow", "/does/not/exist", "--name", "x"], "does not exist"),
    ],
)
def test_bad_input_gets_one_clear_line_not_a_traceback(
    seaway_home: Path, args: list[str], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "seaway", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "SEAWAY_HOME": str(seaway_home), "COLUMNS": "200"},
    )
    assert done.returncode in (1, 2)
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_the_demo_runs(tmp_path: Path) -> None:
    env = {**os.environ, "SEAWAY_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "demo.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "Registered models:/demo-fraud/1" in done.stdout
    assert "fraud:" in done.stdout and "probability:" in done.stdout
    assert "rows, columns ['id', 'predict', 'predict_proba_0', 'predict_proba_1'" in done.stdout
    # the canary: version 2 on 10% of a deployment's traffic, and its results per version
    assert "Traffic: 1:90 2:10" in done.stdout
    assert "demo-fraud-live revision 1 (canary), 1 server(s)" in done.stdout


def test_import_mlflow_records_the_folder_as_its_origin_not_training_data(
    tmp_path: Path, seaway_home: Path, tabular
) -> None:
    import pickle

    import yaml

    frame, target = tabular
    src = tmp_path / "mlflow-model"
    src.mkdir()
    (src / "model.pkl").write_bytes(pickle.dumps(LogisticRegression().fit(frame, target)))
    flavors = {
        "python_function": {"loader_module": "mlflow.sklearn", "model_path": "model.pkl"},
        "sklearn": {"pickled_model": "model.pkl", "serialization_format": "pickle"},
    }
    (src / "MLmodel").write_text(yaml.safe_dump({"flavors": flavors}))

    out = seaway_cli("models", "import-mlflow", str(src), "--name", "imported", "--json",
                     home=seaway_home)  # fmt: skip
    lineage = json.loads(out.stdout)["lineage"]
    assert "training_data" not in lineage
    assert lineage["imported_from"] == str(src)
    shown = seaway_cli("models", "show", "imported/1", home=seaway_home).stdout
    assert "imported from" in shown and "training data" in shown
