"""The docs cover every setting and every command; README links resolve."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from seaway.cli.main import app
from seaway.config import CONFIG_ENV_VAR, ENV_VARS, FILE_KEYS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _commands(typer_app: typer.Typer, prefix: str) -> list[str]:
    found = []
    for group in typer_app.registered_groups:
        assert group.typer_instance is not None
        found += _commands(group.typer_instance, f"{prefix} {group.name}")
    for command in typer_app.registered_commands:
        name = command.name or (command.callback.__name__ if command.callback else "")
        found.append(f"{prefix} {name}")
    return found


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    for name in [*ENV_VARS.values(), CONFIG_ENV_VAR, *FILE_KEYS]:
        assert f"`{name}`" in text, f"{name} is missing from docs/configuration.md"


def test_every_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    commands = _commands(app, "seaway")
    assert "seaway models register" in commands
    for command in commands:
        assert f"`{command}" in text, f"{command} is missing from docs/cli.md"


def test_readme_links_resolve() -> None:
    readme = DOCS.parent / "README.md"
    for target in re.findall(r"\]\(([^)#]+)\)", readme.read_text()):
        if not target.startswith("http"):
            assert (readme.parent / target).exists(), f"README links to missing {target}"


def test_every_serve_setting_is_documented() -> None:
    from seaway.serving.config import ServeConfig

    text = (DOCS / "serving.md").read_text()
    for name in ServeConfig.model_fields:
        assert f"`{name}`" in text, f"serve setting {name} is missing from docs/serving.md"
