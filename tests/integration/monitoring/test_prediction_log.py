"""The prediction log under a real ``seaway serve`` and a real batch job: nothing lost while the
buffer has room, drops counted exactly when it is full, every transport logged alike, each front
worker writing its own parts, batch rows logged with their job, row and key."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as triton_grpc
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.batch import BatchOptions, run_job
from seaway.monitoring import logstore

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))

from servers import Server, start_server


@pytest.fixture
def fraud(seaway_home: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> pd.DataFrame:
    """models:/fraud/1, whose own serving config keeps ``score`` out of the log."""
    frame, target = tabular
    model = LogisticRegression().fit(frame, target)
    with seaway.Registry.from_settings() as registry:
        seaway.log_model(
            model,
            "fraud",
            sample_input=frame.head(5),
            reference_data=frame,
            registry=registry,
            serving={"log_exclude": ["score"]},
        )
    return frame


@pytest.fixture
def servers(seaway_home: Path, tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop(signal.SIGKILL)


def _serve(started: list[Server], home: Path, tmp_path: Path, *args: str) -> Server:
    server = start_server(list(args), home, tmp_path / f"server-{len(started)}.log")
    started.append(server)
    return server


def _body(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [len(frame)], "data": frame[c].tolist()}
            for c in frame.columns
        ]
    }


async def _rest(server: Server, frame: pd.DataFrame, count: int, prefix: str) -> dict[str, int]:
    """``count`` concurrent V2 requests of 1 to 3 rows; the rows sent by request id."""
    sent: dict[str, int] = {}
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:

        async def one(i: int) -> None:
            rows = frame.iloc[i % 50 : i % 50 + 1 + i % 3]
            rid = f"{prefix}-{i}"
            answer = await client.post(
                "/v2/models/fraud/infer", json=_body(rows), headers={"X-Request-ID": rid}
            )
            assert answer.status_code == 200, answer.text
            sent[rid] = len(rows)

        await asyncio.gather(*(one(i) for i in range(count)))
    return sent


def _metric(server: Server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    found = re.findall(rf'^{name}{{model="fraud",version="1"}} (\S+)$', text, re.MULTILINE)
    return sum(float(v) for v in found)


def _stop(server: Server) -> None:
    assert server.stop(signal.SIGTERM) == 0, server.output()


def test_concurrent_requests_on_every_transport_lose_nothing(
    fraud: pd.DataFrame, servers: list[Server], seaway_home: Path, tmp_path: Path
) -> None:
    store = tmp_path / "predictions"
    server = _serve(
        servers, seaway_home, tmp_path, "models:/fraud/1", "--log-sample", "1.0",
        "--log-store", str(store),
    )  # fmt: skip
    sent = asyncio.run(_rest(server, fraud, 300, "rest"))
    grpc_client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    for i in range(20):
        rows = fraud.iloc[i : i + 2]
        inputs = []
        for column in rows.columns:
            tensor = triton_grpc.InferInput(column, [len(rows)], "FP64")
            tensor.set_data_from_numpy(rows[column].to_numpy())
            inputs.append(tensor)
        grpc_client.infer("fraud", inputs, request_id=f"grpc-{i}")
        sent[f"grpc-{i}"] = 2
    grpc_client.close()
    for i in range(10):
        records = fraud.iloc[i : i + 1].to_dict(orient="records")
        answer = httpx.post(
            f"{server.url}/invocations",
            json={"dataframe_records": records},
            headers={"X-Request-ID": f"mlflow-{i}"},
        )
        assert answer.status_code == 200, answer.text
        sent[f"mlflow-{i}"] = 1
    assert _metric(server, "seaway_prediction_log_dropped_total") == 0
    _stop(server)  # a clean stop writes what is buffered

    logged = logstore.read_log("fraud", root=str(store))
    assert len(logged) == sum(sent.values())
    assert logged.groupby("request_id").size().to_dict() == sent
    assert "input.score" not in logged.columns  # the model's own log_exclude
    assert {"input.age", "input.income", "input.tenure", "output.predict"} <= set(logged.columns)
    first = logged[logged["request_id"] == "rest-4"].sort_values("row")
    expected = fraud.iloc[4:6]
    assert first["input.age"].tolist() == expected["age"].tolist()
    assert (logged["latency_ms"] > 0).all()
    counts = logstore.writer_stats("fraud", root=str(store))
    assert (counts["rows"], counts["dropped"], counts["write_errors"]) == (len(logged), 0, 0)
    summary = logstore.merged_summary("fraud", root=str(store))  # the model has a profile
    assert summary is not None and summary.n_rows == len(logged)


def test_a_full_buffer_drops_and_metrics_count_exactly_what_was_dropped(
    fraud: pd.DataFrame, servers: list[Server], seaway_home: Path, tmp_path: Path
) -> None:
    store = tmp_path / "predictions"
    config = tmp_path / "serve.yaml"
    config.write_text(
        f"log_store: {store}\nlog_buffer: 5\nlog_flush_rows: 1000\nlog_flush_seconds: 3600\n"
        "per_model:\n  fraud: {log_sample: 1.0}\n"
    )
    server = _serve(servers, seaway_home, tmp_path, "models:/fraud/1", "--config", str(config))
    sent = asyncio.run(_rest(server, fraud, 80, "r"))
    requests = len(sent)
    dropped = _metric(server, "seaway_prediction_log_dropped_total")
    assert dropped > 0
    _stop(server)
    logged = logstore.read_log("fraud", root=str(store))
    assert logged["request_id"].nunique() == requests - dropped
    assert len(logged) <= 5  # the buffer holds 5 rows and is never flushed before the stop
    counts = logstore.writer_stats("fraud", root=str(store))
    assert counts["dropped"] == dropped and counts["requests"] == requests - dropped


def test_each_front_worker_writes_its_own_parts(
    fraud: pd.DataFrame, servers: list[Server], seaway_home: Path, tmp_path: Path
) -> None:
    store = tmp_path / "predictions"
    server = _serve(
        servers, seaway_home, tmp_path, "models:/fraud/1", "--workers", "2", "--log-sample", "1",
        "--log-store", str(store),
    )  # fmt: skip
    sent: dict[str, int] = {}
    for batch in range(4):  # new connections: the kernel spreads them over the workers
        sent.update(asyncio.run(_rest(server, fraud, 40, f"b{batch}")))
    _stop(server)
    logged = logstore.read_log("fraud", root=str(store))
    assert logged.groupby("request_id").size().to_dict() == sent
    parts = logstore.list_files("fraud", root=str(store))
    assert len({Path(p.path).name for p in parts}) == len(parts)
    writers = list((store / "model=fraud" / "version=1").glob("_writer-*.json"))
    assert 1 <= len(writers) <= 2
    assert logstore.writer_stats("fraud", root=str(store))["rows"] == len(logged)


def test_a_batch_job_logs_its_rows_with_job_row_and_key(
    fraud: pd.DataFrame, seaway_home: Path, tmp_path: Path
) -> None:
    data = fraud.assign(customer=[f"c{i}" for i in range(len(fraud))])
    data.to_parquet(tmp_path / "input.parquet")
    store = tmp_path / "predictions"
    with seaway.Registry.from_settings() as registry:
        job = run_job(
            registry,
            BatchOptions(
                model="models:/fraud/1",
                input=str(tmp_path / "input.parquet"),
                output=str(tmp_path / "out"),
                keep=("customer",),
                proba=True,
                chunk_rows=64,
                workers=2,
                log_sample=0.5,
                log_store=str(store),
            ),
        )
    logged = logstore.read_log("fraud", root=str(store))
    assert 0 < len(logged) < len(data)
    assert set(logged["source"]) == {"batch"} and set(logged["job_id"]) == {job.job_id}
    assert logged["latency_ms"].isna().all()
    rows = logged["row"].to_numpy()
    assert (logged["key"] == [f"c{r}" for r in rows]).all()
    assert (logged["request_id"] == [f"{job.job_id}:0:{r}" for r in rows]).all()
    assert logged["input.age"].tolist() == data["age"].iloc[rows].tolist()
    assert "input.score" not in logged.columns
    scored = pd.read_parquet(tmp_path / "out").set_index("customer")
    np.testing.assert_allclose(
        logged["output.predict_proba.1"], scored.loc[logged["key"], "predict_proba_1"]
    )
