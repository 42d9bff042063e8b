"""Who made a change: recorded with every revision and rollout decision.

The CLI and the Python API act as the operating-system user (``user:alice``); the server's admin
API as the API key that called it (``key:<id>``, or ``anonymous`` with auth off); the server's own
rollout driver as ``controller``.
"""

from __future__ import annotations

import getpass

CONTROLLER = "controller"


def local_actor() -> str:
    """``user:<os user>``; ``user:unknown`` where the platform cannot tell (no passwd entry)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # a container's uid without a passwd entry
        name = "unknown"
    return f"user:{name}"


def key_actor(key_id: str | None) -> str:
    """The admin API's caller: its API key's id, or ``anonymous`` where auth is off."""
    return f"key:{key_id}" if key_id else "anonymous"
