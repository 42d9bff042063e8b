"""Model URIs: ``models:/NAME/3``, ``models:/NAME@production``, ``models:/NAME/latest``.

Anything else is treated as a path to a saved package folder by ``seaway.load_model``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from seaway.errors import InvalidURIError

SCHEME = "models:/"
LATEST = "latest"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: exactly one of ``version``, ``alias`` or latest (both None)."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{SCHEME}{self.name}/{self.version}"
        if self.alias is not None:
            return f"{SCHEME}{self.name}@{self.alias}"
        return f"{SCHEME}{self.name}/{LATEST}"


def is_model_uri(uri: str) -> bool:
    return uri.startswith("models:")


def parse_model_uri(uri: str) -> ModelRef:
    if not uri.startswith(SCHEME):
        raise InvalidURIError(
            f"{uri!r} is not a model URI; use models:/NAME/VERSION, models:/NAME@ALIAS or "
            "models:/NAME/latest"
        )
    return parse_reference(uri[len(SCHEME) :].lstrip("/"), original=uri)


def uri_hint(text: str) -> str:
    """How to name a registered model, for a message refusing ``text`` as something else (a
    folder, a file): ``churn`` suggests ``models:/churn@ALIAS`` and the other forms, ``churn@prod``
    and ``churn/2`` their own URI. One wording for every command that takes a model (serve,
    batch)."""
    try:
        ref = parse_reference(text.strip().rstrip("/"))
    except InvalidURIError:
        name = "NAME"
    else:
        if ref.version is not None or ref.alias is not None:
            return f"to use a registered model, name it by URI: {ref}"
        name = ref.name
    return (
        f"to use a registered model, name it by URI: {SCHEME}{name}@ALIAS, "
        f"{SCHEME}{name}/VERSION or {SCHEME}{name}/{LATEST}"
    )


def parse_reference(text: str, *, original: str | None = None) -> ModelRef:
    """Parse ``NAME``, ``NAME/3``, ``NAME/latest`` or ``NAME@alias`` (the CLI's short form)."""
    shown = original or text
    if "@" in text:
        name, alias = text.split("@", 1)
        validate_name(name, shown)
        validate_alias(alias, shown)
        return ModelRef(name=name, alias=alias)
    name, _, version = text.partition("/")
    validate_name(name, shown)
    if not version or version == LATEST:
        return ModelRef(name=name)
    if not version.isdigit() or int(version) < 1:
        raise InvalidURIError(
            f"{shown!r}: version {version!r} must be a positive integer, 'latest', or use @ALIAS"
        )
    return ModelRef(name=name, version=int(version))


def validate_name(name: str, shown: str | None = None) -> str:
    if not _NAME.match(name):
        where = f" in {shown!r}" if shown and shown != name else ""
        raise InvalidURIError(
            f"model name {name!r}{where} is not valid: use 1-128 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name


def validate_alias(alias: str, shown: str | None = None) -> str:
    if alias == LATEST or not _ALIAS.match(alias):
        where = f" in {shown!r}" if shown and shown != alias else ""
        raise InvalidURIError(
            f"alias {alias!r}{where} is not valid: use 1-64 letters, digits, '_' or '-', starting "
            f"with a letter ('{LATEST}' is reserved)"
        )
    return alias
