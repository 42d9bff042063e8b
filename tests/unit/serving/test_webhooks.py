"""Alert webhooks (issue 11, item 5) against a real receiver on 127.0.0.1: the JSON body, retries
with backoff on 500, no retry on another 4xx, a timeout on a receiver that hangs, a full queue
dropping (counted), and one stuck webhook not holding up another. Counts, never durations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from webhook_receiver import Receiver

from seaway.registry.alerts import AlertEvent
from seaway.serving.webhooks import WebhookSender, WebhookSpec, payload

EVENT = AlertEvent(
    rule="fraud-errors",
    model="fraud",
    version="3",
    state="firing",
    value=0.12,
    threshold=0.05,
    message="error rate of fraud/3 is 12.0%, above 5.0%, over 5m",
    time=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
    kind="error_rate_above",
    severity="critical",
    id=7,
)


async def until(done: Callable[[], bool], what: str) -> None:
    """Wait (on the event loop) until ``done()``; the bound only stops a broken test hanging."""
    for _ in range(6000):
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


class Sleeps:
    """An injected sleep: records each backoff and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def spec(receiver: Receiver, **fields: Any) -> WebhookSpec:
    return WebhookSpec.model_validate({"url": receiver.url, **fields})


def test_an_event_arrives_as_json_with_the_configured_headers() -> None:
    async def main() -> None:
        with Receiver() as receiver:
            sender = WebhookSender([spec(receiver, headers={"Authorization": "Bearer s3cret"})])
            sender.start()
            sender.submit(EVENT)
            label = sender.labels[0]
            await until(lambda: sender.counts[label].sent == 1, "delivered")
            await sender.close()
            ((headers, body),) = receiver.requests
        headers = {key.lower(): value for key, value in headers.items()}
        assert headers["authorization"] == "Bearer s3cret"
        assert headers["content-type"] == "application/json"
        assert body == {
            "id": 7,
            "rule": "fraud-errors",
            "kind": "error_rate_above",
            "severity": "critical",
            "model": "fraud",
            "version": "3",
            "state": "firing",
            "value": 0.12,
            "threshold": 0.05,
            "message": "error rate of fraud/3 is 12.0%, above 5.0%, over 5m",
            "time": "2026-12-01T09:00:00+00:00",
            "summary": "[FIRING] critical fraud-errors: error rate of fraud/3 is 12.0%, above "
            "5.0%, over 5m",
        }
        assert label == receiver.url.split("/")[2]  # host:port, never the path or query
        assert "http" not in body["summary"]  # no links

    asyncio.run(main())


def test_a_500_is_retried_with_exponential_backoff_until_it_succeeds() -> None:
    async def main() -> None:
        sleeps = Sleeps()
        with Receiver(plan=[500, 503, 500]) as receiver:
            sender = WebhookSender([spec(receiver, retries=4, backoff=0.5)], sleep=sleeps)
            sender.start()
            sender.submit(EVENT)
            label = sender.labels[0]
            await until(lambda: sender.counts[label].sent == 1, "delivered")
            await sender.close()
            assert len(receiver.requests) == 4  # three failures, then success
        assert sleeps.delays == [0.5, 1.0, 2.0]
        counts = sender.counts[label]
        assert (counts.sent, counts.failed, counts.retried, counts.dropped) == (1, 0, 3, 0)

    asyncio.run(main())


def test_retries_run_out_and_a_refusal_is_not_retried() -> None:
    async def main() -> None:
        sleeps = Sleeps()
        with Receiver(then=500) as failing, Receiver(then=400) as refusing:
            sender = WebhookSender(
                [spec(failing, retries=2, name="down"), spec(refusing, retries=5, name="picky")],
                sleep=sleeps,
            )
            sender.start()
            sender.submit(EVENT)
            await until(lambda: sender.counts["down"].failed == 1, "down gave up")
            await until(lambda: sender.counts["picky"].failed == 1, "picky refused")
            await sender.close()
            assert (len(failing.requests), len(refusing.requests)) == (3, 1)
        assert sender.counts["down"].sent == sender.counts["picky"].sent == 0

    asyncio.run(main())


def test_a_hanging_receiver_times_out_and_counts_as_failed() -> None:
    async def main() -> None:
        sleeps = Sleeps()
        with Receiver(then="hang") as receiver:
            sender = WebhookSender([spec(receiver, timeout=0.2, retries=1)], sleep=sleeps)
            sender.start()
            sender.submit(EVENT)
            label = sender.labels[0]
            await until(lambda: sender.counts[label].failed == 1, "timed out twice")
            await sender.close()
            assert receiver.hanging == 2  # the first attempt and its one retry
        assert sender.counts[label].sent == 0

    asyncio.run(main())


def test_a_full_queue_drops_and_counts_and_a_stuck_webhook_holds_up_no_other() -> None:
    async def main() -> None:
        with Receiver(then="hang") as stuck, Receiver() as healthy:
            sender = WebhookSender(
                [
                    spec(stuck, name="stuck", queue=2, timeout=60, retries=0),
                    spec(healthy, name="healthy"),
                ]
            )
            sender.start()
            sender.submit(EVENT)
            await asyncio.to_thread(stuck.wait_for, lambda r: r.hanging == 1)  # in flight
            for _ in range(4):
                sender.submit(EVENT)  # never waits, whatever the stuck receiver does
            assert sender.counts["stuck"].dropped == 2  # two queued behind the stuck one
            await until(lambda: sender.counts["healthy"].sent == 5, "the healthy one got all")
            assert sender.counts["healthy"].dropped == 0
            assert sender.counts["stuck"].sent == 0
            stuck.release()
            await until(lambda: sender.counts["stuck"].sent == 3, "the stuck one caught up")
            await sender.close()

    asyncio.run(main())


def test_payload_has_no_nan() -> None:
    body = payload(AlertEvent("r", "m", "1", "resolved", float("nan"), None, "gone", EVENT.time))
    assert body["value"] is None and body["state"] == "resolved"
    assert body["summary"].startswith("[RESOLVED] warning r: gone")


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"url": "ftp://x/hook"}, "not an http:// or https:// URL"),
        ({"url": "http:///hook"}, "not an http"),
        ({"url": "http://x", "timeout": 0}, "greater than 0"),
        ({"url": "http://x", "retries": -1}, "greater than or equal to 0"),
        ({"url": "http://x", "queue": 0}, "greater than or equal to 1"),
        ({"url": "http://x", "secret": "y"}, "Extra inputs"),
    ],
)
def test_bad_webhooks_say_what_is_wrong(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        WebhookSpec.model_validate(fields)


def test_labels_are_unique() -> None:
    sender = WebhookSender(
        [
            WebhookSpec(url="http://h:1/a"),
            WebhookSpec(url="http://h:1/b"),
            WebhookSpec(url="https://x/"),
        ]
    )
    assert sender.labels == ["h:1", "h:1-2", "x"]


def test_header_values_may_name_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "s3cret")
    spec = WebhookSpec(url="http://x/", headers={"Authorization": "Bearer ${HOOK_TOKEN}"})
    assert spec.headers == {"Authorization": "Bearer s3cret"}
    monkeypatch.delenv("HOOK_TOKEN")
    with pytest.raises(ValidationError, match=r"refers to \$\{HOOK_TOKEN\}, which is not set"):
        WebhookSpec(url="http://x/", headers={"Authorization": "Bearer ${HOOK_TOKEN}"})
