"""``seaway deploy ...``: apply a spec, look at deployments, act on a rollout (seaway.deploy)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seaway.cli import deploy_view as view
from seaway.cli.output import print_json, say
from seaway.cli.state import state
from seaway.deploy import actions
from seaway.deploy.apply import apply
from seaway.deploy.results import results
from seaway.deploy.status import decisions, history, history_json, status

app = typer.Typer(
    help="Deployments: canary, A/B test, shadow, blue/green and progressive rollouts.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
Name = Annotated[str, typer.Argument(metavar="NAME", help="The deployment's name.")]


@app.command("apply")
def apply_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(metavar="FILE", help="The deployment spec (YAML).")],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Check everything, validation included; store nothing."),
    ] = False,
    message: Annotated[
        str, typer.Option("--message", "-m", help="Why, recorded with the revision.")
    ] = "apply",
    trusted: Annotated[
        bool,
        typer.Option("--trusted", help="Let validation load packages that run pickle or code."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Apply a deployment spec: a new revision when it changed, nothing when it did not.

    Refused, with the live deployment untouched, when a field is invalid, a version or alias is
    unknown, or a new version misses the spec's validation thresholds.
    """
    with state(ctx).registry() as registry:
        result = apply(registry, path, message=message, dry_run=dry_run, trusted=trusted)
        changed = result.revision is not None and not result.unchanged
        split = status(registry, result.spec.name).split if changed else None
    if as_json:
        print_json(result.to_json())
        return
    for report in result.validation:
        shown = ", ".join(
            f"{name} {report.figures[name]:.4g}"
            for name in {**report.minimum, **report.maximum}
            if report.figures.get(name) is not None
        )
        view.lines(f"Validated {report.uri} on {report.data}: {shown}")
    text = result.message()
    view.lines(text[0].upper() + text[1:])
    if split is not None:
        say(f"Traffic: {view.traffic(split)}")


@app.command("list")
def list_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List deployments with the traffic each serves now."""
    with state(ctx).registry(read_only=True) as registry:
        found = [status(registry, d.name) for d in registry.deployments.list()]
    if as_json:
        print_json([s.to_json() for s in found])
    elif not found:
        say("No deployments yet. Write a spec and apply it: seaway deploy apply deploy.yaml")
    else:
        view.show_list(found)


@app.command("status")
def status_command(ctx: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """Show a deployment: its revision, the traffic now, its rollout and last decision."""
    with state(ctx).registry(read_only=True) as registry:
        found = status(registry, name)
    if as_json:
        print_json(found.to_json())
    else:
        view.show_status(found)


@app.command("history")
def history_command(
    ctx: typer.Context,
    name: Name,
    show_decisions: Annotated[
        bool,
        typer.Option(
            "--decisions", help="The rollout decision log: every value compared, and why."
        ),
    ] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="The newest N only.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List a deployment's revisions (newest first), or its decision log (oldest first)."""
    with state(ctx).registry(read_only=True) as registry:
        if as_json:
            print_json(history_json(registry, name, with_decisions=show_decisions, limit=limit))
            return
        if show_decisions:
            found = decisions(registry, name, limit=limit)
            if found:
                view.show_decisions(found)
            else:
                say(f"No decisions yet: deployment {name} has not run a rollout.")
            return
        view.show_history(history(registry, name, limit=limit))


@app.command("results")
def results_command(ctx: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """Per-version traffic, errors, latency and outcomes, summed over every server, and the
    A/B test's verdict (a sequential test: valid however often you look)."""
    with state(ctx).registry(read_only=True) as registry:
        found = results(registry, name)
    if as_json:
        print_json(found.to_json())
    else:
        view.show_results(found)


def _report(done: actions.ActionResult, as_json: bool) -> None:
    if as_json:
        print_json(done.to_json())
    else:
        view.lines(done.message[0].upper() + done.message[1:])


@app.command("promote")
def promote_command(ctx: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """End the rollout now: the new version takes all traffic."""
    with state(ctx).registry() as registry:
        _report(actions.promote(registry, name), as_json)


@app.command("pause")
def pause_command(ctx: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """Hold the rollout at its step until resumed (traffic stays split as it is)."""
    with state(ctx).registry() as registry:
        _report(actions.pause(registry, name), as_json)


@app.command("resume")
def resume_command(ctx: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """Let a paused rollout move on from its step."""
    with state(ctx).registry() as registry:
        _report(actions.resume(registry, name), as_json)


@app.command("abort")
def abort_command(ctx: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """End the rollout now: the stable version takes all traffic back."""
    with state(ctx).registry() as registry:
        _report(actions.abort(registry, name), as_json)


@app.command("rollback")
def rollback_command(
    ctx: typer.Context,
    name: Name,
    to_revision: Annotated[
        int | None,
        typer.Option("--to-revision", min=1, help="The revision to restore (default: previous)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Restore an earlier revision's spec, as a new revision."""
    with state(ctx).registry() as registry:
        _report(actions.rollback(registry, name, to_revision), as_json)


@app.command("delete")
def delete_command(ctx: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """Delete a deployment with its revisions, rollout, decision log and counters."""
    with state(ctx).registry() as registry:
        _report(actions.delete(registry, name), as_json)
