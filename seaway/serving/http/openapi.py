"""The OpenAPI description of the REST API, written out rather than derived: the infer route takes
raw bytes (JSON or the binary tensor extension), which no model class describes faithfully."""

from __future__ import annotations

from typing import Any

_TENSOR = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {
            "type": "string",
            "enum": [
                "BOOL",
                "UINT8",
                "UINT16",
                "UINT32",
                "UINT64",
                "INT8",
                "INT16",
                "INT32",
                "INT64",
                "FP16",
                "FP32",
                "FP64",
                "BYTES",
            ],
        },
        "parameters": {"type": "object"},
        "data": {"description": "row-major values, nested or flat", "type": "array", "items": {}},
    },
}
_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_SCHEMAS: dict[str, Any] = {
    "Tensor": _TENSOR,
    "InferRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
                },
            },
        },
    },
    "InferResponse": {
        "type": "object",
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
        },
    },
    "Error": _ERROR,
    "MlflowRequest": {
        "type": "object",
        "description": "exactly one of dataframe_split, dataframe_records, instances, inputs",
        "properties": {
            "dataframe_split": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array"}},
                },
            },
            "dataframe_records": {"type": "array", "minItems": 1, "items": {"type": "object"}},
            "instances": {"type": "array", "minItems": 1, "items": {}},
            "inputs": {},
            "params": {"type": "object", "maxProperties": 0},
        },
        "additionalProperties": False,
        "oneOf": [
            {"required": [key]}
            for key in ("dataframe_split", "dataframe_records", "instances", "inputs")
        ],
    },
    "MlflowError": {
        "type": "object",
        "required": ["error_code", "message"],
        "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
    },
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_response(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"description": description}
    if schema is not None:
        body["content"] = {"application/json": {"schema": schema}}
    return body


def _errors(*codes: int, schema: str = "Error") -> dict[str, Any]:
    reasons = {
        400: "invalid request",
        404: "unknown model or version",
        413: "body too large",
        415: "unsupported media type",
        429: "queue full: retry after Retry-After seconds",
        503: "model not available",
        504: "deadline exceeded",
    }
    return {str(code): _json_response(reasons[code], _ref(schema)) for code in codes}


def _get(summary: str, schema: dict[str, Any] | None = None, *codes: int) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {"200": _json_response("OK", schema), **_errors(*codes)},
        }
    }


_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
_HEADER_LENGTH = {
    "name": "Inference-Header-Content-Length",
    "in": "header",
    "required": False,
    "description": "binary tensor extension: the byte length of the JSON header that starts the body",
    "schema": {"type": "integer", "minimum": 0},
}


def _infer(versioned: bool) -> dict[str, Any]:
    return {
        "post": {
            "summary": "Run inference (Open Inference Protocol); binary tensor extension supported",
            "parameters": [_NAME, _VERSION, _HEADER_LENGTH]
            if versioned
            else [_NAME, _HEADER_LENGTH],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref("InferRequest")},
                    "application/octet-stream": {
                        "schema": {"type": "string", "format": "binary"},
                        "description": "JSON header of Inference-Header-Content-Length bytes, then tensor bytes",
                    },
                },
            },
            "responses": {
                "200": _json_response("inference result", _ref("InferResponse")),
                **_errors(400, 404, 413, 429, 503, 504),
            },
        }
    }


def openapi_spec(version: str) -> dict[str, Any]:
    named = {"parameters": [_NAME]}
    versioned = {"parameters": [_NAME, _VERSION]}
    metadata = _get("Model metadata: inputs and outputs", {"type": "object"}, 404)
    ready = _get("Model readiness", {"type": "object"}, 404, 503)
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
            "/v2/models/{name}/infer": _infer(False),
            "/v2/models/{name}/versions/{version}/infer": _infer(True),
            "/v2/repository/index": {
                "post": {
                    "summary": "Served model versions and their state",
                    "responses": {"200": _json_response("OK", {"type": "array"})},
                }
            },
            "/invocations": {
                "post": {
                    "summary": 'MLflow scoring protocol (JSON or CSV); answers {"predictions": ...}',
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": _ref("MlflowRequest")},
                            "text/csv": {"schema": {"type": "string", "minLength": 1}},
                        },
                    },
                    "responses": {
                        "200": _json_response("predictions", {"type": "object"}),
                        **_errors(400, 413, 415, 503, schema="MlflowError"),
                    },
                }
            },
            "/ping": _get("MLflow/SageMaker health check", None, 503),
        },
        "components": {"schemas": _SCHEMAS},
    }


DOCS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Seaway inference server</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
<noscript>The API description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body></html>
"""
