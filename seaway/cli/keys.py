"""``seaway keys ...``: create, list and revoke the inference server's API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from seaway.apikeys import ApiKey, Scope
from seaway.cli.output import fmt, print_json, say, table
from seaway.cli.state import state

app = typer.Typer(
    help="API keys for the inference server (stored hashed in the registry).",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

STORE_NOTE = "Store this key now: it cannot be shown again (the registry keeps only its hash)."


@app.command("create")
def create(
    ctx: typer.Context,
    scope: Annotated[
        Scope,
        typer.Option(
            case_sensitive=False,
            help="predict: call models. admin: also manage the server.",
            show_default=False,
        ),
    ],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="What the key is for, or who holds it.")
    ] = None,
    rate_limit: Annotated[
        float | None,
        typer.Option(help="Requests per second for this key (default: the server's limit)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it, once. Only the key goes to stdout; notes go to stderr."""
    with state(ctx).registry() as registry:
        record, key = registry.create_api_key(scope, name=name, rate_limit=rate_limit)
    if as_json:
        print_json({**record.to_dict(), "key": key, "note": STORE_NOTE})
        return
    label = f" ({record.name})" if record.name else ""
    say(
        Text.assemble(
            "Created API key ",
            (record.key_id, "bold"),
            f"{label}: scope {record.scope.value}, rate limit {_rate(record)}",
        ),
        err=True,
    )
    print(key, flush=True)
    say(Text(STORE_NOTE, style="bold yellow"), err=True)


@app.command("list")
def list_keys(
    ctx: typer.Context,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List API keys (never the keys themselves, nor their hashes)."""
    with state(ctx).registry(read_only=True) as registry:
        keys = registry.list_api_keys(include_revoked=include_revoked)
    if as_json:
        print_json([key.to_dict() for key in keys])
        return
    if not keys:
        revoked = "" if include_revoked else " (revoked keys show with --all)"
        say(f"No API keys{revoked}. Create one with 'seaway keys create --scope predict'.")
        return
    table(
        "API keys",
        ["id", "name", "scope", "rate limit", "created", "created by", "revoked"],
        [
            [k.key_id, k.name, k.scope.value, _rate(k), k.created_at, k.created_by, k.revoked_at]
            for k in keys
        ],
    )


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[
        str, typer.Argument(metavar="KEY_ID", help="The key's id, as 'seaway keys list' shows.")
    ],
) -> None:
    """Revoke a key; revoking a revoked key changes nothing."""
    with state(ctx).registry() as registry:
        record = registry.revoke_api_key(key_id)
    label = f" ({record.name})" if record.name else ""
    say(f"API key {record.key_id}{label} is revoked (since {fmt(record.revoked_at)})")


def _rate(key: ApiKey) -> str:
    return "server default" if key.rate_limit is None else f"{key.rate_limit:g}/s"
