"""The OpenAPI description of the REST API, written out rather than derived: the infer route takes
raw bytes (JSON or the binary tensor extension), which no model class describes faithfully.

The description is built per request from the models served at that moment: each served model
gets its own infer path (``/v2/models/fraud/infer``) whose request body names its inputs, their
datatypes and shapes (the component ``fraud.InferRequest``), beside the generic templated path.
The ``/docs`` page renders it with Swagger UI, whose files come from an installed package
(``seaway[swagger]``), never from the network: a server with no internet access still shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seaway.protocol.types import TensorMetadata
from seaway.serving.http.openapi_deployments import DEPLOYMENT_PATHS, SCORING_PATHS
from seaway.serving.http.openapi_parts import DATATYPE as _DATATYPE
from seaway.serving.http.openapi_parts import HEADER_LENGTH as _HEADER_LENGTH
from seaway.serving.http.openapi_parts import NAME as _NAME
from seaway.serving.http.openapi_parts import SCHEMAS as _SCHEMAS
from seaway.serving.http.openapi_parts import VERSION as _VERSION
from seaway.serving.http.openapi_parts import VERSION_HEADER as _VERSION_HEADER
from seaway.serving.http.openapi_parts import errors as _errors
from seaway.serving.http.openapi_parts import get as _get
from seaway.serving.http.openapi_parts import json_response as _json_response
from seaway.serving.http.openapi_parts import ref as _ref


def _infer(
    versioned: bool, body: str = "InferRequest", summary: str | None = None
) -> dict[str, Any]:
    parameters = [_NAME, _VERSION, _HEADER_LENGTH] if versioned else [_NAME, _HEADER_LENGTH]
    return {
        "post": {
            "summary": summary
            or "Run inference (Open Inference Protocol); binary tensor extension supported",
            "parameters": parameters if body == "InferRequest" else [_HEADER_LENGTH],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref(body)},
                    "application/octet-stream": {
                        "schema": {"type": "string", "format": "binary"},
                        "description": "JSON header of Inference-Header-Content-Length bytes, then tensor bytes",
                    },
                },
            },
            "responses": {
                "200": {
                    **_json_response("inference result", _ref("InferResponse")),
                    "headers": _VERSION_HEADER,
                },
                **_errors(400, 401, 403, 404, 413, 429, 503, 504),
            },
        }
    }


@dataclass(frozen=True)
class ServedModelDoc:
    """What the description says of one served model (its default version)."""

    name: str
    version: str
    inputs: tuple[TensorMetadata, ...]
    outputs: tuple[TensorMetadata, ...]
    #: a dataframe model: it also takes all its columns as one 2-D tensor
    columns: bool = False


_DATA_ITEMS: dict[str, dict[str, Any]] = {
    "BOOL": {"type": "boolean"},
    "BYTES": {"type": "string"},
    **{kind: {"type": "integer"} for kind in ("INT8", "INT16", "INT32", "INT64")},
    **{kind: {"type": "integer", "minimum": 0} for kind in ("UINT8", "UINT16", "UINT32", "UINT64")},
    **{kind: {"type": "number"} for kind in ("FP16", "FP32", "FP64")},
}


def _input_tensor(spec: TensorMetadata) -> dict[str, Any]:
    """One named input: its name and datatype fixed, its shape's rank fixed (``-1``: any size)."""
    datatype = spec.datatype.value
    rank = len(spec.shape)
    items = _DATA_ITEMS[datatype] if rank == 1 else {}  # nested or flat beyond one dimension
    return {
        "type": "object",
        "description": f"{spec.name}: {datatype} {list(spec.shape)} (-1 = any size)",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string", "enum": [spec.name]},
            "shape": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0},
                "minItems": rank,
                "maxItems": rank,
            },
            "datatype": {"type": "string", "enum": [datatype]},
            "data": {"type": "array", "items": items},
            "parameters": {"type": "object"},
        },
    }


def _matrix(model: ServedModelDoc) -> dict[str, Any]:
    """A dataframe model's other form: all its columns as one 2-D tensor, in signature order."""
    names = [spec.name for spec in model.inputs]
    return {
        "type": "object",
        "description": (
            f"all {len(names)} columns as one 2-D tensor [rows, {len(names)}] in the order "
            f"{names}; each column is cast to its own datatype where no value changes "
            "(see docs/serving.md)"
        ),
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0},
                "minItems": 2,
                "maxItems": 2,
            },
            "datatype": _DATATYPE,
            "data": {"type": "array", "items": {}},
            "parameters": {"type": "object"},
        },
    }


def _model_request(model: ServedModelDoc) -> dict[str, Any]:
    tensors = [_input_tensor(spec) for spec in model.inputs]
    if model.columns:
        tensors.append(_matrix(model))
    outputs = [spec.name for spec in model.outputs]
    generic = _SCHEMAS["InferRequest"]["properties"]
    description = f"an infer request for model {model.name!r} (version {model.version})"
    classes = next(
        (s.parameters["classes"] for s in model.outputs if "classes" in s.parameters), None
    )
    if classes is not None:  # what predict answers, and predict_proba's columns in order
        description += f"; its classes, in predict_proba's column order: {list(classes)}"
    return {
        "type": "object",
        "description": description,
        **({"x-classes": list(classes)} if classes is not None else {}),
        "required": ["inputs"],
        "properties": {
            "id": generic["id"],
            "parameters": generic["parameters"],
            "inputs": {
                "type": "array",
                "minItems": 1,
                "items": {"oneOf": tensors} if tensors else _ref("Tensor"),
            },
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", **({"enum": outputs} if outputs else {})},
                        "parameters": {"type": "object"},
                    },
                },
            },
        },
    }


def _text(summary: str, media: str, *codes: int) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {
                "200": {"description": "OK", "content": {media: {"schema": {"type": "string"}}}},
                **_errors(*codes),
            },
        }
    }


def _repository(summary: str, body: bool, *codes: int) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [_NAME],
        "responses": {"200": {"description": "done"}, **_errors(*codes)},
    }
    if body:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": _ref("RepositoryLoad")}},
        }
    return {"post": operation}


_SCHEMAS["RepositoryLoad"] = {
    "type": "object",
    "description": "no parameters: re-resolve what is served (or the latest version, if new)",
    "properties": {
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "maxProperties": 1,
            "properties": {
                "version": {"type": ["integer", "string"]},
                "alias": {"type": "string"},
            },
        }
    },
}


_SCHEMAS["FeedbackItem"] = {
    "type": "object",
    "required": ["request_id", "label"],
    "additionalProperties": False,
    "properties": {
        "request_id": {"type": "string", "minLength": 1},
        "row": {"type": "integer", "minimum": 0, "default": 0},
        "label": {
            "description": "the true class or value",
            "type": ["string", "number", "boolean"],
        },
    },
}
_SCHEMAS["FeedbackRequest"] = {
    "type": "object",
    "description": "the labels of one request's rows, in order, or items naming their rows",
    "additionalProperties": False,
    "properties": {
        "request_id": {
            "type": "string",
            "minLength": 1,
            "description": "the X-Request-ID the prediction was answered with",
        },
        "labels": {
            "type": "array",
            "minItems": 1,
            "items": {"type": ["string", "number", "boolean"]},
        },
        "items": {"type": "array", "minItems": 1, "items": _ref("FeedbackItem")},
    },
    "oneOf": [{"required": ["request_id", "labels"]}, {"required": ["items"]}],
}


def _feedback(versioned: bool) -> dict[str, Any]:
    return {
        "post": {
            "summary": "True labels of logged predictions, joined to them by request id; the "
            "latest label of a row wins",
            "parameters": [_NAME, _VERSION] if versioned else [_NAME],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("FeedbackRequest")}},
            },
            "responses": {
                "200": _json_response(
                    "stored",
                    {
                        "type": "object",
                        "properties": {
                            "model_name": {"type": "string"},
                            "accepted": {"type": "integer"},
                        },
                    },
                ),
                **_errors(400, 401, 403, 404, 413, 415),
            },
        }
    }


def openapi_spec(version: str, models: Sequence[ServedModelDoc] = ()) -> dict[str, Any]:
    named = {"parameters": [_NAME]}
    versioned = {"parameters": [_NAME, _VERSION]}
    metadata = _get("Model metadata: inputs and outputs", {"type": "object"}, 404)
    ready = _get("Model readiness", {"type": "object"}, 404, 503)
    schemas = dict(_SCHEMAS)
    served: dict[str, Any] = {}
    for model in sorted(models, key=lambda m: m.name):
        component = f"{model.name}.InferRequest"
        schemas[component] = _model_request(model)
        inputs = ", ".join(f"{s.name} {s.datatype.value}{list(s.shape)}" for s in model.inputs)
        served[f"/v2/models/{model.name}/infer"] = _infer(
            False, component, f"Infer with {model.name!r} (version {model.version}): {inputs}"
        )
    return {
        "openapi": "3.1.0",
        "info": {"title": "Seaway inference server", "version": version},
        "paths": {
            "/v2/health/live": _get("Server liveness", {"type": "object"}),
            "/v2/health/ready": _get(
                "Server readiness (all models loaded and warm)", {"type": "object"}, 503
            ),
            "/v2": _get("Server metadata", {"type": "object"}),
            "/v2/models": _get("Served models", {"type": "object"}),
            "/v2/models/{name}": {**metadata, **named},
            "/v2/models/{name}/versions/{version}": {**metadata, **versioned},
            "/v2/models/{name}/ready": {**ready, **named},
            "/v2/models/{name}/versions/{version}/ready": {**ready, **versioned},
            **served,
            "/v2/models/{name}/infer": _infer(False),
            "/v2/models/{name}/versions/{version}/infer": _infer(True),
            "/v2/models/{name}/feedback": _feedback(False),
            "/v2/models/{name}/versions/{version}/feedback": _feedback(True),
            "/v2/repository/index": {
                "post": {
                    "summary": "Served model versions and their state",
                    "responses": {"200": _json_response("OK", {"type": "array"})},
                }
            },
            "/v2/repository/models/{name}/load": _repository(
                "Load (or swap to) a version, an alias or the latest; answers once it serves",
                True,
                400,
                401,
                403,
                404,
                503,
            ),
            "/v2/repository/models/{name}/unload": _repository(
                "Stop serving a model (in-flight requests finish)", False, 401, 403, 404
            ),
            **SCORING_PATHS,
            "/ping": _get("MLflow/SageMaker health check", None, 503),
            "/health": _get("Health check (as /ping)", None, 503),
            "/version": _text("Seaway's version", "text/plain"),
            "/metrics": _text("Prometheus metrics", "text/plain", 400),
            "/openapi.json": _get("This description", {"type": "object"}),
            "/docs": _text("This description, rendered (Swagger UI)", "text/html"),
            **DEPLOYMENT_PATHS,
        },
        "components": {"schemas": schemas},
    }


#: The Swagger UI files the /docs page uses, served from ``/docs/NAME``: nothing else is.
DOCS_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
#: Relative URLs, so the page also works behind a proxy that serves the API under a prefix.
DOCS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Seaway inference server</title>
<link rel="icon" type="image/png" href="docs/favicon-32x32.png">
<link rel="stylesheet" href="docs/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "openapi.json", dom_id: "#ui"});</script>
<noscript>The API description is at <a href="openapi.json">openapi.json</a>.</noscript>
</body></html>
"""
#: What /docs shows when Swagger UI's files are not installed (no CDN: the page must not depend
#: on the network, and a half-loaded page would explain nothing).
DOCS_MISSING_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Seaway inference server</title></head>
<body><h1>Seaway inference server</h1>
<p>This page renders the API description with Swagger UI, whose files are not installed on this
server. Install them with <code>pip install 'seaway[swagger]'</code> (the package
<code>swagger-ui-bundle-v2</code>) and restart the server.</p>
<p>The API description itself is at <a href="openapi.json">openapi.json</a>.</p>
</body></html>
"""


def swagger_ui_folder() -> Path | None:
    """The installed Swagger UI files (``seaway[swagger]``), or None when they are not."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    folder = Path(str(swagger_ui_bundle.swagger_ui_path))
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def docs_page() -> str:
    return DOCS_HTML if swagger_ui_folder() is not None else DOCS_MISSING_HTML


def docs_asset(name: str) -> tuple[bytes, str] | None:
    """``(content, media type)`` of one of :data:`DOCS_ASSETS`; None for any other name, or
    when Swagger UI is not installed."""
    media = DOCS_ASSETS.get(name)
    folder = swagger_ui_folder()
    if media is None or folder is None:
        return None
    return (folder / name).read_bytes(), media
