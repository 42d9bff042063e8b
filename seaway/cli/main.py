"""``seaway``: the root command, its global options, and how errors reach the terminal."""

from __future__ import annotations

import gc
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text
from typer.core import TyperArgument

from seaway._version import __version__
from seaway.cli import batch, deploy, keys, models, monitor, schedules
from seaway.cli import registry as registry_cli
from seaway.cli.environment import unknown_variable_warnings, walk_params
from seaway.cli.output import say
from seaway.cli.predict import predict_command
from seaway.cli.serve import serve_command
from seaway.cli.state import CliState
from seaway.cli.validate import validate_command
from seaway.errors import SeawayError

app = typer.Typer(
    name="seaway",
    help="Take a trained model to production and keep it healthy there.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models.app, name="models")
app.add_typer(keys.app, name="keys")
app.add_typer(batch.app, name="batch")
app.add_typer(registry_cli.app, name="registry")
app.add_typer(monitor.app, name="monitor")
app.add_typer(deploy.app, name="deploy")
app.command("serve")(serve_command)
app.command("predict")(predict_command)
app.command("scheduler")(schedules.scheduler_command)
app.command("validate")(validate_command)


def _version(value: bool) -> None:
    if value:
        print(f"seaway {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            envvar="SEAWAY_HOME", help="Seaway's folder (default ./.seaway).", show_envvar=True
        ),
    ] = None,
    registry_url: Annotated[
        str | None,
        typer.Option(envvar="SEAWAY_REGISTRY_URL", help="Registry database URL.", show_envvar=True),
    ] = None,
    artifact_root: Annotated[
        str | None,
        typer.Option(
            envvar="SEAWAY_ARTIFACT_ROOT",
            help="Artifact store folder or fsspec URL.",
            show_envvar=True,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(envvar="SEAWAY_CONFIG", help="Config file (YAML).", show_envvar=True),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    ctx.obj = CliState(
        home=home, registry_url=registry_url, artifact_root=artifact_root, config=config
    )


class _Argument(TyperArgument):
    """An argument named as Click names it, ``PATH`` (``[VERSION]`` when optional), in usage
    lines, help and errors, where typer writes ``{path}``: braces read as an unfilled template."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar or (self.name or "").upper()

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return [name + ("..." if self.nargs != 1 else "")]


def command() -> Any:
    """The root command, built from ``app``, with Click-style argument names."""
    root = typer.main.get_command(app)
    for param in walk_params(root):
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        if getattr(param, "help", None):  # help is text, not Rich markup: "[default: 64]" stays
            param.help = escape(param.help)
    _escape_help(root)
    return root


def _escape_help(command: Any) -> None:
    """Commands' help is text too ("pip install 'seaway[monitor]'" keeps its brackets), and a
    docstring's line breaks inside a paragraph are not line breaks on a terminal of any width."""
    for attr in ("help", "short_help"):
        text = getattr(command, attr, None)
        if text:
            setattr(command, attr, escape(re.sub(r"(?<!\n)\n(?!\n)", " ", text)))
    for sub in getattr(command, "commands", {}).values():
        _escape_help(sub)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; Seaway errors print one line, never a traceback."""
    root = command()
    for line in unknown_variable_warnings(os.environ, root):
        say(line, err=True)
    try:
        code = root.main(args=argv, prog_name="seaway", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        say("Aborted.", err=True)
        return 130
    except typer.TyperException as exc:  # usage errors: typer ships its own click
        if isinstance(getattr(exc, "message", None), str):
            # typer validates with pydantic, whose messages start "Value error, "
            exc.message = exc.message.replace("Value error, ", "")
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 2))
    except SeawayError as exc:
        # the message is data: "pip install 'seaway[xgboost]'" must keep its [xgboost]
        say(Text.assemble(("Error:", "bold red"), " ", str(exc)), err=True)
        return 1
    # typer answers Ctrl-C (KeyboardInterrupt) with its exit code, 130, instead of raising
    return code if isinstance(code, int) else 0


def run() -> None:
    """Console-script entry point."""
    code = main()
    # the interpreter's last collections walk every object of the libraries loaded (scikit-learn,
    # pandas, pyarrow...): about 0.35 s at each exit, for nothing. Frozen objects are skipped.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
