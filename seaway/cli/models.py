"""``seaway models ...``: list, show, register, alias, update, delete, import from MLflow, collect
garbage."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from seaway.cli.output import console, fields, parse_pairs, print_json, say, table
from seaway.cli.state import state
from seaway.errors import InvalidURIError
from seaway.packaging.missing import missing_allowed
from seaway.packaging.signature import Signature, TensorSpec
from seaway.packaging.writer import save_model
from seaway.registry import ModelVersion, Registry, parse_reference
from seaway.registry.lineage import collect_lineage

app = typer.Typer(help="Registered models, their versions and aliases.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
TagOption = Annotated[list[str] | None, typer.Option("--tag", help="KEY=VALUE, repeatable.")]
DescriptionOption = Annotated[
    str | None, typer.Option("--description", "-d", help="What this version is.")
]


@app.command("list")
def list_models(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List registered models."""
    with state(ctx).registry(read_only=True) as registry:
        models = registry.list_models()
    if as_json:
        print_json([model.to_dict() for model in models])
        return
    if not models:
        say(
            "No models registered yet. Register one with 'seaway models register' or seaway.log_model()."
        )
        return
    table(
        "Registered models",
        ["name", "latest", "versions", "aliases", "updated", "description"],
        [
            [
                m.name,
                m.latest_version,
                m.version_count,
                {a: v for a, v in sorted(m.aliases.items())},
                m.updated_at,
                m.description,
            ]
            for m in models
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    reference: Annotated[
        str, typer.Argument(metavar="NAME[/VERSION|@ALIAS]", help="A model, or one version of it.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Show a model and its versions, or one version in detail."""
    ref = parse_reference(_strip_scheme(reference))
    with state(ctx).registry(read_only=True) as registry:
        if ref.version is None and ref.alias is None and "/" not in reference:
            model = registry.get_model(ref.name)
            versions = registry.list_versions(ref.name)
            if as_json:
                print_json({**model.to_dict(), "versions": [v.to_dict() for v in versions]})
                return
            fields(
                f"Model {model.name}",
                [
                    ("description", model.description),
                    ("tags", model.tags),
                    ("aliases", model.aliases),
                    ("created", model.created_at),
                    ("updated", model.updated_at),
                ],
            )
            table(
                None,
                ["version", "aliases", "flavor", "created", "metrics", "description"],
                [
                    [v.version, v.aliases, v.flavor, v.created_at, v.metrics, v.description]
                    for v in versions
                ],
            )
            return
        record = registry.resolve(ref)
    if as_json:
        print_json(record.to_dict())
        return
    _show_version(record)


_NO_REQUIREMENTS = "none recorded (log_model(..., requirements=[...]) records what the code needs)"


def _show_version(v: ModelVersion) -> None:
    git = v.lineage.get("git") or {}
    classes = _classes(v.signature)
    fields(
        f"{v.name} version {v.version}",
        [
            ("uri", v.uri),
            ("aliases", v.aliases),
            ("flavor", f"{v.flavor} ({v.manifest.framework.name} {v.manifest.framework.version})"),
            ("created", v.created_at),
            ("description", v.description),
            ("tags", v.tags),
            ("metrics", v.metrics),
            ("user", v.lineage.get("user")),
            (
                "git commit",
                (git.get("commit", "")[:12] + (" (dirty)" if git.get("dirty") else "")) or None,
            ),
            ("training data", v.lineage.get("training_data")),
            *(
                [("imported from", v.lineage["imported_from"])]
                if "imported_from" in v.lineage
                else []
            ),
            *([("classes", classes)] if classes else []),
            ("requirements", v.manifest.requirements or _NO_REQUIREMENTS),
            ("needs trust", v.manifest.needs_trust),
            ("reference profile", "yes" if v.manifest.reference_profile else "no"),
            ("artifacts", v.artifact_uri),
        ],
    )
    if v.signature is not None:
        table(
            f"Signature ({v.signature.input_format} input)",
            ["", "name", "datatype", "shape", "missing values"],
            [
                ["input", s.name, s.datatype.value, list(s.shape), _missing(s)]
                for s in v.signature.inputs
            ]
            + [
                ["output", s.name, s.datatype.value, list(s.shape), ""] for s in v.signature.outputs
            ],
        )


def _classes(signature: Signature | None) -> str | None:
    """A classifier's labels in predict_proba's column order; None (not shown) otherwise."""
    if signature is None or signature.classes is None:
        return None
    return ", ".join(map(str, signature.classes)) + " (predict_proba columns, in this order)"


def _missing(spec: TensorSpec) -> str:
    """What every entry point does with a missing value in this input (packaging/missing.py)."""
    return "accepted" if missing_allowed(spec) else "refused"


@app.command("register")
def register(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A saved package folder, or an .onnx file.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name to register under.")],
    description: DescriptionOption = None,
    tag: TagOption = None,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", help="KEY=NUMBER, repeatable.")
    ] = None,
    alias: Annotated[
        str | None, typer.Option("--alias", help="Also point this alias at the new version.")
    ] = None,
    training_data: Annotated[
        str | None, typer.Option("--training-data", help="Recorded in lineage.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Register a saved package (or an ONNX file) as the next version of a model."""
    metrics = {key: _number(value, key) for key, value in parse_pairs(metric, "--metric").items()}
    tags = parse_pairs(tag, "--tag")
    if not path.exists():
        raise typer.BadParameter(f"{path} does not exist", param_hint="PATH")
    with state(ctx).registry() as registry, tempfile.TemporaryDirectory(prefix="seaway-") as tmp:
        package_dir = path
        if path.is_file():
            if path.suffix.lower() != ".onnx":
                raise typer.BadParameter(
                    f"{path} is a file; pass a package folder (seaway.save_model) or an .onnx file",
                    param_hint="PATH",
                )
            package_dir = save_model(path, Path(tmp) / "package").path
        record = _register(
            registry, package_dir, name, description, tags, metrics, training_data, alias
        )
    _report(record, as_json)


@app.command("import-mlflow")
def import_mlflow(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="An MLflow model folder (holding an MLmodel file).")],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name to register under.")],
    description: DescriptionOption = None,
    tag: TagOption = None,
    alias: Annotated[
        str | None, typer.Option("--alias", help="Also point this alias at the new version.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import an MLflow model folder (no MLflow needed) and register it."""
    from seaway.packaging.mlflow import import_mlflow_model

    tags = {"imported_from": "mlflow", **parse_pairs(tag, "--tag")}
    with tempfile.TemporaryDirectory(prefix="seaway-") as tmp:
        package = import_mlflow_model(path, Path(tmp) / "package")  # before opening the registry
        with state(ctx).registry() as registry:
            # the MLflow folder is where the model came from, not what it was trained on
            record = _register(
                registry,
                package.path,
                name,
                description,
                tags,
                {},
                None,
                alias,
                imported_from=str(path.absolute()),
            )
    _report(record, as_json)


def _register(
    registry: Registry,
    package_dir: Path,
    name: str,
    description: str | None,
    tags: dict[str, str],
    metrics: dict[str, float],
    training_data: str | None,
    alias: str | None,
    *,
    imported_from: str | None = None,
) -> ModelVersion:
    lineage = collect_lineage(training_data)
    if imported_from:
        lineage["imported_from"] = imported_from
    record = registry.register(
        package_dir,
        name,
        description=description,
        tags=tags,
        metrics=metrics,
        lineage=lineage,
    )
    if alias:
        registry.set_alias(name, alias, record.version)
        record = registry.get_version(name, record.version)
    return record


def _report(record: ModelVersion, as_json: bool) -> None:
    if as_json:
        print_json(record.to_dict())
    else:
        aliases = f" ({', '.join(record.aliases)})" if record.aliases else ""
        say(f"Registered {record.uri}{aliases}, flavor {record.flavor}")


@app.command("alias")
def alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias_name: Annotated[
        str, typer.Argument(metavar="ALIAS", help="Alias such as production or staging.")
    ],
    version: Annotated[int | None, typer.Argument(help="Version to point the alias at.")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias instead.")] = False,
) -> None:
    """Point an alias at a version (atomically), or remove it with --delete."""
    with state(ctx).registry() as registry:
        if delete:
            registry.delete_alias(name, alias_name)
            say(f"Removed alias {alias_name} of {name}")
            return
        if version is None:
            raise typer.BadParameter(
                "give the VERSION to point the alias at, or --delete", param_hint="VERSION"
            )
        registry.set_alias(name, alias_name, version)
    say(f"models:/{name}@{alias_name} -> version {version}")


@app.command("delete")
def delete(
    ctx: typer.Context,
    reference: Annotated[
        str,
        typer.Argument(
            metavar="NAME[/VERSION]", help="A version (NAME/VERSION), or a whole model (NAME)."
        ),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Also remove the aliases pointing at it.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete one version, or a whole model with all its versions, and their artifacts.

    Refused while an alias points at what would be deleted, unless --force (which removes those
    aliases and says which). Version numbers are never reused, even after a model is deleted.
    """
    ref = parse_reference(_strip_scheme(reference))
    if ref.alias is not None:
        raise InvalidURIError(
            f"{reference!r}: delete takes NAME/VERSION or NAME, not an alias; to remove the alias "
            f"itself: seaway models alias {ref.name} {ref.alias} --delete"
        )
    with state(ctx).registry() as registry:
        if ref.version is None:
            model = registry.delete_model(ref.name, force=force)
            removed = sorted(model.aliases)
            result = {
                "deleted": f"models:/{model.name}",
                "name": model.name,
                "version": None,
                "versions_deleted": model.version_count,
                "aliases_removed": removed,
            }
            message = f"Deleted model {model.name} ({model.version_count} version(s))"
        else:
            record = registry.delete_version(ref.name, ref.version, force=force)
            removed = list(record.aliases)
            result = {
                "deleted": record.uri,
                "name": record.name,
                "version": record.version,
                "versions_deleted": 1,
                "aliases_removed": removed,
            }
            message = f"Deleted {record.uri}"
    if as_json:
        print_json(result)
        return
    if removed:
        message += f"; removed alias(es) {', '.join(removed)}"
    console.print(message, markup=False, highlight=False)


@app.command("update")
def update_metadata(
    ctx: typer.Context,
    reference: Annotated[
        str,
        typer.Argument(
            metavar="NAME[/VERSION]", help="A model (NAME), or one version of it (NAME/VERSION)."
        ),
    ],
    description: Annotated[
        str | None, typer.Option("--description", "-d", help="Replace the description.")
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="KEY=VALUE to set (others are kept), repeatable."),
    ] = None,
    remove_tag: Annotated[
        list[str] | None, typer.Option("--remove-tag", help="KEY to remove, repeatable.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Set the description or tags of a registered model, or of one version."""
    ref = parse_reference(_strip_scheme(reference))
    if ref.alias is not None:
        raise InvalidURIError(f"{reference!r}: update takes NAME or NAME/VERSION, not an alias")
    tags = parse_pairs(tag, "--tag")
    removed = list(remove_tag or [])
    if description is None and not tags and not removed:
        raise typer.BadParameter("give --description, --tag or --remove-tag", param_hint="options")
    with state(ctx).registry() as registry:
        if ref.version is None:
            model = registry.update_model(
                ref.name, description=description, tags=tags, remove_tags=removed
            )
            data, what, now_tags = model.to_dict(), f"model {model.name}", model.tags
        else:
            record = registry.update_version(
                ref.name, ref.version, description=description, tags=tags, remove_tags=removed
            )
            data, what, now_tags = record.to_dict(), record.uri, record.tags
    if as_json:
        print_json(data)
        return
    shown = ", ".join(f"{k}={v}" for k, v in sorted(now_tags.items())) or "none"
    console.print(f"Updated {what} (tags: {shown})", markup=False, highlight=False)


@app.command("gc")
def collect_garbage(
    ctx: typer.Context,
    older_than: Annotated[
        float, typer.Option(help="Spare uploads younger than this many minutes.")
    ] = 60.0,
    as_json: JsonOption = False,
) -> None:
    """Remove stored packages that no version references (left by interrupted registrations).

    Uploads younger than --older-than are kept, and so are those whose age the store cannot tell:
    their registration may still be about to commit.
    """
    with state(ctx).registry() as registry:
        removed = registry.collect_garbage(older_than=timedelta(minutes=older_than))
    if as_json:
        print_json({"removed": removed})
        return
    say(f"Removed {len(removed)} orphaned package(s)")
    for uri in removed:
        say(f"  {uri}")


def _strip_scheme(text: str) -> str:
    return text[len("models:/") :] if text.startswith("models:/") else text


def _number(value: str, key: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise typer.BadParameter(f"metric {key}={value!r} must be a number") from None
