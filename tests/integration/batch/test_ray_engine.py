"""`--engine ray`: the same job as the local engine, on a local Ray instance (one per module)."""

from __future__ import annotations

import json
import os
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import ray
import raycases
from raycases import CHUNK_ROWS, CSV_BAD, FEATURES, PARQUET_NULL_TENURE

import seaway
from seaway.batch import BatchOptions, ray_engine, run_job
from seaway.batch.local import Chunk, WorkerSpec
from seaway.batch.output import ChunkStats
from seaway.batch.ray_engine import Failure, ScoringActor, pack, run_ray
from seaway.errors import MissingDependencyError, PackageIntegrityError, RowRejectedError
from seaway.types import JobStatus

pytestmark = pytest.mark.slow  # each test starts Ray actors or worker processes


@pytest.fixture
def registry() -> Iterator[seaway.Registry]:
    """On SQLite only: the engines are under test here, not the databases."""
    with seaway.Registry.from_settings() as reg:
        yield reg


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """One local, in-process Ray instance for the module; nothing of it is left afterwards."""
    assert not ray.is_initialized()
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()
    assert raycases.ray_processes_gone(os.getpid()) == []


def _options(source: Path, output: Path, engine: str, **more: object) -> BatchOptions:
    return BatchOptions(
        model="models:/churn/1",
        input=str(source),
        output=str(output),
        keep=("id", "note"),
        proba=True,
        workers=2,
        chunk_rows=CHUNK_ROWS,
        engine=engine,  # type: ignore[arg-type]
        **more,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_ray_writes_what_the_local_engine_writes(
    ray_cluster: None, registry: seaway.Registry, tmp_path: Path, fmt: str
) -> None:
    raycases.register_model(registry)
    if fmt == "parquet":
        source = tmp_path / "in"
        raycases.write_parquet_inputs(source)
        chunks, rejects = 6 + 3, sum(len(v) for v in PARQUET_NULL_TENURE.values())
    else:
        source = tmp_path / "in" / "rows.csv"
        raycases.write_csv_input(source)
        chunks, rejects = 4, len(CSV_BAD)

    local = run_job(registry, _options(source, tmp_path / "local", "local"))
    on_ray = run_job(registry, _options(source, tmp_path / "ray", "ray"))

    expected = raycases.contents(tmp_path / "local")
    assert len([k for k in expected if k.startswith("_chunks/")]) == chunks
    assert len([k for k in expected if k.startswith("_rejects/")]) >= 1
    assert raycases.contents(tmp_path / "ray") == expected  # names, rows, predictions, reasons
    reasons = raycases.rejected(tmp_path / "ray")["_reason"].tolist()
    assert len(reasons) == rejects
    assert all(reason.startswith("column ") for reason in reasons)

    for job in (local, on_ray):
        assert job.status is JobStatus.SUCCEEDED
        assert job.error is None
        assert job.model_version == 1
    assert (on_ray.rows_in, on_ray.rows_out, on_ray.rows_rejected) == (
        local.rows_in,
        local.rows_out,
        local.rows_rejected,
    )
    assert on_ray.rows_rejected == rejects
    assert on_ray.params["engine"] == "ray"
    assert registry.jobs.get(on_ray.job_id).status is JobStatus.SUCCEEDED
    success = json.loads((tmp_path / "ray" / "_SUCCESS").read_text())
    local_success = json.loads((tmp_path / "local" / "_SUCCESS").read_text())
    assert success == {**local_success, "job_id": on_ray.job_id}


def test_a_rejected_row_fails_the_job_with_the_seaway_error(
    ray_cluster: None, registry: seaway.Registry, tmp_path: Path
) -> None:
    raycases.register_model(registry)
    source = tmp_path / "rows.csv"
    raycases.write_csv_input(source, bad={97: ("income", "abc")})  # in the third chunk

    with pytest.raises(RowRejectedError) as caught:
        run_job(registry, _options(source, tmp_path / "ray", "ray", on_error="fail"))

    # the local engine raises this very message from the same score_and_commit
    assert type(caught.value) is RowRejectedError  # not a RayTaskError that wraps it
    assert not isinstance(caught.value, ray.exceptions.RayError)
    assert str(caught.value) == (
        f"row 97 of file://{source} was rejected: column 'income': 'abc' is not FP64 "
        "(--on-error fail; the default, skip, writes such rows to _rejects/ instead)"
    )
    assert "RowRejectedError" in str(caught.value.__cause__)  # the actor's traceback, kept aside

    [failed] = registry.jobs.list()
    assert failed.status is JobStatus.FAILED
    assert failed.error == (
        f"{caught.value}; rerun with 'seaway batch run --resume {failed.job_id}'"
    )
    assert failed.rows_in < 150
    committed = sorted(p.name for p in (tmp_path / "ray" / "_chunks").glob("*.json"))
    assert "part-00000-000002.json" not in committed  # the bad chunk was never committed


def test_ray_resumes_a_job_the_local_engine_started(
    ray_cluster: None, registry: seaway.Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fitted = raycases.register_model(registry)
    data = raycases.write_parquet_inputs(tmp_path / "in")
    output = tmp_path / "out"
    options = _options(tmp_path / "in", output, "local")

    with pytest.raises(RuntimeError, match="stopped by the test"):
        run_job(registry, options, progress=raycases.StopAfter(2))
    [stopped] = registry.jobs.list()
    assert stopped.status is JobStatus.FAILED
    before = {p.name for p in (output / "_chunks").glob("*.json")}
    assert 2 <= len(before) < 9  # some chunks were committed by the local engine, not all

    heard: list[tuple[int, int]] = []

    def spy(chunks, spec, workers, on_chunk, *, address=None):  # type: ignore[no-untyped-def]
        def on_ray_chunk(file_index: int, chunk: int, stats: ChunkStats) -> None:
            heard.append((file_index, chunk))
            on_chunk(file_index, chunk, stats)

        run_ray(chunks, spec, workers, on_ray_chunk, address=address)

    monkeypatch.setattr(ray_engine, "run_ray", spy)
    job = run_job(registry, resume=stopped.job_id, engine="ray")

    assert job.job_id == stopped.job_id
    assert job.status is JobStatus.SUCCEEDED
    every = {(0, c) for c in range(6)} | {(1, c) for c in range(3)}
    assert sorted(heard) == sorted(every - {_key(name) for name in before})  # ray did the rest
    assert len(list((output / "_chunks").glob("*.json"))) == 9
    assert (job.rows_in, job.rows_out, job.rows_rejected) == (350, 345, 5)
    out, rejects = raycases.scored(output), raycases.rejected(output)
    assert sorted([*out["id"], *rejects["id"]]) == list(range(350))  # every row exactly once
    where = sorted(
        (Path(f).name, row) for f, row in zip(rejects["_file"], rejects["_row"], strict=True)
    )
    assert where == [(name, row) for name, found in PARQUET_NULL_TENURE.items() for row in found]
    good = data[data["tenure"].notna()].astype({"tenure": "int64"})
    expected = pd.Series(fitted.predict(good[FEATURES]), index=good["id"])
    assert out.set_index("id")["predict"].sort_index().tolist() == expected.sort_index().tolist()


def test_chunks_are_read_only_as_actors_free_up(
    ray_cluster: None, registry: seaway.Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = _spec(registry, tmp_path)
    table = pq.read_table(tmp_path / "in" / "a.parquet", columns=list(spec.columns))
    heard: list[tuple[int, int]] = []
    most = 0

    def chunks() -> Iterator[Chunk]:
        nonlocal most
        for index in range(23):
            most = max(most, index + 1 - len(heard))  # read, minus committed
            yield Chunk(0, "file:///a.parquet", index, index * 10, table.slice(index * 10, 10))

    # 3 workers asked, 2 CPUs in the cluster: 2 actors, rather than one that waits for ever
    run_ray(chunks(), spec, 3, lambda file_index, chunk, _: heard.append((file_index, chunk)))

    assert "the Ray cluster has 2 CPUs: scoring with 2 actors, not 3" in caplog.text
    assert sorted(heard) == [(0, index) for index in range(23)]
    assert most <= 2 * 2 + 1  # two in flight per actor, and the one just read
    assert len(list((tmp_path / "out" / "_chunks").glob("*.json"))) == 23


def test_model_load_errors_come_back_as_seaway_errors(
    ray_cluster: None, registry: seaway.Registry, tmp_path: Path
) -> None:
    spec = _spec(registry, tmp_path)
    tampered = WorkerSpec(**{**spec.__dict__, "manifest_sha256": "0" * 64})
    with pytest.raises(PackageIntegrityError) as caught:
        run_ray(iter([]), tampered, 1, lambda *_: None)
    assert not isinstance(caught.value, ray.exceptions.RayError)
    assert ray.is_initialized()  # the module's instance was not ours to stop


def test_a_node_without_the_package_folder_is_sent_the_package(
    ray_cluster: None, registry: seaway.Registry, tmp_path: Path
) -> None:
    spec = _spec(registry, tmp_path)
    elsewhere = WorkerSpec(**{**spec.__dict__, "package_path": str(tmp_path / "not-here")})
    unpack_to = tmp_path / "node-tmp"
    unpack_to.mkdir()
    actor = (
        ray.remote(ScoringActor)
        .options(num_cpus=1, runtime_env={"env_vars": {"TMPDIR": str(unpack_to)}})
        .remote()
    )
    try:
        assert ray.get(actor.setup.remote(elsewhere, None)) is False
        package = ray.put(pack(spec.package_path))
        assert ray.get(actor.setup.remote(elsewhere, package)) is True
        table = pq.read_table(tmp_path / "in" / "a.parquet", columns=list(spec.columns))
        result = ray.get(
            actor.score.remote(Chunk(0, "file:///a.parquet", 0, 0, table.slice(0, 10)))
        )
    finally:
        ray.kill(actor)
    assert result[:2] == (0, 0)
    assert (result[2].rows_in, result[2].rows_out) == (10, 9)  # row 3 has no tenure
    unpacked = list((unpack_to / "seaway-ray-packages").iterdir())
    assert [p.name for p in unpacked] == [spec.manifest_sha256]
    assert (unpacked[0] / "manifest.json").is_file()
    assert len(raycases.scored(tmp_path / "out")) == 9


def _key(marker: str) -> tuple[int, int]:
    _, file_index, chunk = marker.removesuffix(".json").split("-")
    return int(file_index), int(chunk)


def _spec(registry: seaway.Registry, tmp_path: Path) -> WorkerSpec:
    raycases.register_model(registry)
    raycases.write_parquet_inputs(tmp_path / "in")
    record = registry.resolve("models:/churn/1")
    return WorkerSpec(
        package_path=str(registry.fetch(record)),
        manifest_sha256=record.manifest_sha256,
        trusted=False,
        model_name=record.name,
        model_version=record.version,
        keep=("id",),
        proba=False,
        features=(),
        columns=(*FEATURES, "id"),
        output_url=str(tmp_path / "out"),
        output_format="parquet",
        on_error="skip",
    )


# -- without a cluster ----------------------------------------------------------------------------


def test_without_ray_installed_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if not installed
    spec = WorkerSpec(
        str(tmp_path), None, False, "m", 1, (), False, (), ("a",), str(tmp_path), "parquet", "skip"
    )
    with pytest.raises(MissingDependencyError, match=r"pip install 'seaway\[ray\]'") as caught:
        run_ray(iter([]), spec, 1, lambda *_: None)
    assert "The Ray engine needs the 'ray' package" in str(caught.value)


def test_an_error_that_does_not_pickle_still_comes_back_as_itself() -> None:
    original = raycases.TwoArgumentError("model.onnx", "opset 99")
    with pytest.raises(TypeError):  # pickle calls __init__ with the message alone
        pickle.loads(pickle.dumps(original))
    try:
        raise original
    except raycases.TwoArgumentError as exc:
        failure = Failure.of(exc)
    error = pickle.loads(pickle.dumps(failure)).error()  # as it crosses from an actor
    assert type(error) is raycases.TwoArgumentError
    assert str(error) == "model.onnx needs opset 99"
    assert "raise original" in str(error.__cause__)

    for sent in (
        MissingDependencyError("torch", "torch", "Loading this package"),  # same __init__ kind
        RowRejectedError("row 3 was rejected"),
    ):
        back = pickle.loads(pickle.dumps(Failure.of(sent))).error()
        assert type(back) is type(sent)
        assert str(back) == str(sent)
