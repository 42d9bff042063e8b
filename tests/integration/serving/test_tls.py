"""`seaway serve --ssl-certfile/--ssl-keyfile`: HTTPS and gRPC over TLS, with a self-signed
certificate made by `openssl` in the test."""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as triton_grpc
from servers import Server, free_port, start_server
from sklearn.linear_model import LogisticRegression
from tritonclient.utils import InferenceServerException

import seaway

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None,
    reason="the openssl command is not on PATH (it makes the test's self-signed certificate)",
)


@dataclass
class Tls:
    server: Server
    cert: Path
    key: Path
    model: LogisticRegression
    frame: pd.DataFrame


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    root = tmp_path_factory.mktemp("tls")
    cert, key = make_certificate(root)
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(np.int64))
    seaway.save_model(model, root / "clf", sample_input=frame.head(5))
    server = start_server(
        [str(root / "clf"), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)],
        root / "home",
        root / "server.log",
        scheme="https",
        verify=ssl.create_default_context(cafile=str(cert)),
    )
    yield Tls(server, cert, key, model, frame)
    server.stop(signal.SIGKILL)


def _body(rows: pd.DataFrame) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].tolist()}
            for c in rows.columns
        ]
    }


def test_https_inference_with_the_certificate(tls: Tls) -> None:
    rows = tls.frame.head(6)
    assert tls.server.url.startswith("https://")
    trusting = ssl.create_default_context(cafile=str(tls.cert))
    with httpx.Client(verify=trusting, timeout=30) as client:
        assert client.get(f"{tls.server.url}/v2/health/live").status_code == 200
        answer = client.post(f"{tls.server.url}/v2/models/clf/infer", json=_body(rows))
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
    assert outputs["predict"] == tls.model.predict(rows).tolist()


def test_https_is_refused_by_a_client_that_does_not_trust_the_certificate(tls: Tls) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tls.server.url}/v2/health/live", timeout=10)


def test_plain_http_to_the_tls_port_fails(tls: Tls) -> None:
    try:
        answer = httpx.get(f"http://127.0.0.1:{tls.server.port}/v2/health/live", timeout=10)
    except httpx.TransportError:
        return  # the connection was dropped: no plaintext answer
    assert answer.status_code >= 400, answer.text
    assert answer.status_code != 200


def test_grpc_over_tls_with_tritonclient(tls: Tls) -> None:
    rows = tls.frame.head(4)
    client = triton_grpc.InferenceServerClient(
        f"127.0.0.1:{tls.server.grpc_port}", ssl=True, root_certificates=str(tls.cert)
    )
    try:
        assert client.is_server_live(client_timeout=30)
        inputs = []
        for column in rows.columns:
            tensor = triton_grpc.InferInput(column, [len(rows)], "FP64")
            tensor.set_data_from_numpy(rows[column].to_numpy())
            inputs.append(tensor)
        result = client.infer("clf", inputs, client_timeout=30)
    finally:
        client.close()
    np.testing.assert_array_equal(result.as_numpy("predict"), tls.model.predict(rows))


def test_plaintext_grpc_to_the_tls_port_fails(tls: Tls) -> None:
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{tls.server.grpc_port}")
    try:
        with pytest.raises(InferenceServerException) as info:
            client.is_server_live(client_timeout=5)
    finally:
        client.close()
    assert info.value.status() in ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED")


# ---- bad TLS settings stop the server with a message, not a traceback ---------------------------


def _serve(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEAWAY_HOME": str(home)}
    command = [sys.executable, "-m", "seaway", "serve", *args]
    command += ["--port", str(free_port()), "--grpc-port", str(free_port())]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tls-package") / "clf"
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [0.0, 3.0]])
    seaway.save_model(LogisticRegression().fit(x, [0, 1, 1, 0]), folder, sample_input=x)
    return folder


def test_a_certificate_without_its_key_is_refused(package: Path, tmp_path: Path) -> None:
    cert, _ = make_certificate(tmp_path)
    result = _serve(tmp_path / "home", str(package), "--ssl-certfile", str(cert))
    assert result.returncode != 0
    assert "--ssl-keyfile" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_a_missing_certificate_file_is_named(package: Path, tmp_path: Path) -> None:
    _, key = make_certificate(tmp_path)
    missing = tmp_path / "nowhere" / "cert.pem"
    result = _serve(
        tmp_path / "home",
        str(package),
        "--ssl-certfile",
        str(missing),
        "--ssl-keyfile",
        str(key),
    )
    assert result.returncode != 0
    assert str(missing) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
