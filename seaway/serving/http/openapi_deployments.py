"""The OpenAPI description of MLflow scoring per model, outcomes and the deployments admin API
(``http/deployments.py``): the routes a server serving deployments adds."""

from __future__ import annotations

from typing import Any

from seaway.serving.http.openapi_parts import (
    NAME,
    SCHEMAS,
    VERSION,
    VERSION_HEADER,
    errors,
    json_response,
    ref,
)

_MODEL_HEADER = {
    "name": "X-Seaway-Model",
    "in": "header",
    "required": False,
    "description": "the model or deployment to score with; needed when the server serves several",
    "schema": {"type": "string"},
}


def _invocations(parameters: list[dict[str, Any]], summary: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "parameters": parameters,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": ref("MlflowRequest")},
                    "text/csv": {"schema": {"type": "string", "minLength": 1}},
                },
            },
            "responses": {
                "200": {
                    **json_response("predictions", {"type": "object"}),
                    "headers": VERSION_HEADER,
                },
                **errors(400, 401, 403, 404, 413, 415, 503, schema="MlflowError"),
            },
        }
    }


SCHEMAS["Outcome"] = {
    "type": "object",
    "description": "one outcome, of an answer (by its request id) or of a sticky key",
    "required": ["value"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "minLength": 1, "description": "the answer's request id"},
        "key": {"type": "string", "minLength": 1, "description": "an A/B test's sticky key"},
        "value": {"type": ["number", "boolean"], "description": "1 a conversion, 0 none, ..."},
    },
    "oneOf": [{"required": ["id"]}, {"required": ["key"]}],
}
SCHEMAS["OutcomeRequest"] = {
    "type": "object",
    "required": ["outcomes"],
    "additionalProperties": False,
    "properties": {
        "outcomes": {"type": "array", "minItems": 1, "maxItems": 10_000, "items": ref("Outcome")}
    },
}


def _outcome() -> dict[str, Any]:
    return {
        "post": {
            "summary": "Outcomes of a deployment's answers (an A/B test), counted for the version "
            "that answered; ids this server does not remember come back as unmatched, ids whose "
            "outcome was counted already as duplicates",
            "parameters": [NAME],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("OutcomeRequest")}},
            },
            "responses": {
                "200": json_response(
                    "counted",
                    {
                        "type": "object",
                        "properties": {
                            "model_name": {"type": "string"},
                            "accepted": {"type": "integer"},
                            "unmatched": {"type": "array", "items": {"type": "string"}},
                            "duplicates": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                ),
                **errors(400, 401, 403, 404, 413, 415),
            },
        }
    }


def _admin(method: str, summary: str, *, body: bool = False, params: Any = ()) -> dict[str, Any]:
    """One operation of the deployments admin API (``http/deployments.py``; admin scope)."""
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": list(params),
        "responses": {
            "200": json_response("OK", {"type": "object"}),
            **errors(400, 401, 403, 404, 409, 413),
        },
    }
    if body:
        operation["requestBody"] = {
            "required": method == "post" and summary.startswith("Apply"),
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    return {method: operation}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_ACTION = {
    "name": "action",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": ["promote", "pause", "resume", "abort", "rollback"]},
}
#: the deployments admin API (admin scope)
DEPLOYMENT_PATHS: dict[str, Any] = {
    "/v2/deployments": {
        **_admin("get", "Every deployment"),
        **_admin(
            "post",
            "Apply a deployment spec (a new revision; unchanged: none)",
            body=True,
            params=[_query("dry_run", {"type": "boolean"}, "check and validate, store nothing")],
        ),
    },
    "/v2/deployments/{name}": {
        **_admin("get", "A deployment's status: revision, split, rollout", params=[NAME]),
        **_admin("delete", "Delete a deployment (its revisions and rollout)", params=[NAME]),
    },
    "/v2/deployments/{name}/history": _admin(
        "get",
        "A deployment's revisions, newest first, and its decision log",
        params=[
            NAME,
            _query("decisions", {"type": "boolean"}, "add the rollout decision log"),
            _query("limit", {"type": "integer", "minimum": 1}, "at most this many"),
        ],
    ),
    "/v2/deployments/{name}/results": _admin(
        "get", "Per-version figures, the A/B verdict and the shadow's agreement", params=[NAME]
    ),
    "/v2/deployments/{name}/{action}": _admin(
        "post",
        'Act on a deployment (rollback takes {"to_revision": N}, else the one before)',
        body=True,
        params=[NAME, _ACTION],
    ),
}


#: MLflow scoring by model (a path or the X-Seaway-Model header) and a deployment's outcomes
SCORING_PATHS: dict[str, Any] = {
    "/v2/models/{name}/outcome": _outcome(),
    "/v2/models/{name}/invocations": _invocations(
        [NAME], 'MLflow scoring with one model or deployment; answers {"predictions": ...}'
    ),
    "/v2/models/{name}/versions/{version}/invocations": _invocations(
        [NAME, VERSION], "MLflow scoring with one version of a model or deployment"
    ),
    "/invocations": _invocations(
        [_MODEL_HEADER],
        'MLflow scoring protocol (JSON or CSV); answers {"predictions": ...}; with '
        "several models served, X-Seaway-Model names one",
    ),
}
