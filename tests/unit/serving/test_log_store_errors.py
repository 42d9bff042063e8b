"""A prediction log store the server cannot use: refused at start when its URL cannot be opened
at all, and a feedback write that fails is the store's 503 naming the reason, not a 500."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from seaway.errors import ArtifactStoreError
from seaway.monitoring.feedback import FeedbackItem
from seaway.serving import predlog
from seaway.serving.config import ServeConfig
from seaway.serving.dataplane import DataPlane
from seaway.serving.feedback import FeedbackWriter
from seaway.serving.http.app import create_app


def test_a_log_store_with_an_unknown_scheme_is_refused_at_start() -> None:
    # it was taken: requests were served, every write, sweep, gauge and label then failed
    config = ServeConfig.load(None, {"models": ["m"], "log_store": "foo://bar"}, environ={})
    with pytest.raises(
        ArtifactStoreError, match="cannot open the prediction log store 'foo://bar'"
    ):
        predlog.open_log(config)


def test_a_feedback_write_that_fails_is_503_naming_the_store(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a folder cannot be made under a file: every write fails

    class Served:
        name, version = "fraud", "1"

    plane = DataPlane()
    plane.publish([Served()])  # type: ignore[list-item]
    app = create_app(plane, feedback=FeedbackWriter(str(blocker / "feedback")))

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            body = {"request_id": "r", "labels": [1]}
            return await client.post("/v2/models/fraud/feedback", json=body)

    answer = asyncio.run(go())
    assert answer.status_code == 503, answer.text
    assert "cannot store the labels of 'fraud'" in answer.json()["error"]
    assert "a-file" in answer.json()["error"]


def test_the_writer_keeps_seaway_errors_as_they_are() -> None:
    def write(model: str, items: list[FeedbackItem], **kwargs: Any) -> int:
        raise ArtifactStoreError("bucket gone")

    async def scenario() -> Any:
        writer = FeedbackWriter("unused", write=write)
        return await asyncio.gather(
            writer.record("m", [FeedbackItem("a", 1)]), return_exceptions=True
        )

    (error,) = asyncio.run(scenario())
    assert isinstance(error, ArtifactStoreError) and str(error) == "bucket gone"


def test_batch_run_refuses_a_log_store_it_cannot_open_before_scoring(
    seaway_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # the job scored everything, then lost every logged chunk with a server's metric name
    from seaway.cli.main import main

    code = main(
        ["batch", "run", "models:/m/1", "--input", str(tmp_path), "--output", str(tmp_path / "o"),
         "--log-sample", "1", "--log-store", "foo://bar"]
    )  # fmt: skip
    assert code == 1
    assert "cannot open the prediction log store 'foo://bar'" in capsys.readouterr().err
