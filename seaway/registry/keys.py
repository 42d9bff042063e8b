"""API keys in the registry: create (the key is returned once), list, look up, revoke.

Functions over an open connection; :class:`~seaway.registry.Registry` runs each inside one of its
transactions. Only the SHA-256 of a key is stored (``seaway_api_keys.key_hash``), so a lost key
cannot be shown again: create a new one and revoke the old. Revoking is idempotent: revoking a
revoked key returns it unchanged, with the time of its first revocation. Key format, hashing and
the record live in :mod:`seaway.apikeys`, which the serving layer imports without the registry.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, RowMapping, insert, select, update
from sqlalchemy.exc import IntegrityError

from seaway import apikeys
from seaway.apikeys import ApiKey, Scope, parse_api_key, parse_scope
from seaway.errors import ConflictError, InvalidInputError, NotFoundError
from seaway.registry import tables as t
from seaway.registry.lineage import current_user

_ID_RETRIES = 5
_MAX_CREATED_BY = 128


def create_api_key(
    conn: Connection,
    scope: Scope | str,
    *,
    name: str | None = None,
    rate_limit: float | None = None,
    created_by: str | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key's hash; return its record and the key, which exists nowhere else."""
    values = {
        "scope": parse_scope(scope).value,
        "name": apikeys.validate_key_name(name),
        "rate_limit": apikeys.validate_rate_limit(rate_limit),
        "created_by": _creator(created_by),
    }
    for _ in range(_ID_RETRIES):
        key_id, key = apikeys.new_api_key()
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(t.api_keys).values(
                        key_id=key_id,
                        key_hash=apikeys.hash_api_key(key),
                        created_at=datetime.now(UTC),
                        revoked_at=None,
                        **values,
                    )
                )
        except IntegrityError:
            continue  # the random key id is taken already: draw another
        return get_api_key(conn, key_id), key
    # 36**8 possible ids: reaching this means something is badly wrong with the random source
    raise ConflictError(f"could not find an unused API key id in {_ID_RETRIES} tries; try again")


def list_api_keys(conn: Connection, *, include_revoked: bool = False) -> list[ApiKey]:
    """Keys oldest first; revoked ones only with ``include_revoked``."""
    query = select(t.api_keys).order_by(t.api_keys.c.created_at, t.api_keys.c.key_id)
    if not include_revoked:
        query = query.where(t.api_keys.c.revoked_at.is_(None))
    return [_record(row) for row in conn.execute(query).mappings()]


def get_api_key(conn: Connection, key_id: str) -> ApiKey:
    """The key with this id (or the id of this whole key), revoked or not."""
    row = _row(conn, _key_id(key_id))
    if row is None:
        raise _not_found(key_id)
    return _record(row)


def revoke_api_key(conn: Connection, key_id: str) -> ApiKey:
    """Mark a key revoked now; a revoked key is returned as it is (idempotent)."""
    wanted = _key_id(key_id)
    row = _row(conn, wanted, lock=True)
    if row is None:
        raise _not_found(key_id)
    if row["revoked_at"] is None:
        conn.execute(
            update(t.api_keys)
            .where(t.api_keys.c.key_id == wanted, t.api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return get_api_key(conn, wanted)


def _row(conn: Connection, key_id: str, *, lock: bool = False) -> RowMapping | None:
    query = select(t.api_keys).where(t.api_keys.c.key_id == key_id)
    return conn.execute(query.with_for_update() if lock else query).mappings().first()


def _key_id(given: str) -> str:
    """Accept the whole key too: a leaked key may be all that is at hand."""
    return parse_api_key(given) or given


def _not_found(given: str) -> NotFoundError:
    shown = repr(given) if len(given) <= 16 else repr(given[:11] + "...")  # never echo a secret
    return NotFoundError(
        f"no API key with id {shown}; 'seaway keys list --all' shows every key id "
        "(the 8 characters after 'sw_')"
    )


def _creator(created_by: str | None) -> str | None:
    user = current_user() if created_by is None else created_by.strip() or None
    if user is not None and len(user) > _MAX_CREATED_BY:
        raise InvalidInputError(
            f"created_by {user[:20]!r}... is longer than {_MAX_CREATED_BY} characters"
        )
    return user


def _record(row: RowMapping) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        scope=Scope(row["scope"]),
        key_hash=row["key_hash"],
        created_at=_aware(row["created_at"]),
        name=row["name"],
        rate_limit=row["rate_limit"],
        created_by=row["created_by"],
        revoked_at=None if row["revoked_at"] is None else _aware(row["revoked_at"]),
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
