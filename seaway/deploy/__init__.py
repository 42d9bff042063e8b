"""Deployments: applying a spec, acting on a rollout, reading its results, validating a version.

The layer between the pure policies (``seaway.routing``) and the stored state
(``seaway.registry``) on one side and the server, API and CLI on the other: each function here
takes a ``Registry`` and does one user-level operation, so the CLI, the Python API and the
server's admin API do exactly the same thing.
"""
