from __future__ import annotations

import pytest

from seaway.errors import InvalidURIError
from seaway.registry.uri import ModelRef, parse_model_uri, parse_reference


@pytest.mark.parametrize(
    ("uri", "ref"),
    [
        ("models:/fraud/3", ModelRef("fraud", version=3)),
        ("models:/fraud@production", ModelRef("fraud", alias="production")),
        ("models:/fraud/latest", ModelRef("fraud")),
        ("models:/fraud", ModelRef("fraud")),
        ("models:/my.model-v2_x/12", ModelRef("my.model-v2_x", version=12)),
    ],
)
def test_valid_uris_parse_and_print_back(uri: str, ref: ModelRef) -> None:
    assert parse_model_uri(uri) == ref
    assert parse_model_uri(str(ref)) == ref


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("fraud/3", "not a model URI"),
        ("models:/fraud/0", "positive integer"),
        ("models:/fraud/abc", "positive integer"),
        ("models:/fraud@", "alias ''"),
        ("models:/fraud@latest", "reserved"),
        ("models:/fra ud/1", "model name"),
        ("models:/", "model name"),
    ],
)
def test_invalid_uris_name_the_problem(uri: str, message: str) -> None:
    with pytest.raises(InvalidURIError, match=message):
        parse_model_uri(uri)


def test_short_references_for_the_cli() -> None:
    assert parse_reference("fraud/2") == ModelRef("fraud", version=2)
    assert parse_reference("fraud@staging") == ModelRef("fraud", alias="staging")
