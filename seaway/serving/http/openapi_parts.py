"""The building blocks of the OpenAPI description (``openapi.py``): shared schemas, parameters,
responses and the error bodies, used by every part of it."""

from __future__ import annotations

from typing import Any

DATATYPE: dict[str, Any] = {
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
}
TENSOR = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": DATATYPE,
        "parameters": {"type": "object"},
        "data": {"description": "row-major values, nested or flat", "type": "array", "items": {}},
    },
}
ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
SCHEMAS: dict[str, Any] = {
    "Tensor": TENSOR,
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
    "Error": ERROR,
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


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"description": description}
    if schema is not None:
        body["content"] = {"application/json": {"schema": schema}}
    return body


def errors(*codes: int, schema: str = "Error") -> dict[str, Any]:
    reasons = {
        400: "invalid request",
        401: "no valid API key (--auth)",
        403: "the API key's scope does not allow this call",
        404: "unknown model or version",
        409: "a conflict with the current state (changed meanwhile: look and retry)",
        413: "body too large",
        415: "unsupported media type",
        429: "queue full: retry after Retry-After seconds",
        503: "model not available",
        504: "deadline exceeded",
    }
    return {str(code): json_response(reasons[code], ref(schema)) for code in codes}


def get(summary: str, schema: dict[str, Any] | None = None, *codes: int) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {"200": json_response("OK", schema), **errors(*codes)},
        }
    }


NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
HEADER_LENGTH = {
    "name": "Inference-Header-Content-Length",
    "in": "header",
    "required": False,
    "description": "binary tensor extension: the byte length of the JSON header that starts the body",
    "schema": {"type": "integer", "minimum": 0},
}


#: the response header every inference answer names its version in (a deployment's arm)
VERSION_HEADER = {
    "X-Seaway-Model-Version": {
        "description": "the version that answered (for a deployment: the arm it routed to)",
        "schema": {"type": "string"},
    }
}
