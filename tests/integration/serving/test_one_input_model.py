"""One input model everywhere: the same rows are accepted or refused alike, with the same one-line
reason, by every entry point: ``Model.predict`` (DataFrame and records), ``seaway.Client``
(DataFrame and records), ``seaway predict``, REST V2, gRPC, ``/invocations`` and a batch run.

The model takes missing values in some inputs and not in others, as ``log_model`` found out from
the live model: ``age`` goes through an imputer (NaN accepted), ``income`` straight to a
LogisticRegression (NaN refused), ``city`` to a one-hot encoder that ignores unknown values (None
accepted) and ``plan`` to one that refuses them (None refused). No rows is refused everywhere a
request is made; a batch over an empty file scores nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as triton_grpc
from servers import Server, start_server
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from tritonclient.utils import InferenceServerException

import seaway
from seaway.batch import BatchOptions, run_job
from seaway.errors import InvalidInputError

NUMERIC = ("age", "income")
TEXT = ("city", "plan")


@dataclass
class World:
    server: Server
    home: Path
    root: Path
    local: Any  # seaway.Model
    good: pd.DataFrame


@dataclass
class Outcome:
    """What one entry point did: predictions, or the one message it refused with."""

    predictions: list[Any] | None = None
    refused: str | None = None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("one-input-model")
    home = root / "home"
    rng = np.random.default_rng(5)
    n = 240
    train = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.normal(size=n),
            "city": rng.choice(["Oslo", "Lima", "Pune"], n),
            "plan": rng.choice(["basic", "pro"], n),
        }
    )
    target = np.where(train["income"] + (train["plan"] == "pro") > 0.5, "high", "low")
    columns = ColumnTransformer(
        [
            ("age", SimpleImputer(), ["age"]),
            ("income", "passthrough", ["income"]),
            ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ("plan", OneHotEncoder(), ["plan"]),
        ]
    )
    model = make_pipeline(columns, LogisticRegression()).fit(train, target)
    settings = seaway.Settings.resolve(home=home)
    with seaway.Registry.from_settings(settings) as registry:
        seaway.log_model(model, "churn", sample_input=train.head(8), registry=registry)
        local = seaway.load_model("models:/churn/1", registry=registry)
    server = start_server(["models:/churn/1"], home, root / "server.log")
    yield World(server, home, root, local, train.head(4).reset_index(drop=True))
    server.stop(signal.SIGKILL)


# -- the cases ------------------------------------------------------------------------------------


def _case(world: World, name: str) -> pd.DataFrame:
    rows = world.good.copy()
    rows["city"] = rows["city"].astype(object)
    rows["plan"] = rows["plan"].astype(object)
    if name == "nan accepted":
        rows.loc[1, "age"] = np.nan
    elif name == "nan refused":
        rows.loc[2, "income"] = np.nan
    elif name == "none accepted":
        rows.loc[1, "city"] = None
    elif name == "none refused":
        rows.loc[3, "plan"] = None
    elif name == "no rows":
        rows = rows.iloc[:0]
    return rows


#: case -> None (accepted) or a fragment every refusal's message holds
CASES: dict[str, str | None] = {
    "good": None,
    "nan accepted": None,
    "nan refused": "missing value",
    "none accepted": None,
    "none refused": "missing value",
    "no rows": "at least one row",
}
#: a missing text cannot be written in gRPC's bytes_contents: nothing to send there
NOT_EXPRESSIBLE = {("grpc", "none accepted"), ("grpc", "none refused")}


# -- the entry points ------------------------------------------------------------------------------


def _refusal(call: Callable[[], Any]) -> Outcome:
    try:
        return Outcome(predictions=list(np.asarray(call()).tolist()))
    except (InvalidInputError, InferenceServerException) as exc:
        message = exc.message() if isinstance(exc, InferenceServerException) else str(exc)
        return Outcome(refused=message)


def via_local(world: World, rows: pd.DataFrame) -> Outcome:
    return _refusal(lambda: world.local.predict(rows))


def via_local_records(world: World, rows: pd.DataFrame) -> Outcome:
    return _refusal(lambda: world.local.predict(_records(rows)))


def via_client(world: World, rows: pd.DataFrame) -> Outcome:
    with seaway.Client(world.server.url) as client:
        return _refusal(lambda: client.predict("churn", rows))


def via_client_records(world: World, rows: pd.DataFrame) -> Outcome:
    with seaway.Client(world.server.url) as client:
        return _refusal(lambda: client.predict("churn", _records(rows)))


def via_cli(world: World, rows: pd.DataFrame) -> Outcome:
    path = world.root / "rows.json"
    path.write_text(json.dumps(_records(rows)))
    env = {**os.environ, "SEAWAY_URL": world.server.url, "SEAWAY_HOME": str(world.home)}
    done = subprocess.run(
        [sys.executable, "-m", "seaway", "predict", "churn", "--data", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if done.returncode == 0:
        return Outcome(predictions=json.loads(done.stdout)["predictions"])
    assert done.returncode == 1, done.stderr
    return Outcome(refused=" ".join(done.stderr.split()))  # Rich folds long lines


def via_rest(world: World, rows: pd.DataFrame) -> Outcome:
    inputs = [
        {"name": name, "datatype": "FP64", "shape": [len(rows)], "data": _json_column(rows[name])}
        for name in NUMERIC
    ] + [
        {"name": name, "datatype": "BYTES", "shape": [len(rows)], "data": _json_column(rows[name])}
        for name in TEXT
    ]
    answer = httpx.post(f"{world.server.url}/v2/models/churn/infer", json={"inputs": inputs})
    if answer.status_code == 200:
        return Outcome(predictions=answer.json()["outputs"][0]["data"])
    assert answer.status_code == 400, answer.text
    return Outcome(refused=answer.json()["error"])


def via_grpc(world: World, rows: pd.DataFrame) -> Outcome:
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{world.server.grpc_port}")
    try:
        inputs = []
        for name in (*NUMERIC, *TEXT):
            text = name in TEXT
            tensor = triton_grpc.InferInput(name, [len(rows)], "BYTES" if text else "FP64")
            values = rows[name].to_numpy()
            data = np.array([v.encode() for v in values], dtype=object) if text else values
            tensor.set_data_from_numpy(data.astype(object if text else np.float64))
            inputs.append(tensor)
        outcome = _refusal(lambda: client.infer("churn", inputs).as_numpy("predict"))
        if outcome.predictions is not None:  # BYTES come back as bytes
            outcome.predictions = [label.decode() for label in outcome.predictions]
        return outcome
    finally:
        client.close()


def via_invocations(world: World, rows: pd.DataFrame) -> Outcome:
    body = {
        "dataframe_split": {
            "columns": list(rows.columns),
            "data": [[_json_value(v) for v in row] for row in rows.itertuples(index=False)],
        }
    }
    answer = httpx.post(f"{world.server.url}/invocations", json=body)
    if answer.status_code == 200:
        return Outcome(predictions=answer.json()["predictions"])
    assert answer.status_code == 400, answer.text
    return Outcome(refused=answer.json()["message"])


def via_batch(world: World, rows: pd.DataFrame) -> Outcome:
    folder = world.root / f"batch-{len(list(world.root.glob('batch-*')))}"
    folder.mkdir()
    rows.assign(id=range(len(rows))).to_parquet(folder / "in.parquet", index=False)
    settings = seaway.Settings.resolve(home=world.home)
    with seaway.Registry.from_settings(settings) as registry:
        job = run_job(
            registry,
            BatchOptions(
                "models:/churn/1", str(folder / "in.parquet"), str(folder / "out"), keep=("id",)
            ),
        )
    rejects = sorted((folder / "out" / "_rejects").glob("*.parquet"))
    if rejects:
        reasons = pd.concat([pd.read_parquet(p) for p in rejects])["_reason"].tolist()
        assert job.rows_rejected == len(reasons) == 1, reasons  # the one bad row, no other
        return Outcome(refused=reasons[0])
    if len(rows) == 0:  # a batch over an empty file: nothing to score, nothing to refuse
        assert (job.rows_in, job.rows_out) == (0, 0)
        return Outcome(refused="no row was scored: send at least one row")
    parts = sorted((folder / "out").glob("part-*.parquet"))
    result = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    assert result["id"].tolist() == list(range(len(rows)))
    return Outcome(predictions=result["predict"].tolist())


ENTRY_POINTS: dict[str, Callable[[World, pd.DataFrame], Outcome]] = {
    "local": via_local,
    "local records": via_local_records,
    "client": via_client,
    "client records": via_client_records,
    "cli": via_cli,
    "rest": via_rest,
    "grpc": via_grpc,
    "invocations": via_invocations,
    "batch": via_batch,
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_every_entry_point_accepts_or_refuses_alike(world: World, case: str) -> None:
    rows = _case(world, case)
    fragment = CASES[case]
    expected = None if fragment else list(world.local.predict(rows).tolist())
    outcomes = {
        name: call(world, rows)
        for name, call in ENTRY_POINTS.items()
        if (name, case) not in NOT_EXPRESSIBLE
    }
    for name, outcome in outcomes.items():
        if fragment is None:
            assert outcome.refused is None, f"{name} refused {case!r}: {outcome.refused}"
            assert outcome.predictions == expected, name
        else:
            assert outcome.refused is not None, f"{name} accepted {case!r}"
            assert fragment in outcome.refused, f"{name}: {outcome.refused}"
            assert "\n" not in outcome.refused.strip(), f"{name}: {outcome.refused}"
            if case != "no rows":  # the message names the input
                column = "income" if "nan" in case else "plan"
                assert repr(column) in outcome.refused, f"{name}: {outcome.refused}"


# -- helpers ---------------------------------------------------------------------------------------


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _json_value(v) for k, v in row.items()} for row in rows.to_dict("records")]


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _json_column(column: pd.Series) -> list[Any]:
    return [_json_value(v) for v in column.tolist()]
