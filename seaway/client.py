"""``seaway.Client``: call a Seaway (or any Open Inference Protocol) server from Python.

DataFrames and lists of records travel as one tensor per column, arrays as one tensor named
after the model's input (learnt once from its metadata), dicts as named tensors; missing values
as ``null``. The server checks them with the model's signature, exactly as ``Model.predict``
does, so both accept and refuse the same rows. HTTP errors come back as the same Seaway
exceptions the server raised (``InvalidInputError`` for a 400, ``NotFoundError`` for a 404, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import numpy as np
import pandas as pd

from seaway.errors import (
    AuthenticationError,
    InferenceTimeoutError,
    InvalidInputError,
    ModelUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    SeawayError,
    ServerBusyError,
    ServingError,
)
from seaway.packaging.signature import NO_ROWS
from seaway.types import Datatype

_STATUS_ERRORS: dict[int, type[SeawayError]] = {
    400: InvalidInputError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: InvalidInputError,
    415: InvalidInputError,
    503: ModelUnavailableError,
    504: InferenceTimeoutError,
}


class Client:
    def __init__(
        self,
        url: str = "http://127.0.0.1:8080",
        *,
        timeout: float = 30.0,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
    ) -> None:
        """``verify``: check the server's TLS certificate (``True``), against a CA bundle or
        self-signed certificate file (a path), or not at all (``False``)."""
        all_headers = dict(headers or {})
        if api_key:
            all_headers["Authorization"] = f"Bearer {api_key}"
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, headers=all_headers, verify=_verify(verify)
        )
        self._metadata: dict[tuple[str, str | None], dict[str, Any]] = {}
        #: The request id the server answered this client's latest inference with (its
        #: ``X-Request-ID``): what the prediction log files it under, and what ``feedback`` takes.
        #: With calls from several threads, pass ``request_id=`` instead.
        self.last_request_id: str | None = None
        #: the version that answered the last prediction (a deployment picks one per request)
        self.last_model_version: str | None = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ---- calls ---------------------------------------------------------------------------------

    def live(self) -> bool:
        return self._get("/v2/health/live", allow=(200, 503)).status_code == 200

    def ready(self, model: str | None = None, version: str | int | None = None) -> bool:
        path = "/v2/health/ready" if model is None else f"{_model_path(model, version)}/ready"
        return self._get(path, allow=(200, 503)).status_code == 200

    def metadata(self, model: str, version: str | int | None = None) -> dict[str, Any]:
        key = (model, None if version is None else str(version))
        if key not in self._metadata:
            self._metadata[key] = self._get(_model_path(model, version)).json()
        return self._metadata[key]

    def classes(self, model: str, version: str | int | None = None) -> list[Any] | None:
        """A classifier's class labels, in the order of ``predict_proba``'s columns (from the
        model's metadata); None for other models and packages logged before they were recorded."""
        for output in self.metadata(model, version).get("outputs") or []:
            classes = (output.get("parameters") or {}).get("classes")
            if isinstance(classes, list):
                return classes
        return None

    def predict(
        self,
        model: str,
        inputs: Any,
        *,
        version: str | int | None = None,
        outputs: Sequence[str] | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The model's ``predict`` output as an array; with ``outputs=[...]``, a dict of them.
        ``request_id`` is sent as ``X-Request-ID`` (else the server makes one up); either way
        ``last_request_id`` holds it afterwards, and ``last_model_version`` the version that
        answered. ``headers``: more to send, such as an A/B test's sticky key."""
        result = self.infer(
            model,
            inputs,
            version=version,
            outputs=outputs or ["predict"],
            request_id=request_id,
            headers=headers,
        )
        return result if outputs else result["predict"]

    def predict_proba(
        self,
        model: str,
        inputs: Any,
        *,
        version: str | int | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        return self.infer(
            model,
            inputs,
            version=version,
            outputs=["predict_proba"],
            request_id=request_id,
            headers=headers,
        )["predict_proba"]

    def infer(
        self,
        model: str,
        inputs: Any,
        *,
        version: str | int | None = None,
        outputs: Sequence[str] | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, np.ndarray[Any, Any]]:
        """The ``outputs`` named, by name; none named: what the model's ``predict`` gives (a
        Seaway server returns a classifier's ``predict_proba`` only when it is named)."""
        body: dict[str, Any] = {"inputs": self._tensors(model, version, inputs)}
        if outputs:
            body["outputs"] = [{"name": name} for name in outputs]
        sent = dict(headers or {})
        if request_id is not None:
            sent["X-Request-ID"] = request_id
        answer = self._request(
            "POST", f"{_model_path(model, version)}/infer", json=body, headers=sent or None
        )
        self.last_request_id = answer.headers.get("x-request-id", request_id)
        doc = answer.json()
        self.last_model_version = doc.get("model_version")
        return {out["name"]: _decode(out) for out in doc["outputs"]}

    def outcome(
        self,
        model: str,
        value: float | None = None,
        *,
        request_id: str | None = None,
        key: str | None = None,
        items: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Report an A/B test's outcome (a conversion: 1 or 0, or any number) of one answer, by
        its ``request_id`` (``last_request_id``) or the test's sticky ``key``; or many as
        ``items=[{"id"|"key": ..., "value": ...}, ...]``. Returns the server's answer: how many
        it counted (``accepted``) and the ids it did not know (``unmatched``)."""
        if items is None:
            if value is None or (request_id is None) == (key is None):
                raise InvalidInputError(
                    "an outcome needs a value and one of request_id= or key= (or items=)"
                )
            item: dict[str, Any] = {"value": _plain(value)}
            item.update({"id": request_id} if request_id is not None else {"key": key})
            items = [item]
        body = {"outcomes": [{k: _plain(v) for k, v in entry.items()} for entry in items]}
        answer: dict[str, Any] = self._request(
            "POST", f"/v2/models/{model}/outcome", json=body
        ).json()
        return answer

    def feedback(
        self,
        model: str,
        request_id: str | None = None,
        labels: Any = None,
        *,
        items: Sequence[Mapping[str, Any]] | None = None,
        version: str | int | None = None,
    ) -> int:
        """Send the true labels of a request's rows (one per row, in order; a single value for a
        one-row request), or ``items=[{"request_id", "row", "label"}, ...]``; returns how many
        the server stored. The request id is the one its prediction got (``last_request_id``).
        More labels than the server takes in one request (100,000) go in several requests."""
        from seaway.monitoring.feedback import MAX_ITEMS

        path = f"{_model_path(model, version)}/feedback"
        if items is not None:
            if request_id is not None or labels is not None:
                raise InvalidInputError("pass request_id and labels, or items, not both")
            entries = [{k: _plain(v) for k, v in item.items()} for item in items]
        else:
            if request_id is None or labels is None:
                raise InvalidInputError(
                    "feedback needs the request_id of the prediction and its labels (or items=)"
                )
            values = np.asarray(labels, dtype=object)
            rows = [_plain(v) for v in ([values.item()] if values.ndim == 0 else values.ravel())]
            if len(rows) <= MAX_ITEMS:
                body = {"request_id": request_id, "labels": rows}
                return int(self._request("POST", path, json=body).json()["accepted"])
            entries = [{"request_id": request_id, "row": n, "label": v} for n, v in enumerate(rows)]
        accepted = 0
        for start in range(0, max(len(entries), 1), MAX_ITEMS):  # empty: the server's 400
            body = {"items": entries[start : start + MAX_ITEMS]}
            accepted += int(self._request("POST", path, json=body).json()["accepted"])
        return accepted

    # ---- internals ------------------------------------------------------------------------------

    def _tensors(self, model: str, version: str | int | None, inputs: Any) -> list[dict[str, Any]]:
        if _is_records(inputs):  # rows as dicts, as Model.predict takes them: one column each
            inputs = pd.DataFrame.from_records(list(inputs))
        if isinstance(inputs, pd.DataFrame):
            return [_encode(str(col), inputs[col].to_numpy()) for col in inputs.columns]
        if isinstance(inputs, Mapping):
            return [_encode(str(name), np.asarray(value)) for name, value in inputs.items()]
        meta_inputs = self.metadata(model, version).get("inputs") or [{"name": "input"}]
        array = np.asarray(inputs)
        if array.ndim and array.shape[0] == 0:  # as the server would answer, without asking it
            raise InvalidInputError(NO_ROWS)
        # a dataframe model takes one 2-D tensor with its columns in order, under any name
        dataframe_model = len(meta_inputs) > 1 and array.ndim == 2
        name = "input" if dataframe_model else meta_inputs[0]["name"]
        return [_encode(name, array)]

    def _get(self, path: str, allow: Sequence[int] = (200,)) -> httpx.Response:
        return self._request("GET", path, allow=allow)

    def _request(
        self, method: str, path: str, allow: Sequence[int] = (200,), **kwargs: Any
    ) -> httpx.Response:
        try:
            answer = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise InferenceTimeoutError(f"{self.url}{path} did not answer in time: {exc}") from exc
        except httpx.HTTPError as exc:
            raise ModelUnavailableError(f"cannot reach the server at {self.url}: {exc}") from exc
        if answer.status_code in allow:
            return answer
        try:
            message = answer.json().get("error") or answer.json().get("message") or answer.text
        except ValueError:
            message = answer.text
        message = f"{answer.status_code} from {self.url}{path}: {message}"
        if answer.status_code == 429:
            raise ServerBusyError(message, float(answer.headers.get("Retry-After", "1")))
        raise _STATUS_ERRORS.get(answer.status_code, ServingError)(message)


def _plain(value: Any) -> Any:
    """A label as JSON takes it: numpy scalars as Python ones, bytes as text."""
    if isinstance(value, np.generic):
        value = value.item()
    return value.decode() if isinstance(value, bytes) else value


def _verify(verify: bool | str) -> Any:
    if isinstance(verify, str):
        import ssl

        try:
            return ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInputError(f"cannot read the CA file {verify}: {exc}") from exc
    return verify


def _model_path(model: str, version: str | int | None) -> str:
    return f"/v2/models/{model}" if version is None else f"/v2/models/{model}/versions/{version}"


def _is_records(inputs: Any) -> bool:
    return (
        isinstance(inputs, list | tuple)
        and bool(inputs)
        and all(isinstance(row, Mapping) for row in inputs)
    )


def _encode(name: str, array: np.ndarray[Any, Any]) -> dict[str, Any]:
    """One JSON tensor. Missing values (NaN, None) go as ``null``, as the protocol writes them,
    so the server's signature decides about them as ``Model.predict`` does (not ``"None"``)."""
    datatype = Datatype.from_numpy(array.dtype)
    if datatype is Datatype.BYTES:
        data: list[Any] = [_text(v) for v in array.ravel()]
    else:
        data = array.ravel().tolist()
        if array.dtype.kind == "f" and np.isnan(array).any():
            data = [None if v != v else v for v in data]  # NaN is not JSON
    return {"name": name, "shape": list(array.shape), "datatype": datatype.value, "data": data}


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(tensor: Mapping[str, Any]) -> np.ndarray[Any, Any]:
    datatype = Datatype(tensor["datatype"])
    dtype = object if datatype is Datatype.BYTES else datatype.numpy_dtype
    return np.array(tensor.get("data", []), dtype=dtype).reshape(tensor["shape"])
