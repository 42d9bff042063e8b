"""What the root command's options resolve to, shared with every sub-command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from seaway.config import Settings, missing_sqlite_file
from seaway.registry import Registry

#: An empty registry that lives in memory only, for reads of a registry that does not exist yet.
NO_REGISTRY_URL = "sqlite://"


@dataclass
class CliState:
    home: Path | None = None
    registry_url: str | None = None
    artifact_root: str | None = None
    config: Path | None = None

    def settings(self) -> Settings:
        return Settings.resolve(
            home=self.home,
            registry_url=self.registry_url,
            artifact_root=self.artifact_root,
            config_file=self.config,
        )

    def registry(self, *, read_only: bool = False) -> Registry:
        """The registry. ``read_only`` commands (list, show) must not create one by looking: where
        the SQLite file does not exist yet they read an empty registry held in memory, so they
        answer as for a new registry ("No models registered yet", "no model named ...") and leave
        no ``.seaway/`` folder behind."""
        settings = self.settings()
        if read_only and missing_sqlite_file(settings.registry_url):
            return Registry(NO_REGISTRY_URL, settings.artifact_root, cache_dir=settings.cache_dir)
        return Registry.from_settings(settings)


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliState) else CliState()
