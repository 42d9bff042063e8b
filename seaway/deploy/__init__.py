"""Deployments: applying a spec, acting on a rollout, reading its results, validating a version.

The layer between the pure policies (``seaway.routing``) and the stored state
(``seaway.registry``) on one side and the server, API and CLI on the other: each function here
takes a ``Registry`` and does one user-level operation, so the CLI, the Python API and the
server's admin API do exactly the same thing.
"""

from seaway.deploy.actions import (
    ActionResult,
    abort,
    act,
    delete,
    finish_rollout,
    pause,
    promote,
    resume,
    rollback,
)
from seaway.deploy.actor import local_actor
from seaway.deploy.apply import ApplyResult, apply
from seaway.deploy.follow import follow_alias
from seaway.deploy.results import DeploymentResults, results
from seaway.deploy.status import DeploymentStatus, history_json, status
from seaway.deploy.validate import ValidationReport, validate

__all__ = [
    "ActionResult",
    "ApplyResult",
    "DeploymentResults",
    "DeploymentStatus",
    "ValidationReport",
    "abort",
    "act",
    "apply",
    "delete",
    "finish_rollout",
    "follow_alias",
    "history_json",
    "local_actor",
    "pause",
    "promote",
    "results",
    "resume",
    "rollback",
    "status",
    "validate",
]
