"""`seaway batch run` end to end: formats, rejects, checks before work, job records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import batchmodels
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.batch import BatchOptions, run_job
from seaway.batch.inputs import BatchInputError
from seaway.errors import ConflictError, InvalidInputError, NotFoundError, RowRejectedError
from seaway.types import JobStatus

FEATURES = ["age", "income", "score"]


@pytest.fixture
def model(registry: seaway.Registry) -> LogisticRegression:
    """models:/fraud/1: a classifier on three named float columns."""
    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.normal(size=(300, 3)), columns=FEATURES)
    fitted = LogisticRegression().fit(train, (train["age"] > 0).astype(int))
    seaway.log_model(fitted, "fraud", sample_input=train.head(5), registry=registry)
    return fitted


def _rows(n: int, start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(start)
    data = pd.DataFrame(rng.normal(size=(n, 3)), columns=FEATURES)
    data.insert(0, "id", np.arange(start, start + n))
    data["customer"] = [f"c{i}" for i in range(start, start + n)]
    return data


def _write(data: pd.DataFrame, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        data.to_parquet(path, index=False)
    elif fmt == "csv":
        data.to_csv(path, index=False)
    else:
        data.to_json(path, orient="records", lines=True)


def _read(folder: Path, fmt: str) -> pd.DataFrame:
    parts = sorted(folder.glob(f"part-*.{fmt}"))
    frames = [pd.read_parquet(p) if fmt == "parquet" else pd.read_csv(p) for p in parts]
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("in_fmt", ["parquet", "csv", "jsonl"])
@pytest.mark.parametrize("out_fmt", ["parquet", "csv"])
def test_formats_in_and_out(
    registry: seaway.Registry, model: LogisticRegression, tmp_path: Path, in_fmt: str, out_fmt: str
) -> None:
    first, second = _rows(250), _rows(130, start=250)
    suffix = "jsonl" if in_fmt == "jsonl" else in_fmt
    _write(first, tmp_path / "in" / f"a.{suffix}", in_fmt)
    _write(second, tmp_path / "in" / f"b.{suffix}", in_fmt)
    (tmp_path / "in" / "_SUCCESS").write_text("")  # a marker from another tool: skipped
    out = tmp_path / "out"
    job = run_job(
        registry,
        BatchOptions(
            model="models:/fraud/latest",
            input=str(tmp_path / "in"),
            output=str(out),
            output_format=out_fmt,  # type: ignore[arg-type]
            keep=("id", "customer"),
            proba=True,
            chunk_rows=100,
            workers=2,
        ),
    )
    assert job.status is JobStatus.SUCCEEDED
    assert (job.rows_in, job.rows_out, job.rows_rejected) == (380, 380, 0)
    assert (job.model_name, job.model_version) == ("fraud", 1)
    # part files per (input file, chunk of 100 rows), each in input order
    names = sorted(p.name for p in out.glob(f"part-*.{out_fmt}"))
    assert names == [f"part-00000-00000{i}.{out_fmt}" for i in range(3)] + [
        f"part-00001-00000{i}.{out_fmt}" for i in range(2)
    ]
    result = _read(out, out_fmt)
    everything = pd.concat([first, second], ignore_index=True)
    # every row once, in order (columns kept from CSV are text: CSV has no types)
    assert result["id"].astype(int).tolist() == everything["id"].tolist()
    assert result["customer"].tolist() == everything["customer"].tolist()
    assert result["predict"].tolist() == model.predict(everything[FEATURES]).tolist()
    np.testing.assert_allclose(
        result[["predict_proba_0", "predict_proba_1"]].to_numpy(),
        model.predict_proba(everything[FEATURES]),
        rtol=1e-6,
    )
    assert set(result["model_name"]) == {"fraud"} and set(result["model_version"]) == {1}
    assert (out / "_SUCCESS").is_file()
    # a second run into the finished folder changes nothing: exactly once
    again = run_job(
        registry,
        BatchOptions(
            "models:/fraud/latest",
            str(tmp_path / "in"),
            str(out),
            output_format=out_fmt,
            keep=("id", "customer"),
            proba=True,
            chunk_rows=100,
        ),
    )  # type: ignore[arg-type]
    assert again.job_id == job.job_id and len(_read(out, out_fmt)) == 380


def test_bad_rows_go_to_rejects_with_reasons(
    registry: seaway.Registry, model: LogisticRegression, tmp_path: Path
) -> None:
    data = _rows(20)
    text = data.astype(object)
    text.loc[3, "age"] = "abc"  # not a number
    text.loc[7, "income"] = None  # missing: the model refused it at log time, so batch does too
    text.loc[11, "score"] = "1e400"  # a number (infinity) that the model itself refuses
    path = tmp_path / "in.csv"
    text.to_csv(path, index=False)
    out = tmp_path / "out"
    job = run_job(
        registry,
        BatchOptions("models:/fraud/1", str(path), str(out), keep=("id",), chunk_rows=8),
    )
    assert (job.rows_in, job.rows_out, job.rows_rejected) == (20, 17, 3)
    rejects = pd.concat(
        [pd.read_parquet(p) for p in sorted((out / "_rejects").glob("*.parquet"))],
        ignore_index=True,
    )
    assert rejects["id"].tolist() == ["3", "7", "11"]  # CSV columns are read as text
    assert rejects["_row"].tolist() == [3, 7, 11]
    assert rejects["_reason"].tolist()[:2] == [
        "column 'age': 'abc' is not FP64",
        "column 'income': missing value (FP64 expected)",
    ]
    assert rejects["_reason"][2].startswith("the model failed on this row: ValueError: Input")
    assert set(rejects["_file"]) == {f"file://{path}"}
    result = _read(out, "parquet")
    assert result["id"].astype(int).tolist() == [i for i in range(20) if i not in (3, 7, 11)]

    fail_out = tmp_path / "fail"
    with pytest.raises(RowRejectedError, match=r"row 3 of .*in\.csv was rejected: column 'age'"):
        run_job(
            registry,
            BatchOptions(
                "models:/fraud/1", str(path), str(fail_out), on_error="fail", chunk_rows=8
            ),
        )
    failed = registry.jobs.list()[0]
    assert failed.status is JobStatus.FAILED and "column 'age'" in (failed.error or "")
    assert "--resume" in (failed.error or "")


def test_rows_the_model_fails_on_are_isolated(registry: seaway.Registry, tmp_path: Path) -> None:
    batchmodels.register(batchmodels.Picky(), "picky", registry)
    data = pd.DataFrame({"a": [1.0, -2.0, 3.0, 4.0, -5.0, 6.0, 7.0], "b": 0.0})
    path = tmp_path / "in.parquet"
    data.to_parquet(path, index=False)
    out = tmp_path / "out"
    job = run_job(
        registry, BatchOptions("models:/picky/1", str(path), str(out), keep=("a",), trusted=True)
    )
    assert (job.rows_out, job.rows_rejected) == (5, 2)
    result = _read(out, "parquet")
    assert result["a"].tolist() == [1.0, 3.0, 4.0, 6.0, 7.0]
    assert result["predict"].tolist() == [2.0, 6.0, 8.0, 12.0, 14.0]
    rejects = pd.read_parquet(out / "_rejects" / "part-00000-000000.parquet")
    assert rejects["_row"].tolist() == [1, 4]
    assert set(rejects["_reason"]) == {
        "the model failed on this row: ValueError: a must not be negative"
    }


def test_problems_are_found_before_any_work(
    registry: seaway.Registry, model: LogisticRegression, tmp_path: Path
) -> None:
    good = tmp_path / "good.parquet"
    _rows(10).to_parquet(good, index=False)
    no_score = tmp_path / "no_score.parquet"
    _rows(10).drop(columns=["score"]).to_parquet(no_score, index=False)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really parquet")
    cases = [
        (BatchOptions("models:/nope/1", str(good), str(tmp_path / "o1")), NotFoundError, "nope"),
        (BatchOptions("models:/fraud/9", str(good), str(tmp_path / "o2")), NotFoundError, "9"),
        (
            BatchOptions("./model-dir", str(good), str(tmp_path / "o3")),
            InvalidInputError,
            "not a model URI",
        ),
        (
            BatchOptions("models:/fraud/1", str(tmp_path / "nothing"), str(tmp_path / "o4")),
            BatchInputError,
            "does not exist",
        ),
        (
            BatchOptions("models:/fraud/1", str(no_score), str(tmp_path / "o5")),
            BatchInputError,
            r"lacks the column\(s\) \['score'\]",
        ),
        (
            BatchOptions("models:/fraud/1", str(broken), str(tmp_path / "o6")),
            BatchInputError,
            "broken.parquet",
        ),
        (
            BatchOptions("models:/fraud/1", str(good), str(tmp_path / "o7"), keep=("missing",)),
            BatchInputError,
            "missing",
        ),
        (
            BatchOptions("models:/fraud/1", str(tmp_path / "*.csv"), str(tmp_path / "o8")),
            BatchInputError,
            "matches no files",
        ),
    ]
    for options, error, message in cases:
        with pytest.raises(error, match=message):
            run_job(registry, options)
    # an existing folder that is not this job's output is refused, and left alone
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "precious.txt").write_text("keep me")
    with pytest.raises(ConflictError, match="not empty"):
        run_job(registry, BatchOptions("models:/fraud/1", str(good), str(taken)))
    assert (taken / "precious.txt").read_text() == "keep me"
    assert registry.jobs.list() == []  # nothing started, nothing recorded
    with pytest.raises(InvalidInputError, match="--chunk-rows"):
        BatchOptions("models:/fraud/1", str(good), str(tmp_path / "o9"), chunk_rows=0)


def test_a_folder_of_another_job_is_refused_unless_resumed(
    registry: seaway.Registry, model: LogisticRegression, tmp_path: Path
) -> None:
    good = tmp_path / "in.parquet"
    _rows(10).to_parquet(good, index=False)
    out = tmp_path / "out"
    job = run_job(registry, BatchOptions("models:/fraud/1", str(good), str(out)))
    with pytest.raises(
        ConflictError, match=f"holds job {job.job_id} with other settings \\(proba\\)"
    ):
        run_job(registry, BatchOptions("models:/fraud/1", str(good), str(out), proba=True))


def test_cli_run_list_show(model: LogisticRegression, registry_url: str, tmp_path: Path) -> None:
    data = tmp_path / "in.parquet"
    _rows(50).to_parquet(data, index=False)
    out = tmp_path / "out"
    run = _cli(
        "batch",
        "run",
        "models:/fraud/1",
        "--input",
        str(data),
        "--output",
        str(out),
        "--keep",
        "id",
        "--chunk-rows",
        "20",
        "--workers",
        "1",
    )
    assert run.returncode == 0, run.stderr
    assert "succeeded: 50 of 50 rows scored" in run.stderr
    listed = json.loads(_cli("batch", "list", "--json").stdout)
    assert len(listed) == 1 and listed[0]["status"] == "succeeded"
    job_id = listed[0]["job_id"]
    shown = json.loads(_cli("batch", "show", job_id, "--json").stdout)
    assert shown["model"] == "models:/fraud/1" and shown["rows_out"] == 50
    assert shown["output"] == str(out) and shown["duration_s"] > 0
    table = _cli("batch", "show", job_id)
    assert job_id in table.stdout and "succeeded" in table.stdout
    bad = _cli(
        "batch",
        "run",
        "models:/fraud/1",
        "--input",
        str(tmp_path / "none.csv"),
        "--output",
        str(tmp_path / "x"),
    )
    assert bad.returncode == 1 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
    missing = _cli("batch", "show", "job-nope")
    assert missing.returncode == 1 and "no batch job 'job-nope'" in missing.stderr


def test_cli_creating_a_registry_prints_no_migration_notes(tmp_path: Path) -> None:
    data = tmp_path / "in.parquet"
    _rows(5).to_parquet(data, index=False)
    run = _cli(
        "batch", "run", "models:/fraud/1", "--input", str(data), "--output", str(tmp_path / "out")
    )
    assert run.returncode == 1 and "no model named 'fraud'" in run.stderr
    assert "upgrade" not in run.stderr + run.stdout  # Alembic's INFO lines as the registry is made


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seaway", *args], capture_output=True, text=True, timeout=300
    )


def test_parquet_row_groups_do_not_decide_chunks(
    registry: seaway.Registry, model: LogisticRegression, tmp_path: Path
) -> None:
    data = _rows(1000)
    path = tmp_path / "in.parquet"
    pq.write_table(__import__("pyarrow").Table.from_pandas(data), path, row_group_size=333)
    out = tmp_path / "out"
    run_job(
        registry,
        BatchOptions(
            "models:/fraud/1", str(path), str(out), keep=("id",), chunk_rows=250, workers=1
        ),
    )
    sizes = [len(pd.read_parquet(p)) for p in sorted(out.glob("part-*.parquet"))]
    assert sizes == [250, 250, 250, 250]
    assert _read(out, "parquet")["id"].tolist() == list(range(1000))


def test_a_model_that_cannot_load_in_the_workers_says_why(
    registry: seaway.Registry, tmp_path: Path
) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from seaway.errors import UntrustedPackageError

    train = _rows(50)[FEATURES]
    pipeline = make_pipeline(FunctionTransformer(batchmodels.negate), LogisticRegression())
    pipeline.fit(train, (train["age"] > 0).astype(int))
    seaway.log_model(pipeline, "custom", sample_input=train.head(5), registry=registry)
    data = tmp_path / "in.parquet"
    _rows(10).to_parquet(data, index=False)
    with pytest.raises(UntrustedPackageError, match="negate"):
        run_job(registry, BatchOptions("models:/custom/1", str(data), str(tmp_path / "out")))
    assert registry.jobs.list()[0].status is JobStatus.FAILED
