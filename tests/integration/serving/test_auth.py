"""`seaway serve --auth`: API keys over HTTP and gRPC, from the outside, with real clients.

Keys are made as users make them: with the registry API and with `seaway keys create`; one server
(module-scoped) answers every test that does not need its own flags.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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
from sklearn.linear_model import LogisticRegression
from tritonclient.utils import InferenceServerException

import seaway
from seaway.errors import AuthenticationError

UNAUTHENTICATED = "StatusCode.UNAUTHENTICATED"
PERMISSION_DENIED = "StatusCode.PERMISSION_DENIED"
#: well-formed (sw_ + 8-character id + 43-character secret) but never issued
UNKNOWN_KEY = "sw_zzzzzzzz_" + "A" * 43
#: Rate limits (requests/s) whose bucket holds one request and refills in 1000 s, far beyond any
#: test: what the limit lets through cannot depend on how fast the test sends. The burst and the
#: refill are checked against an injected clock (tests/unit/serving/test_authenticator.py).
SLOW_RATE = 0.001


@dataclass
class Served:
    server: Server
    home: Path
    keys: dict[str, str]
    model: LogisticRegression
    frame: pd.DataFrame


def _registry(home: Path) -> seaway.Registry:
    return seaway.Registry.from_settings(seaway.Settings.resolve(home=home))


def _fraud(home: Path) -> tuple[LogisticRegression, pd.DataFrame]:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(rng.normal(size=(80, 4)), columns=["age", "income", "score", "tenure"])
    model = LogisticRegression().fit(frame, (frame["age"] > 0).astype(np.int64))
    with _registry(home) as registry:
        seaway.log_model(model, "fraud", sample_input=frame.head(5), registry=registry)
    return model, frame


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("auth")
    home = root / "home"
    model, frame = _fraud(home)
    keys: dict[str, str] = {}
    with _registry(home) as registry:
        for label, scope, limit in [
            ("predict", "predict", None),
            ("admin", "admin", None),
            ("revoked", "predict", None),
            ("limited-http", "predict", SLOW_RATE),
            ("limited-grpc", "predict", SLOW_RATE),
        ]:
            _, key = registry.create_api_key(scope, name=label, rate_limit=limit)
            keys[label] = key
        registry.revoke_api_key(keys["revoked"])
    server = start_server(
        ["models:/fraud/1", "--auth", "--poll-interval", "0.2"], home, root / "server.log"
    )
    yield Served(server, home, keys, model, frame)
    server.stop(signal.SIGKILL)


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _body(rows: pd.DataFrame) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].tolist()}
            for c in rows.columns
        ]
    }


def _grpc_inputs(rows: pd.DataFrame) -> list[Any]:
    inputs = []
    for column in rows.columns:
        tensor = triton_grpc.InferInput(column, [len(rows)], "FP64")
        tensor.set_data_from_numpy(rows[column].to_numpy())
        inputs.append(tensor)
    return inputs


@pytest.fixture
def grpc_client(served: Served) -> Iterator[triton_grpc.InferenceServerClient]:
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{served.server.grpc_port}")
    yield client
    client.close()


def _grpc_error(call: Callable[[], Any]) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value


def _http_infer(served: Served, headers: dict[str, str] | None) -> httpx.Response:
    return httpx.post(
        f"{served.server.url}/v2/models/fraud/infer",
        json=_body(served.frame.head(3)),
        headers=headers,
        timeout=30,
    )


# ---- who gets in --------------------------------------------------------------------------------

#: Authorization values that must all get the same 401: none, unknown, malformed, revoked.
BAD_CREDENTIALS = {
    "missing": lambda keys: None,
    "unknown key": lambda keys: f"Bearer {UNKNOWN_KEY}",
    "not a seaway key": lambda keys: "Bearer not-a-seaway-key",
    "empty bearer": lambda keys: "Bearer",
    "basic scheme": lambda keys: "Basic dXNlcjpwYXNzd29yZA==",
    "key without scheme": lambda keys: keys["predict"],
    "revoked key": lambda keys: f"Bearer {keys['revoked']}",
}


def test_http_rejects_every_bad_credential_with_one_and_the_same_401(served: Served) -> None:
    messages = {}
    for case, credential in BAD_CREDENTIALS.items():
        value = credential(served.keys)
        headers = None if value is None else {"authorization": value}
        for method, path, body in [
            ("POST", "/v2/models/fraud/infer", _body(served.frame.head(2))),
            ("GET", "/v2/models/fraud", None),
            ("POST", "/v2/repository/index", None),
        ]:
            answer = httpx.request(
                method, f"{served.server.url}{path}", json=body, headers=headers, timeout=30
            )
            assert answer.status_code == 401, (case, path, answer.text)
            assert answer.headers.get("www-authenticate", "").lower().startswith("bearer"), (
                case,
                answer.headers,
            )
            messages[(case, path)] = answer.json()["error"]
    assert len(set(messages.values())) == 1, messages
    message = next(iter(messages.values()))
    assert "Bearer" in message  # says what to send
    for secret in (served.keys["predict"], served.keys["revoked"], UNKNOWN_KEY):
        assert secret not in message


def _grpc_calls(
    client: triton_grpc.InferenceServerClient, served: Served, headers: dict[str, str] | None
) -> dict[str, Callable[[], Any]]:
    """A predict-scope and an admin-scope call or two, each sending ``headers``."""
    return {
        "infer": lambda: client.infer(
            "fraud", _grpc_inputs(served.frame.head(2)), headers=headers, client_timeout=30
        ),
        "metadata": lambda: client.get_model_metadata("fraud", headers=headers, client_timeout=30),
        "index": lambda: client.get_model_repository_index(headers=headers, client_timeout=30),
    }


def test_grpc_rejects_every_bad_credential_with_one_and_the_same_unauthenticated(
    served: Served, grpc_client: triton_grpc.InferenceServerClient
) -> None:
    messages = {}
    for case, credential in BAD_CREDENTIALS.items():
        value = credential(served.keys)
        headers = None if value is None else {"authorization": value}
        for name, call in _grpc_calls(grpc_client, served, headers).items():
            error = _grpc_error(call)
            assert error.status() == UNAUTHENTICATED, (case, name, error)
            messages[(case, name)] = error.message()
    assert len(set(messages.values())) == 1, messages
    # the same words as over HTTP
    http = _http_infer(served, None).json()["error"]
    assert next(iter(messages.values())) == http


def test_health_endpoints_need_no_key(
    served: Served, grpc_client: triton_grpc.InferenceServerClient
) -> None:
    for path in ("/v2/health/live", "/v2/health/ready", "/ping"):
        answer = httpx.get(f"{served.server.url}{path}", timeout=10)
        assert answer.status_code == 200, (path, answer.text)
    assert grpc_client.is_server_live(client_timeout=10)
    assert grpc_client.is_server_ready(client_timeout=10)


# ---- what each scope may do ---------------------------------------------------------------------


def test_a_predict_key_infers_and_reads_metadata_over_http(served: Served) -> None:
    headers = _bearer(served.keys["predict"])
    rows = served.frame.head(5)
    answer = httpx.post(
        f"{served.server.url}/v2/models/fraud/infer", json=_body(rows), headers=headers, timeout=30
    )
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
    assert outputs["predict"] == served.model.predict(rows).tolist()
    meta = httpx.get(f"{served.server.url}/v2/models/fraud", headers=headers, timeout=30)
    assert meta.status_code == 200 and meta.json()["name"] == "fraud", meta.text
    mlflow = httpx.post(
        f"{served.server.url}/invocations",
        json={"dataframe_records": rows.to_dict("records")},
        headers=headers,
        timeout=30,
    )
    assert mlflow.status_code == 200, mlflow.text
    assert mlflow.json() == {"predictions": served.model.predict(rows).tolist()}


def test_a_predict_key_infers_and_reads_metadata_over_grpc(
    served: Served, grpc_client: triton_grpc.InferenceServerClient
) -> None:
    headers = _bearer(served.keys["predict"])
    rows = served.frame.head(5)
    result = grpc_client.infer("fraud", _grpc_inputs(rows), headers=headers, client_timeout=30)
    np.testing.assert_array_equal(result.as_numpy("predict"), served.model.predict(rows))
    meta = grpc_client.get_model_metadata("fraud", headers=headers, as_json=True, client_timeout=30)
    assert meta["name"] == "fraud"
    assert grpc_client.is_model_ready("fraud", headers=headers, client_timeout=30)


@pytest.mark.parametrize(
    "path",
    [
        "/v2/repository/index",
        "/v2/repository/models/fraud/load",
        "/v2/repository/models/fraud/unload",
    ],
)
def test_a_predict_key_gets_403_on_repository_endpoints_over_http(
    served: Served, path: str
) -> None:
    answer = httpx.post(
        f"{served.server.url}{path}", headers=_bearer(served.keys["predict"]), timeout=30
    )
    assert answer.status_code == 403, answer.text
    assert "admin" in answer.json()["error"]  # names the scope the call needs
    assert "www-authenticate" not in answer.headers
    # and the model is still served (the unload did not happen)
    assert _http_infer(served, _bearer(served.keys["predict"])).status_code == 200


def test_a_predict_key_gets_permission_denied_on_repository_calls_over_grpc(
    served: Served, grpc_client: triton_grpc.InferenceServerClient
) -> None:
    headers = _bearer(served.keys["predict"])
    calls: dict[str, Callable[[], Any]] = {
        "index": lambda: grpc_client.get_model_repository_index(headers=headers, client_timeout=30),
        "load": lambda: grpc_client.load_model("fraud", headers=headers, client_timeout=30),
        "unload": lambda: grpc_client.unload_model("fraud", headers=headers, client_timeout=30),
    }
    for name, call in calls.items():
        error = _grpc_error(call)
        assert error.status() == PERMISSION_DENIED, (name, error)
        assert "admin" in error.message(), (name, error)
    assert grpc_client.is_model_ready("fraud", headers=headers, client_timeout=30)


def test_an_admin_key_may_infer_and_manage_the_repository_over_http(served: Served) -> None:
    headers = _bearer(served.keys["admin"])
    url = served.server.url
    assert _http_infer(served, headers).status_code == 200
    index = httpx.post(f"{url}/v2/repository/index", headers=headers, timeout=30)
    assert index.status_code == 200, index.text
    assert [(e["name"], e["version"], e["state"]) for e in index.json()] == [
        ("fraud", "1", "READY")
    ]
    load = httpx.post(
        f"{url}/v2/repository/models/fraud/load",
        json={"parameters": {"version": 1}},
        headers=headers,
        timeout=60,
    )
    assert load.status_code == 200, load.text
    # past the key check: an unknown model is the repository's 404, not an auth error
    unload = httpx.post(f"{url}/v2/repository/models/nope/unload", headers=headers, timeout=60)
    assert unload.status_code == 404, unload.text
    assert _http_infer(served, headers).status_code == 200


def test_an_admin_key_may_infer_and_manage_the_repository_over_grpc(
    served: Served, grpc_client: triton_grpc.InferenceServerClient
) -> None:
    headers = _bearer(served.keys["admin"])
    rows = served.frame.head(2)
    result = grpc_client.infer("fraud", _grpc_inputs(rows), headers=headers, client_timeout=30)
    np.testing.assert_array_equal(result.as_numpy("predict"), served.model.predict(rows))
    index = grpc_client.get_model_repository_index(headers=headers, as_json=True, client_timeout=30)
    assert [(m["name"], m["version"], m["state"]) for m in index["models"]] == [
        ("fraud", "1", "READY")
    ]
    grpc_client.load_model("fraud", headers=headers, client_timeout=60)
    error = _grpc_error(
        lambda: grpc_client.unload_model("nope", headers=headers, client_timeout=60)
    )
    assert error.status() == "StatusCode.NOT_FOUND", error
    assert grpc_client.is_model_ready("fraud", headers=headers, client_timeout=30)


def test_the_python_client_raises_auth_errors_as_seaway_exceptions(served: Served) -> None:
    rows = served.frame.head(2)
    with seaway.Client(served.server.url, api_key=served.keys["predict"], timeout=30) as client:
        np.testing.assert_array_equal(client.predict("fraud", rows), served.model.predict(rows))
    with (
        seaway.Client(served.server.url, api_key=UNKNOWN_KEY, timeout=30) as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.predict("fraud", rows)
    assert "401" in str(info.value) and "Bearer" in str(info.value)
    with seaway.Client(served.server.url, timeout=30) as client:
        with pytest.raises(AuthenticationError):
            client.predict("fraud", rows)
        assert client.live()  # health needs no key


# ---- keys come and go while the server runs -----------------------------------------------------


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEAWAY_HOME": str(home)}
    for var in ("SEAWAY_REGISTRY_URL", "SEAWAY_ARTIFACT_ROOT", "SEAWAY_CONFIG"):
        env.pop(var, None)
    return subprocess.run(
        [sys.executable, "-m", "seaway", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _within(seconds: float, condition: Callable[[], bool]) -> float:
    """Seconds until ``condition()`` held; fails after ``seconds``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(0.1)
    return time.monotonic() - started


def test_keys_made_and_revoked_with_the_cli_take_effect_within_seconds(
    served: Served, grpc_client: triton_grpc.InferenceServerClient
) -> None:
    created = _cli(served.home, "keys", "create", "--scope", "predict", "--name", "cli key")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sw_") and "\n" not in key, created.stdout
    key_id = key.split("_")[1]
    headers = _bearer(key)

    # the server picks the new key up at its next poll
    _within(5, lambda: _http_infer(served, headers).status_code == 200)
    rows = served.frame.head(2)
    grpc_client.infer("fraud", _grpc_inputs(rows), headers=headers, client_timeout=30)

    revoked = _cli(served.home, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert key_id in revoked.stdout and "revoked" in revoked.stdout
    _within(5, lambda: _http_infer(served, headers).status_code == 401)
    answer = _http_infer(served, headers)
    assert answer.json()["error"] == _http_infer(served, None).json()["error"]
    error = _grpc_error(
        lambda: grpc_client.infer("fraud", _grpc_inputs(rows), headers=headers, client_timeout=30)
    )
    assert error.status() == UNAUTHENTICATED
    # other keys are untouched
    assert _http_infer(served, _bearer(served.keys["predict"])).status_code == 200


# ---- rate limits ----------------------------------------------------------------------------------


def _retry_after(answer: httpx.Response) -> int:
    value = answer.headers.get("retry-after")
    assert value is not None and value.isdigit(), answer.headers
    assert int(value) >= 1
    return int(value)


def test_a_key_over_its_own_rate_limit_gets_429_with_retry_after(served: Served) -> None:
    headers = _bearer(served.keys["limited-http"])
    answers = [_http_infer(served, headers) for _ in range(4)]
    statuses = [a.status_code for a in answers]
    assert statuses == [200, 429, 429, 429], statuses  # the burst: one request, at this rate
    limited = answers[1]
    # honest: the next request may go when the bucket has refilled, 1000 s after the first
    assert 900 <= _retry_after(limited) <= 1000, limited.headers
    assert "rate limit" in limited.json()["error"]
    assert served.keys["limited-http"] not in limited.json()["error"]
    # other keys are not limited by it
    assert _http_infer(served, _bearer(served.keys["predict"])).status_code == 200


def test_a_key_over_its_own_rate_limit_gets_resource_exhausted_over_grpc(
    served: Served, grpc_client: triton_grpc.InferenceServerClient
) -> None:
    headers = _bearer(served.keys["limited-grpc"])
    rows = served.frame.head(2)
    codes, messages = [], []
    for _ in range(6):
        try:
            grpc_client.infer("fraud", _grpc_inputs(rows), headers=headers, client_timeout=30)
            codes.append("OK")
        except InferenceServerException as exc:
            codes.append(str(exc.status()))
            messages.append(str(exc.message()))
    assert messages and all("rate limit" in m for m in messages), messages
    assert codes == ["OK"] + ["StatusCode.RESOURCE_EXHAUSTED"] * 5, codes


# ---- a server serving only a package folder, with a default rate limit ---------------------------


@pytest.fixture(scope="module")
def folder_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`--auth --rate-limit 0.001` on a server that serves a package folder, not a registered
    model: the keys still come from the registry in SEAWAY_HOME."""
    root = tmp_path_factory.mktemp("auth-folder")
    home = root / "home"
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(60, 4)), columns=["age", "income", "score", "tenure"])
    model = LogisticRegression().fit(frame, (frame["score"] > 0).astype(np.int64))
    seaway.save_model(model, root / "fraud", sample_input=frame.head(5))
    keys = {}
    with _registry(home) as registry:
        for label, limit in [("default", None), ("own", 50.0), ("plain", None)]:
            keys[label] = registry.create_api_key("predict", name=label, rate_limit=limit)[1]
    server = start_server(
        [str(root / "fraud"), "--auth", "--rate-limit", str(SLOW_RATE), "--poll-interval", "0.2"],
        home,
        root / "server.log",
    )
    yield Served(server, home, keys, model, frame)
    server.stop(signal.SIGKILL)


def test_auth_works_on_a_server_serving_a_package_folder(folder_served: Served) -> None:
    served = folder_served
    assert _http_infer(served, None).status_code == 401
    assert _http_infer(served, {"authorization": f"Bearer {UNKNOWN_KEY}"}).status_code == 401
    answer = _http_infer(served, _bearer(served.keys["plain"]))
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
    assert outputs["predict"] == served.model.predict(served.frame.head(3)).tolist()
    assert httpx.get(f"{served.server.url}/v2/health/ready", timeout=10).status_code == 200


def test_the_server_rate_limit_applies_to_keys_without_their_own(folder_served: Served) -> None:
    served = folder_served
    headers = _bearer(served.keys["default"])
    answers = [_http_infer(served, headers) for _ in range(4)]
    statuses = [a.status_code for a in answers]
    assert statuses == [200, 429, 429, 429], statuses
    assert 900 <= _retry_after(answers[1]) <= 1000, answers[1].headers
    assert "0.001 requests/s" in answers[1].json()["error"]
    # gRPC counts against the same key
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{served.server.grpc_port}")
    try:
        error = _grpc_error(
            lambda: client.infer(
                "fraud", _grpc_inputs(served.frame.head(2)), headers=headers, client_timeout=30
            )
        )
    finally:
        client.close()
    assert error.status() == "StatusCode.RESOURCE_EXHAUSTED", error


def test_a_key_with_its_own_rate_limit_is_not_held_to_the_server_default(
    folder_served: Served,
) -> None:
    headers = _bearer(folder_served.keys["own"])
    statuses = [_http_infer(folder_served, headers).status_code for _ in range(5)]
    assert statuses == [200] * 5, statuses
