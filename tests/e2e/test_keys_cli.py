"""`seaway keys` as a user runs it: real `python -m seaway` processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from seaway.apikeys import hash_api_key, parse_api_key
from seaway.registry import Registry

KEY = re.compile(r"sw_[a-z0-9]{8}_[A-Za-z0-9_-]{43}")


def seaway_cli(
    *args: str, registry: Registry, check: bool = True, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    """The CLI against the fixture's registry (the `registry` fixture exports its URL)."""
    env = {**os.environ, "COLUMNS": str(columns), "SEAWAY_REGISTRY_URL": registry.url}
    done = subprocess.run(
        [sys.executable, "-m", "seaway", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_create_prints_the_key_once_and_stores_its_hash(registry: Registry) -> None:
    out = seaway_cli(
        "keys",
        "create",
        "--scope",
        "predict",
        "--name",
        "fraud [batch]",
        "--rate-limit",
        "20",
        registry=registry,
        columns=30,  # a narrow terminal must not wrap the key
    )
    key = out.stdout.strip()
    assert out.stdout == key + "\n" and KEY.fullmatch(key), out.stdout  # only the key, for $(...)
    key_id = parse_api_key(key)
    assert key_id is not None
    assert "cannot be shown again" in out.stderr
    assert key_id in out.stderr and "fraud [batch]" in out.stderr and "20/s" in out.stderr
    assert key not in out.stderr

    record = registry.get_api_key(key_id)
    assert (record.scope.value, record.name, record.rate_limit) == (
        "predict",
        "fraud [batch]",
        20.0,
    )
    assert record.key_hash == hash_api_key(key) and record.matches(key)

    listed = seaway_cli("keys", "list", registry=registry)
    assert key_id in listed.stdout and "fraud [batch]" in listed.stdout and "20/s" in listed.stdout
    assert key not in listed.stdout and record.key_hash not in listed.stdout


def test_json_create_list_and_revoke(registry: Registry) -> None:
    created = json.loads(
        seaway_cli("keys", "create", "--scope", "ADMIN", "--json", registry=registry).stdout
    )
    key = created["key"]
    assert KEY.fullmatch(key) and parse_api_key(key) == created["key_id"]
    assert created["scope"] == "admin" and created["rate_limit"] is None
    assert created["revoked"] is False and "cannot be shown again" in created["note"]
    assert "key_hash" not in created
    other = json.loads(
        seaway_cli(
            "keys", "create", "--scope", "predict", "-n", "other", "--json", registry=registry
        ).stdout
    )

    listed = json.loads(seaway_cli("keys", "list", "--json", registry=registry).stdout)
    assert [k["key_id"] for k in listed] == [created["key_id"], other["key_id"]]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert hash_api_key(key) not in json.dumps(listed)

    revoked = seaway_cli("keys", "revoke", created["key_id"], registry=registry)
    assert f"API key {created['key_id']} is revoked" in revoked.stdout
    again = seaway_cli("keys", "revoke", created["key_id"], registry=registry)  # idempotent
    assert again.stdout == revoked.stdout

    active = json.loads(seaway_cli("keys", "list", "--json", registry=registry).stdout)
    assert [k["key_id"] for k in active] == [other["key_id"]]
    everything = json.loads(seaway_cli("keys", "list", "--all", "--json", registry=registry).stdout)
    assert [(k["key_id"], k["revoked"]) for k in everything] == [
        (created["key_id"], True),
        (other["key_id"], False),
    ]
    assert [k.key_id for k in registry.active_api_keys()] == [other["key_id"]]

    table = seaway_cli("keys", "list", "--all", registry=registry).stdout
    assert created["key_id"] in table and "admin" in table and "server default" in table


def test_an_empty_list_says_how_to_create_one(registry: Registry) -> None:
    out = seaway_cli("keys", "list", registry=registry)
    assert "No API keys" in out.stdout and "seaway keys create --scope predict" in out.stdout
    assert json.loads(seaway_cli("keys", "list", "--json", registry=registry).stdout) == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["keys", "revoke", "nope1234"], 1, "no API key with id 'nope1234'"),
        (["keys", "create", "--scope", "write"], 2, "'write' is not one of 'predict', 'admin'"),
        (["keys", "create"], 2, "Missing option '--scope'"),
        (
            ["keys", "create", "--scope", "predict", "--rate-limit", "0"],
            1,
            "rate limit 0.0 must be",
        ),
    ],
)
def test_errors_are_one_line(registry: Registry, args: list[str], code: int, message: str) -> None:
    done = seaway_cli(*args, registry=registry, check=False)
    assert done.returncode == code, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
    assert registry.list_api_keys(include_revoked=True) == []
