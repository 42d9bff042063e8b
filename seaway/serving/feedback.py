"""``POST /v2/models/{name}/feedback``'s writer: labels go to the feedback store off the event loop.

Each answer waits until its labels are committed (a 200 means they are stored), but concurrent
requests share a write: while one part is being written, the requests that arrive are gathered
and written together next (group commit), so a burst of one-label requests makes a few files, not
one per request, and the loop never waits on the disk or the object store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from seaway.errors import ArtifactStoreError, SeawayError
from seaway.monitoring.feedback import FeedbackItem, record_feedback

Pending = tuple[str, list[FeedbackItem], "asyncio.Future[int]"]


class FeedbackWriter:
    def __init__(
        self,
        root: str,
        *,
        write: Callable[..., int] = record_feedback,
    ) -> None:
        self.root = root
        self._write = write
        self._pending: list[Pending] = []
        self._task: asyncio.Task[None] | None = None
        #: parts written, for tests and metrics
        self.writes = 0

    async def record(self, model: str, items: list[FeedbackItem]) -> int:
        """Store ``items`` for ``model``; returns how many once they are committed."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((model, items, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            errors = await asyncio.to_thread(self._commit, batch, datetime.now().astimezone())
            for model, items, future in batch:
                if future.done():  # its request went away; its labels were written all the same
                    continue
                error = errors.get(model)
                if error is None:
                    future.set_result(len(items))
                else:
                    future.set_exception(error)

    def _commit(self, batch: list[Pending], now: datetime) -> dict[str, Exception]:
        """One part per model; a model whose write fails fails its own requests only."""
        by_model: dict[str, list[FeedbackItem]] = {}
        for model, items, _ in batch:
            by_model.setdefault(model, []).extend(items)
        errors: dict[str, Exception] = {}
        for model, items in by_model.items():
            try:
                self._write(model, items, root=self.root, now=now)
                self.writes += 1
            except SeawayError as exc:  # reported to each waiting request as it is
                errors[model] = exc
            except Exception as exc:  # a full disk, a read-only folder, a bucket gone: the store's
                errors[model] = ArtifactStoreError(  # 503, naming why (not a 500 and a traceback)
                    f"cannot store the labels of {model!r} in {self.root}: {exc}"
                )
        return errors

    async def close(self) -> None:
        """Wait for the writes under way."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
