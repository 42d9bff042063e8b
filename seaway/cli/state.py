"""What the root command's options resolve to, shared with every sub-command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from seaway.config import Settings
from seaway.registry import Registry


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

    def registry(self) -> Registry:
        return Registry.from_settings(self.settings())


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliState) else CliState()
