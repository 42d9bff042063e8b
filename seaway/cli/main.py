"""``seaway``: the root command, its global options, and how errors reach the terminal."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Annotated

import typer

from seaway._version import __version__
from seaway.cli import batch, keys, models, schedules
from seaway.cli import registry as registry_cli
from seaway.cli.output import err_console
from seaway.cli.predict import predict_command
from seaway.cli.serve import serve_command
from seaway.cli.state import CliState
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
app.command("serve")(serve_command)
app.command("predict")(predict_command)
app.command("scheduler")(schedules.scheduler_command)


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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; Seaway errors print one line, never a traceback."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="seaway", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err_console.print("Aborted.")
        return 130
    except typer.TyperException as exc:  # usage errors: typer ships its own click
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 2))
    except SeawayError as exc:
        err_console.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
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
