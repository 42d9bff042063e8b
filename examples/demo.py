"""The `make demo` walk-through: train, register, inspect with the CLI, load back, serve, predict,
watch drift and accuracy, score a file in batch.

Runs against the embedded default registry (SQLite under ./.seaway). Each run registers a new
version of the same model and moves the `production` alias to it, serves that alias over HTTP and
gRPC on free ports with every request logged, asks the server for predictions, sends ordinary
then shifted traffic and the true labels of the ordinary rows, then shows the drift table and the
realised and estimated accuracy of that traffic. Then it scores a Parquet file of transactions
with `seaway batch run` and reads the predictions back. Last, a canary: a second, deeper forest
is registered, a deployment sends it 10% of the traffic (90% stays on `production`), a server
follows the deployment, and `seaway deploy results` shows the split and each version's figures.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

import seaway

MODEL = "demo-fraud"
DEPLOYMENT = "demo-fraud-live"


def make_transactions(rows: int = 2_000, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 60.0, rows).round(2),
            "hour": rng.integers(0, 24, rows),
            "country": rng.choice(["NO", "PE", "JP", "US"], rows),
            "card_age_days": rng.integers(1, 3_000, rows),
        }
    )
    risk = (frame["amount"] > 250) & (frame["hour"] < 6) | (frame["card_age_days"] < 30)
    return frame, (risk ^ (rng.random(rows) < 0.03)).astype(int).rename("fraud")


def cli(*args: str) -> None:
    print(f"\n$ seaway {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "seaway", *args], check=True)


def forest(trees: int, depth: int) -> Pipeline:
    encode = ColumnTransformer(
        [("country", OneHotEncoder(handle_unknown="ignore"), ["country"])],
        remainder="passthrough",
    )
    return Pipeline(
        [
            ("encode", encode),
            ("forest", RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=0)),
        ]
    )


def main() -> None:
    features, labels = make_transactions()
    train_x, test_x, train_y, test_y = train_test_split(features, labels, random_state=0)
    model = forest(trees=50, depth=6).fit(train_x, train_y)
    accuracy = float((model.predict(test_x) == test_y).mean())
    print(f"Trained a fraud classifier: test accuracy {accuracy:.3f}")

    version = seaway.log_model(
        model,
        MODEL,
        sample_input=train_x.head(20),
        reference_data=train_x,  # the profile drift is measured against
        reference_labels=train_y,  # calibrates the accuracy estimated before labels arrive
        metrics={"accuracy": accuracy},
        tags={"owner": "demo"},
        description="Random forest on synthetic card transactions",
    )
    print(f"Registered {version.uri}")
    cli("models", "alias", MODEL, "production", str(version.version))
    cli("models", "list")
    cli("models", "show", f"{MODEL}@production")

    loaded = seaway.load_model(f"models:/{MODEL}@production")
    sample = test_x.head(3)
    print(f"\nLoaded {loaded.info.uri} (version {loaded.info.version}); predicting on:")
    print(sample.to_string(index=False))
    print("fraud:      ", loaded.predict(sample).tolist())
    print("probability:", loaded.predict_proba(sample)[:, 1].round(3).tolist())

    serve_and_predict(sample, loaded.predict(sample).tolist(), test_x, test_y)
    for command in ("drift", "performance"):
        cli("monitor", command, MODEL, "--version", str(version.version), "--window", "1h")
    score_in_batch(test_x, loaded.predict(test_x))
    canary(train_x, train_y, test_x, version.version)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_and_predict(
    sample: pd.DataFrame, expected: list[int], rows: pd.DataFrame, labels: pd.Series
) -> None:
    port, grpc_port = free_port(), free_port()
    command = ["serve", f"models:/{MODEL}@production", "--port", str(port)]
    command += ["--grpc-port", str(grpc_port), "--log-format", "text", "--log-level", "warning"]
    command += ["--log-sample", "1.0"]  # the prediction log: every request, for drift
    print(f"\n$ seaway {' '.join(command)} &", flush=True)
    server = subprocess.Popen([sys.executable, "-m", "seaway", *command])
    url = f"http://127.0.0.1:{port}"
    try:
        with seaway.Client(url, timeout=10) as client:
            _wait_ready(client, server)
            print(
                f"Serving at {url} (Open Inference Protocol REST, /invocations) and gRPC on "
                f"127.0.0.1:{grpc_port}; metrics at {url}/metrics"
            )
            print("\n>>> seaway.Client(url).predict(MODEL, sample)")
            served = client.predict(MODEL, sample).tolist()
            print(served)
            assert served == expected, "the server disagrees with the loaded model"
            send_traffic(client, rows, labels)
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "rows.json"
            data.write_text(json.dumps(sample.to_dict("records")))
            cli("predict", MODEL, "--data", str(data), "--url", url, "--proba")
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(60)
        print(f"\nStopped the server (SIGTERM drains in-flight requests; exit code {code})")


def send_traffic(client: seaway.Client, rows: pd.DataFrame, labels: pd.Series) -> None:
    """Ordinary traffic with its true labels (as they might arrive later), then shifted traffic:
    larger amounts at night, and cards from a country the model never saw."""
    shifted = rows.assign(amount=rows["amount"] * 3, hour=rows["hour"] % 6, country="BR")
    for start in range(0, len(rows), 25):
        client.predict(MODEL, rows.iloc[start : start + 25])
        request_id = client.last_request_id
        client.feedback(MODEL, request_id, labels.iloc[start : start + 25].tolist())
        client.predict(MODEL, shifted.iloc[start : start + 25])
    print(
        f"\nSent {len(rows)} ordinary rows (with their true labels) and {len(rows)} shifted rows "
        "in requests of 25; the server logged each one"
    )


def score_in_batch(rows: pd.DataFrame, expected: np.ndarray) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "transactions.parquet", Path(tmp) / "scored"
        rows.assign(id=range(len(rows))).to_parquet(data, index=False)
        cli(
            "batch", "run", f"models:/{MODEL}@production", "--input", str(data),
            "--output", str(out), "--keep", "id", "--proba", "--chunk-rows", "200",
        )  # fmt: skip
        cli("batch", "list")
        scored = pd.read_parquet(out)  # the part files, in order
        print(f"\n{out}: {len(scored)} rows, columns {list(scored.columns)}")
        print(scored.head(3).to_string(index=False))
        assert scored["predict"].tolist() == expected.tolist(), "batch disagrees with the model"


def canary(train_x: pd.DataFrame, train_y: pd.Series, rows: pd.DataFrame, stable: int) -> None:
    """A second version takes 10% of a deployment's traffic; the results per version."""
    deeper = forest(trees=100, depth=10).fit(train_x, train_y)
    candidate = seaway.log_model(
        deeper, MODEL, sample_input=train_x.head(20), description="Deeper random forest"
    )
    print(f"\nRegistered {candidate.uri}: a deeper forest, to try on 10% of the traffic")
    spec = (
        f"name: {DEPLOYMENT}\nmodel: {MODEL}\nroutes:\n"
        f"  - {{version: production, weight: 90}}   # version {stable}\n"
        f"  - {{version: {candidate.version}, weight: 10}}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "canary.yaml"
        path.write_text(spec)
        print(f"\n{path.name}:\n{spec}", end="")
        cli("deploy", "apply", str(path))
    port, grpc_port = free_port(), free_port()
    command = ["serve", "--deployment", DEPLOYMENT, "--poll-interval", "1"]
    command += ["--port", str(port), "--grpc-port", str(grpc_port)]
    command += ["--log-format", "text", "--log-level", "warning"]
    print(f"\n$ seaway {' '.join(command)} &", flush=True)
    server = subprocess.Popen([sys.executable, "-m", "seaway", *command])
    url = f"http://127.0.0.1:{port}"
    try:
        with seaway.Client(url, timeout=10) as client:
            _wait_ready(client, server)
        answered = send_canary_traffic(url, rows)
        split = ", ".join(f"version {v}: {n}" for v, n in sorted(answered.items()))
        print(f"\nSent {len(rows)} requests to {DEPLOYMENT}, one row each.\nAnswered by {split}")
        _wait_counted(url, len(rows), server)
        cli("deploy", "results", DEPLOYMENT)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)


def send_canary_traffic(url: str, rows: pd.DataFrame) -> dict[str, int]:
    """One request per row; the version that answered each is in X-Seaway-Model-Version."""
    answered: dict[str, int] = {}
    with httpx.Client(base_url=url, timeout=10) as http:
        for record in rows.to_dict("records"):
            answer = http.post(
                f"/v2/models/{DEPLOYMENT}/invocations", json={"dataframe_records": [record]}
            )
            answer.raise_for_status()
            version = answer.headers["X-Seaway-Model-Version"]
            answered[version] = answered.get(version, 0) + 1
    return answered


def _wait_counted(url: str, sent: int, server: subprocess.Popen[bytes]) -> None:
    """Until the server has left the counts of every request in the registry (each poll)."""
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=url, timeout=10) as http:
        while True:
            arms = http.get(f"/v2/deployments/{DEPLOYMENT}/results").json()["arms"]
            if sum(arm["requests"] for arm in arms) >= sent:
                return
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not record the canary's requests")
            time.sleep(0.2)


def _wait_ready(client: seaway.Client, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not _ready(client):
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not come up (exit code {server.poll()})")
        time.sleep(0.3)


def _ready(client: seaway.Client) -> bool:
    try:
        return client.ready()
    except seaway.SeawayError:
        return False


if __name__ == "__main__":
    main()
