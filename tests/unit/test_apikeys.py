"""API key format, hashing and scopes: the pure functions the server checks keys with."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from seaway.apikeys import (
    SCOPES,
    ApiKey,
    Scope,
    hash_api_key,
    new_api_key,
    parse_api_key,
    parse_scope,
    validate_key_name,
    validate_rate_limit,
)
from seaway.errors import InvalidInputError

GOOD = "sw_ab12cd34_" + "Az09_-" * 7 + "x"  # 43 url-safe characters after the id


def test_new_keys_parse_and_differ() -> None:
    seen = set()
    for _ in range(50):
        key_id, key = new_api_key()
        assert parse_api_key(key) == key_id
        assert len(key) == len("sw_") + 8 + 1 + 43
        seen.add(key)
    assert len(seen) == 50


def test_hash_is_sha256_hex_of_the_whole_key() -> None:
    assert hash_api_key("sw_abc") == hashlib.sha256(b"sw_abc").hexdigest()
    assert (
        hash_api_key("")
        == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256("")
    )
    assert hash_api_key(GOOD) != hash_api_key(GOOD + " ")


def test_parse_accepts_only_well_formed_keys() -> None:
    assert parse_api_key(GOOD) == "ab12cd34"
    for bad in [
        "",
        "sw_",
        GOOD[3:],  # no prefix
        "SW" + GOOD[2:],  # prefix is case-sensitive
        GOOD[:-1],  # secret too short
        GOOD + "A",  # secret too long
        GOOD.replace("ab12cd34", "AB12CD34"),  # ids are lowercase
        GOOD.replace("ab12cd34", "ab12cd3"),  # id too short
        GOOD.replace("ab12cd34", "ab12-d34"),
        GOOD.replace("_Az", "+Az", 1),  # separator missing
        GOOD[:-1] + "=",  # not url-safe
        GOOD[:-1] + "é",
        " " + GOOD,
        GOOD + "\n",
        "Bearer " + GOOD,
    ]:
        assert parse_api_key(bad) is None, bad
    assert parse_api_key(None) is None  # type: ignore[arg-type]


def test_scopes() -> None:
    assert SCOPES == ("predict", "admin")
    assert parse_scope("admin") is Scope.ADMIN and parse_scope(Scope.PREDICT) is Scope.PREDICT
    with pytest.raises(
        InvalidInputError, match="unknown API key scope 'write'; use one of: predict, admin"
    ):
        parse_scope("write")
    assert Scope.ADMIN.allows(Scope.PREDICT) and Scope.ADMIN.allows(Scope.ADMIN)
    assert Scope.PREDICT.allows(Scope.PREDICT) and not Scope.PREDICT.allows(Scope.ADMIN)


def test_rate_limits_and_names() -> None:
    assert validate_rate_limit(None) is None
    assert validate_rate_limit(3) == 3.0 and isinstance(validate_rate_limit(3), float)
    assert validate_rate_limit(0.25) == 0.25
    for bad in (0, -1, float("inf"), float("-inf"), float("nan"), True, "5"):
        with pytest.raises(InvalidInputError, match="rate limit"):
            validate_rate_limit(bad)  # type: ignore[arg-type]
    assert validate_key_name(None) is None and validate_key_name(" ci ") == "ci"
    assert validate_key_name("x" * 200) == "x" * 200
    for bad_name in ("", "  ", "x" * 201):
        with pytest.raises(InvalidInputError, match="1 to 200 characters"):
            validate_key_name(bad_name)


def test_a_record_matches_its_key_and_hides_its_hash() -> None:
    record = ApiKey(
        key_id="ab12cd34",
        scope=Scope.PREDICT,
        key_hash=hash_api_key(GOOD),
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        name="ci",
        rate_limit=2.0,
    )
    assert record.matches(GOOD) and not record.matches(GOOD[:-1] + "y") and not record.matches("")
    assert record.key_hash not in repr(record)
    assert record.to_dict() == {
        "key_id": "ab12cd34",
        "name": "ci",
        "scope": "predict",
        "rate_limit": 2.0,
        "created_at": "2026-01-02T03:04:05+00:00",
        "created_by": None,
        "revoked": False,
        "revoked_at": None,
    }
