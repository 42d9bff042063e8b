"""What ``seaway serve`` checks before it starts anything: that every model it was given can be
found, and that its ports are free.

A mistake found here is one ``Error:`` line and exit code 1, before any listener starts or any
log line is written. Found later, the same mistake would come after the server's start-up and
shutdown log lines, or as a bare errno from the HTTP server. These checks are cheap on purpose: a
reference is resolved in the registry (the package is fetched and verified later, by the
controller), a folder's manifest is read, a port is bound and released. The controller still
checks everything again as it loads (a registry can change in between).
"""

from __future__ import annotations

from pathlib import Path

from seaway.errors import ConfigError
from seaway.packaging.manifest import Manifest
from seaway.registry import Registry
from seaway.registry.uri import is_model_uri, parse_model_uri, uri_hint
from seaway.serving.config import ServeConfig
from seaway.serving.workers import check_port


def check(config: ServeConfig, registry: Registry | None) -> None:
    """Raise the first problem (a ``SeawayError`` saying what to do) with ``config``'s models or
    ports; ``registry``: where ``models:/`` references are resolved (None when none is given)."""
    for ref in config.models:
        check_model(ref, registry)
    check_deployments(config.deployments, registry)
    check_port(config.host, config.port, "--port")
    if config.grpc:
        check_port(config.host, config.grpc_port, "--grpc-port")


def check_deployments(names: list[str], registry: Registry | None) -> None:
    """Each deployment named (not ``'*'``) is in the registry."""
    named = [name for name in names if name != "*"]
    if not named:
        return
    if registry is None:  # pragma: no cover - the CLI opens one for any deployment
        raise ConfigError("serving deployments needs a registry")
    for name in named:
        registry.deployments.get(name)  # NotFoundError names the known deployments


def check_model(ref: str, registry: Registry | None) -> None:
    if is_model_uri(ref):
        parsed = parse_model_uri(ref)  # InvalidURIError names what is malformed
        if registry is None:  # pragma: no cover - the CLI opens one for any models:/ reference
            raise ConfigError(f"{ref} needs a registry")
        registry.resolve(parsed)  # NotFoundError names the known models, aliases, versions
        return
    folder = Path(ref)
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise ConfigError(
            f"{ref} {what}: serve takes a package folder or a model URI; {uri_hint(ref)}"
        )
    Manifest.read(folder)  # a folder that holds no package says so
