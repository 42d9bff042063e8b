"""Key checks and per-key token buckets, with an injected clock: here, and through the HTTP app
(in-process), so no test of the rate limit depends on how fast the machine sends requests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from seaway.apikeys import ApiKey, Scope, hash_api_key, new_api_key
from seaway.errors import AuthenticationError, PermissionDeniedError, RateLimitedError
from seaway.serving.auth import Authenticator
from seaway.serving.dataplane import DataPlane
from seaway.serving.http.app import create_app


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _key(scope: Scope, rate: float | None = None, revoked: bool = False) -> tuple[ApiKey, str]:
    key_id, key = new_api_key()
    record = ApiKey(
        key_id=key_id,
        scope=scope,
        key_hash=hash_api_key(key),
        created_at=datetime.now(UTC),
        rate_limit=rate,
        revoked_at=datetime.now(UTC) if revoked else None,
    )
    return record, key


def test_every_kind_of_bad_key_gets_the_same_answer() -> None:
    good, key = _key(Scope.PREDICT)
    revoked, revoked_key = _key(Scope.ADMIN, revoked=True)
    auth = Authenticator()
    auth.update([good, revoked])
    messages = set()
    for header in (None, "", "Bearer", f"Basic {key}", "Bearer sw_nope", f"Bearer {revoked_key}"):
        with pytest.raises(AuthenticationError) as info:
            auth.check(header, Scope.PREDICT)
        messages.add(str(info.value))
    assert len(messages) == 1 and "Bearer" in messages.pop()
    assert auth.check(f"Bearer {key}", Scope.PREDICT) is good
    assert auth.check(f"bearer   {key} ", Scope.PREDICT) is good


def test_scopes() -> None:
    predict, predict_key = _key(Scope.PREDICT)
    admin, admin_key = _key(Scope.ADMIN)
    auth = Authenticator()
    auth.update([predict, admin])
    with pytest.raises(PermissionDeniedError, match="'admin'"):
        auth.check(f"Bearer {predict_key}", Scope.ADMIN)
    assert auth.check(f"Bearer {admin_key}", Scope.ADMIN) is admin
    assert auth.check(f"Bearer {admin_key}", Scope.PREDICT) is admin


def test_rate_limit_is_a_token_bucket_per_key() -> None:
    clock = Clock()
    limited, key = _key(Scope.PREDICT, rate=2)
    other, other_key = _key(Scope.PREDICT, rate=2)
    auth = Authenticator(clock=clock)
    auth.update([limited, other])
    header = f"Bearer {key}"
    auth.check(header, Scope.PREDICT)
    auth.check(header, Scope.PREDICT)  # a burst of one second's worth
    with pytest.raises(RateLimitedError) as info:
        auth.check(header, Scope.PREDICT)
    assert info.value.retry_after == pytest.approx(0.5)
    assert limited.key_id in str(info.value)
    auth.check(f"Bearer {other_key}", Scope.PREDICT)  # another key has its own bucket
    clock.now += 0.5
    auth.check(header, Scope.PREDICT)
    with pytest.raises(RateLimitedError):
        auth.check(header, Scope.PREDICT)
    # reloading the keys (every poll) does not refill the bucket
    auth.update([limited, other])
    with pytest.raises(RateLimitedError):
        auth.check(header, Scope.PREDICT)


def test_server_default_applies_to_keys_without_their_own() -> None:
    clock = Clock()
    plain, plain_key = _key(Scope.PREDICT)
    own, own_key = _key(Scope.PREDICT, rate=5)
    auth = Authenticator(default_rate_limit=0.5, clock=clock)
    auth.update([plain, own])
    auth.check(f"Bearer {plain_key}", Scope.PREDICT)  # capacity is at least one request
    with pytest.raises(RateLimitedError) as info:
        auth.check(f"Bearer {plain_key}", Scope.PREDICT)
    assert info.value.retry_after == pytest.approx(2.0)
    for _ in range(5):
        auth.check(f"Bearer {own_key}", Scope.PREDICT)
    unlimited = Authenticator(clock=clock)
    unlimited.update([plain])
    for _ in range(1000):
        unlimited.check(f"Bearer {plain_key}", Scope.PREDICT)


def test_revoked_keys_drop_out_on_update() -> None:
    record, key = _key(Scope.PREDICT)
    auth = Authenticator()
    auth.update([record])
    auth.check(f"Bearer {key}", Scope.PREDICT)
    auth.update([])
    with pytest.raises(AuthenticationError):
        auth.check(f"Bearer {key}", Scope.PREDICT)


def test_over_http_the_burst_is_one_seconds_worth_and_retry_after_is_honest() -> None:
    """The server's answers with its clock frozen, then moved by what Retry-After said: the
    checks pass before the model lookup, so an empty data plane's 404 means "let through"."""
    clock = Clock()
    limited, key = _key(Scope.PREDICT, rate=2)
    other, other_key = _key(Scope.PREDICT, rate=2)
    auth = Authenticator(clock=clock)
    auth.update([limited, other])
    app = create_app(DataPlane(), authenticator=auth)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://seaway") as client:

            async def infer(key: str) -> httpx.Response:
                headers = {"authorization": f"Bearer {key}"}
                return await client.post("/v2/models/fraud/infer", json={}, headers=headers)

            statuses = [(await infer(key)).status_code for _ in range(2)]
            assert statuses == [404, 404]  # the burst: one second's worth
            limited_answer = await infer(key)
            assert limited_answer.status_code == 429, limited_answer.text
            error = limited_answer.json()["error"]
            assert "rate limit" in error and key not in error, error
            wait = limited_answer.headers["retry-after"]
            assert wait == "1", limited_answer.headers  # half a second, in whole seconds
            assert (await infer(other_key)).status_code == 404  # other keys are not limited
            clock.now += int(wait) - 0.01
            assert (await infer(key)).status_code == 404  # half a second refilled one
            assert (await infer(key)).status_code == 429
            clock.now += int(wait)
            assert [(await infer(key)).status_code for _ in range(3)] == [404, 404, 429]

    asyncio.run(run())
