"""The server's side of the admin API: seaway.deploy off the event loop, followed at once."""

from __future__ import annotations

import asyncio

import pytest

from seaway.errors import ConflictError
from seaway.registry import Registry
from seaway.serving.deployment_admin import DeploymentAdminService

SPEC = {"name": "fraud-prod", "model": "fraud", "routes": [{"version": 1}]}


def test_an_apply_is_stored_with_its_actor_and_followed_at_once(fraud: Registry) -> None:
    followed: list[str] = []

    async def after_change() -> None:
        followed.append("now")

    admin = DeploymentAdminService(fraud, after_change)
    answer = asyncio.run(admin.apply_deployment(SPEC, actor="key:abc"))
    assert answer["revision"] == 1 and followed == ["now"]
    assert fraud.deployments.get("fraud-prod").actor == "key:abc"
    asyncio.run(admin.apply_deployment(SPEC, actor="key:abc"))  # unchanged: nothing to follow
    assert followed == ["now"]
    assert asyncio.run(admin.get_deployment("fraud-prod"))["split"] == [
        {"version": "1", "weight": 100.0}
    ]


def test_a_name_this_server_serves_as_a_model_is_refused(fraud: Registry) -> None:
    admin = DeploymentAdminService(fraud, served_models=lambda: {"fraud"})
    with pytest.raises(ConflictError, match="name: fraud is a model this server serves"):
        asyncio.run(admin.apply_deployment({**SPEC, "name": "fraud"}, actor=None))
    assert fraud.deployments.list() == []
