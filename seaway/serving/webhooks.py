"""Alert webhooks: each firing or resolving event POSTed as JSON to the configured URLs.

A webhook is how a retraining pipeline or a pager hears of an alert, and it must never harm
serving: each webhook has its own bounded queue and one background task that delivers from it,
so a receiver that hangs or fails delays only its own later deliveries. :meth:`WebhookSender.submit`
never waits: with the queue full the event is dropped for that webhook and counted. Each attempt
has a timeout over the whole exchange; a connection error, a timeout, a 429 or a 5xx is retried
with exponential backoff (``backoff``, then twice that, ... up to a minute), another 4xx is not
(the receiver refused this body; sending it again would not help). Outcomes are counted per
webhook (``seaway_webhook_deliveries_total{webhook, result}``: sent, failed, dropped).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from seaway.registry.alerts import AlertEvent

log = logging.getLogger("seaway.serving.webhooks")
_BACKOFF_CAP = 60.0
RESULTS = ("sent", "failed", "dropped")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")  # an HTTP header name (RFC 9110)


class WebhookSpec(BaseModel):
    """One entry of the serving config's ``webhooks:`` list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    #: the ``webhook`` label of its delivery counts; default: the URL's host and port
    name: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    #: seconds one attempt may take, connecting to reading the answer
    timeout: float = Field(default=5.0, gt=0)
    #: attempts after the first
    retries: int = Field(default=3, ge=0, le=20)
    #: seconds before the first retry; each next one waits twice as long (up to a minute)
    backoff: float = Field(default=1.0, ge=0)
    #: events waiting for delivery before new ones are dropped
    queue: int = Field(default=1000, ge=1)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 -- checked here, not when the server names the webhook
        except ValueError as exc:  # a port out of range or not a number, a broken IPv6 address
            raise ValueError(f"{value!r} is not a valid URL: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("headers")
    @classmethod
    def _expand(cls, headers: dict[str, str]) -> dict[str, str]:
        """``${NAME}`` in a header's value is the environment variable NAME: a token need not
        sit in the config file."""

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ValueError(f"a webhook header refers to ${{{name}}}, which is not set")
            return os.environ[name]

        expanded = {key: _VARIABLE.sub(value, text) for key, text in headers.items()}
        for key, text in expanded.items():
            if not _TOKEN.match(key) or any(c in text for c in "\r\n\0"):
                raise ValueError(
                    f"webhook header {key!r}: a name is letters, digits and -_.!#$%&'*+^`|~, "
                    "a value one line"
                )
        return expanded

    @property
    def label(self) -> str:
        parts = urlsplit(self.url)
        return self.name or (f"{parts.hostname}:{parts.port}" if parts.port else parts.netloc)


def payload(event: AlertEvent) -> dict[str, Any]:
    """The JSON body: the event's fields and a one-line summary for chat or a pager (no links)."""
    body = event.to_dict()
    body["summary"] = f"[{event.state.upper()}] {event.severity} {event.rule}: {event.message}"
    return body


@dataclass
class Deliveries:
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    #: attempts beyond the first
    retried: int = 0


class WebhookSender:
    """Delivers events to every webhook from background tasks; :meth:`start` in the event loop."""

    def __init__(
        self,
        specs: Sequence[WebhookSpec],
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.specs = list(specs)
        self.labels = _unique([spec.label for spec in self.specs])
        self.counts = {label: Deliveries() for label in self.labels}
        self._sleep = sleep
        self._transport = transport
        self._queues: list[asyncio.Queue[bytes]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for spec, label in zip(self.specs, self.labels, strict=True):
            queue: asyncio.Queue[bytes] = asyncio.Queue(spec.queue)
            self._queues.append(queue)
            self._tasks.append(asyncio.create_task(self._deliver_all(spec, label, queue)))

    def submit(self, event: AlertEvent) -> None:
        """Queue ``event`` for every webhook; never waits (a full queue drops it, counted)."""
        body = orjson.dumps(payload(event))
        for queue, label in zip(self._queues, self.labels, strict=True):
            try:
                queue.put_nowait(body)
            except asyncio.QueueFull:
                self.counts[label].dropped += 1
                log.warning("webhook %s: queue full, alert event dropped", label)

    @property
    def pending(self) -> int:
        """Events queued and not yet taken for delivery, over all webhooks."""
        return sum(queue.qsize() for queue in self._queues)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _deliver_all(
        self, spec: WebhookSpec, label: str, queue: asyncio.Queue[bytes]
    ) -> None:
        headers = {"content-type": "application/json", **spec.headers}
        async with httpx.AsyncClient(
            timeout=spec.timeout, headers=headers, transport=self._transport
        ) as client:
            while True:
                body = await queue.get()
                if await self._deliver(client, spec, label, body):
                    self.counts[label].sent += 1
                else:
                    self.counts[label].failed += 1

    async def _deliver(
        self, client: httpx.AsyncClient, spec: WebhookSpec, label: str, body: bytes
    ) -> bool:
        problem = ""
        for attempt in range(spec.retries + 1):
            if attempt:
                self.counts[label].retried += 1
                await self._sleep(min(spec.backoff * 2 ** (attempt - 1), _BACKOFF_CAP))
            try:
                async with asyncio.timeout(spec.timeout):
                    answer = await client.post(spec.url, content=body)
            except (httpx.HTTPError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if answer.is_success:
                return True
            problem = f"HTTP {answer.status_code}"
            if answer.status_code < 500 and answer.status_code != 429:
                break  # the receiver refused this body: sending it again would not help
        log.warning("webhook %s: alert event not delivered (%s)", label, problem)
        return False


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label}-{seen[label]}")
    return unique
