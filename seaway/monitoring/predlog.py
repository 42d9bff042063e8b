"""The prediction log's writer: what a served (or batch-scored) model was asked and answered.

On a request's path :meth:`ModelLog.record` only decides whether to keep the request (its
model's sample rate, with an injectable ``random.Random``) and appends a tuple of references
(inputs and outputs as the model saw them, no copy) to one bounded buffer. A full buffer drops
the request and counts the drop: logging never blocks, slows down much, or fails a request.

A background thread (started with the first model that logs) turns what is buffered into Arrow
tables (``logtable.py``, where pyarrow is imported: a server that logs nothing never imports it)
and commits Parquet parts into the layout of ``logstore.py``: when ``flush_rows`` rows wait, or
the oldest has waited ``flush_seconds``. After each part, the model's window summary is written
beside it when the model has a reference profile. Every ``sweep_seconds`` it deletes what is
older than ``retention``; every ``compact_seconds`` it merges the small parts of closed hours
(``compact.py``), a bounded amount at a time. A write that fails is counted (rows lost, ``write_errors``) and logged
once until writing works again; the server goes on. :meth:`PredictionLog.close` writes whatever
is buffered: a clean stop loses nothing that was accepted.

The clock and the thread are injectable (``clock``, ``start=False`` and :meth:`PredictionLog.poll`)
so tests decide when time passes. Batch workers use :meth:`ModelLog.write_rows`, which writes at
once, in the calling thread.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import operator
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from seaway.monitoring import logstore

if TYPE_CHECKING:
    from seaway.monitoring.compact import CompactReport
    from seaway.monitoring.logtable import Meta, Part
    from seaway.packaging.profile import ReferenceProfile

log = logging.getLogger("seaway.monitoring.predlog")

ProfileSource = Callable[[], "ReferenceProfile | None"]
#: the counters a model's log keeps (``ModelLog.counts``)
COUNTERS = ("accepted", "requests", "rows", "dropped", "write_errors", "failed_rows", "files")


@dataclass(frozen=True)
class LogConfig:
    """Where and how often the log writes. ``buffer_rows`` bounds memory: rows held before
    requests are dropped; below ``flush_rows``, parts are written by time alone."""

    root: str
    retention: timedelta | None = timedelta(days=30)
    buffer_rows: int = 100_000
    flush_rows: int = 10_000
    flush_seconds: float = 60.0
    sweep_seconds: float = 3600.0
    #: how often the small parts of closed hours are merged (``compact.py``); None: never
    compact_seconds: float | None = 300.0
    #: hours merged in one round at most (a round also stops as soon as a flush is due)
    compact_hours: int = 12


class ModelLog:
    """One model version's side of the log: its sample rate, exclusions and counters."""

    __slots__ = (
        "_log",
        "_profile_source",
        "_random",
        "_reported",
        "accepted",
        "classes",
        "dropped",
        "exclude",
        "failed_rows",
        "files",
        "model",
        "pending",
        "profile",
        "requests",
        "rows",
        "sample",
        "version",
        "write_errors",
    )  # fmt: skip

    def __init__(
        self,
        log: PredictionLog,
        model: str,
        version: str,
        sample: float,
        exclude: Iterable[str],
        classes: Sequence[Any] | None,
        profile: ProfileSource | None,
    ) -> None:
        self._log = log
        self._random = log.rng.random
        self.model = model
        self.version = version
        self.sample = sample
        self.exclude = frozenset(exclude)
        self.classes = list(classes) if classes is not None else None
        self._profile_source = profile
        self.profile: ReferenceProfile | None = None
        self.accepted = self.requests = self.rows = self.dropped = 0
        self.write_errors = self.failed_rows = self.files = 0
        self._reported: tuple[int, ...] | None = None
        #: requests waiting for the writer. Kept per version so that a record holds no object
        #: the garbage collector tracks (arrays and their dicts are not): a tracked record
        #: would be walked by every collection while it waits.
        self.pending: list[tuple[Any, ...]] = []

    def record(
        self,
        inputs: Any,
        outputs: Mapping[str, Any],
        rows: int,
        latency_s: float,
        request_id: str | None,
        *,
        drawn: bool = False,
    ) -> None:
        """Keep this request for the log (sampled), or count it dropped; never raises.
        ``drawn``: the caller already drew it with :meth:`take`."""
        try:
            if not drawn and self.sample < 1.0 and self._random() >= self.sample:
                return
            log = self._log
            now = log.clock()
            # dicts become tuples of keys and of values: a record of tuples, strings, numbers
            # and arrays leaves the garbage collector's view after its first collection
            names: tuple[str, ...] | None = None
            if type(inputs) is dict:
                names, inputs = tuple(inputs), tuple(inputs.values())
            keys, values = tuple(outputs), tuple(outputs.values())
            with log.lock:
                held = log.buffered_rows
                if held + rows > log.config.buffer_rows or log.closed:
                    self.dropped += 1
                    return
                if not held:
                    log.oldest = now
                log.buffered_rows = held + rows
                self.pending.append((request_id, inputs, names, rows, keys, values, latency_s, now))
                self.accepted += 1
            if held < log.config.flush_rows <= held + rows:
                log.wake.set()
        except Exception:  # a log must never fail a request
            self.dropped += 1

    def take(self) -> bool:
        """Draw whether a request is logged, before it is predicted (a server that logs a
        classifier's probabilities asks the model for them only for these); then ``record`` it
        with ``drawn=True``."""
        return self.sample >= 1.0 or self._random() < self.sample

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}

    def write_rows(
        self,
        inputs: Any,
        outputs: Mapping[str, Any],
        *,
        request_ids: Sequence[str],
        rows: Sequence[int],
        keys: Sequence[str | None] | None = None,
        job_id: str | None = None,
        when: datetime | None = None,
    ) -> int:
        """Write these rows now, in this thread (a batch worker's chunk); counts them like a
        served request's. Returns the rows written (0 after a write error, counted)."""
        import numpy as np

        from seaway.monitoring.logtable import Meta

        n = len(request_ids)
        stamp = int((when or datetime.fromtimestamp(self._log.clock(), UTC)).timestamp() * 1e6)
        meta = Meta(
            np.asarray(request_ids, dtype=object),
            np.asarray(rows, dtype=np.int64),
            np.full(n, stamp, dtype=np.int64),
            None,
            self._log.source,
            job_id,
            np.asarray(keys, dtype=object) if keys is not None else None,
        )
        self.accepted += n
        return self._log.write(self, inputs, outputs, meta, requests=n)


def _by_outputs(group: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """Requests that asked for the same outputs, in one table each (nearly always all)."""
    if len(set(map(_OUTPUT_NAMES, group))) == 1:
        return [group]
    split: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for item in group:
        split.setdefault(item[4], []).append(item)
    return list(split.values())


_OUTPUT_NAMES = operator.itemgetter(4)


def arrow_available() -> bool:
    """Whether pyarrow (the ``seaway[monitor]`` extra) is installed, without importing it."""
    return importlib.util.find_spec("pyarrow") is not None


class PredictionLog:
    """The log of one process (a server, a front worker, a batch worker)."""

    def __init__(
        self,
        config: LogConfig,
        *,
        source: str = "serve",
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        start: bool = True,
    ) -> None:
        self.config = config
        self.source = source
        self.clock = clock
        self.rng = rng or random.Random()
        self._token = uuid.uuid4().hex[:8]
        self.started = datetime.fromtimestamp(clock(), UTC)
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.buffered_rows = 0
        self.oldest = 0.0
        self._models: dict[tuple[str, str], ModelLog] = {}
        self._autostart = start
        self._thread: threading.Thread | None = None
        self._closing = False
        #: closed: requests recorded now would never be written, so they count as dropped
        self.closed = False
        self._failing = False
        self._said_no_arrow = False
        self._no_summary: set[ModelLog] = set()
        self._next_sweep = 0.0
        # the first round at a point of the second interval that differs between processes
        # (front workers started together would otherwise merge the same hours at once)
        spread = 1.0 + int(self._token, 16) % 1000 / 1000
        self._next_compact = clock() + (config.compact_seconds or 0.0) * spread
        self._compact_failing = False
        self._store: tuple[Any, str] | None = None

    # ---- models -----------------------------------------------------------------------------

    def model(
        self,
        name: str,
        version: str,
        *,
        sample: float,
        exclude: Iterable[str] = (),
        classes: Sequence[Any] | None = None,
        profile: ProfileSource | None = None,
    ) -> ModelLog | None:
        """The handle that logs ``name`` ``version``; None when its sample rate is 0 (off)."""
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"a log sample rate is between 0 and 1, got {sample}")
        if sample == 0.0:
            return None
        if not arrow_available():
            if not self._said_no_arrow:
                self._said_no_arrow = True
                log.error(
                    "prediction log: %s version %s asks to be logged, but pyarrow is not "
                    "installed; not logging it. Install it with: pip install 'seaway[monitor]'",
                    name, version,
                )  # fmt: skip
            return None
        key = (name, str(version))
        found = self._models.get(key)
        if found is None:
            found = self._models[key] = ModelLog(
                self, name, str(version), sample, exclude, classes, profile
            )
        else:  # the version again (a reload): its counts and waiting requests go on
            found.sample, found.exclude = sample, frozenset(exclude)
        if self._autostart and self._thread is None and not self._closing:
            self._thread = threading.Thread(
                target=self._run, name="seaway-prediction-log", daemon=True
            )
            self._thread.start()
        return found

    @property
    def writer_id(self) -> str:
        """Names this writer's counters file; the process id keeps forked copies apart."""
        return f"{socket.gethostname()}-{os.getpid()}-{self._token}"

    @property
    def models(self) -> list[ModelLog]:
        return list(self._models.values())

    def stats(self) -> dict[str, Any]:
        """The log's own summary: where it writes and what each model's log counted."""
        handles = self.models
        models = [
            {"model": m.model, "version": m.version, "sample": m.sample, **m.counts()}
            for m in handles
        ]
        totals = {name: sum(getattr(m, name) for m in handles) for name in COUNTERS}
        return {
            "root": self.config.root,
            "writer": self.writer_id,
            "buffered_rows": self.buffered_rows,
            **totals,
            "models": models,
        }

    # ---- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        interval = max(0.05, min(1.0, self.config.flush_seconds / 4))
        while not self._closing:
            self.wake.wait(interval)
            self.wake.clear()
            try:
                self.poll()
            except Exception:  # pragma: no cover - poll counts its own failures
                log.exception("prediction log: unexpected error in the writer")
        self.poll(force=True)

    def poll(self, *, force: bool = False) -> int:
        """One round of the writer: flush when due (``force``: now), sweep when due. Returns
        the rows written."""
        now = self.clock()
        with self.lock:
            due = self.buffered_rows > 0 and (
                force
                or self.buffered_rows >= self.config.flush_rows
                or now - self.oldest >= self.config.flush_seconds
            )
        batches = self.take() if due else []
        written = self.flush(batches) if batches else 0
        if force or batches:
            self.report()
        if self.config.retention is not None and now >= self._next_sweep:
            self._next_sweep = now + self.config.sweep_seconds
            self.sweep(now)
        every = self.config.compact_seconds
        if every is not None and now >= self._next_compact and not force:
            self._next_compact = now + every
            self.compact(now)
        return written

    def take(self) -> list[tuple[ModelLog, list[tuple[Any, ...]]]]:
        """Everything buffered, by version, leaving the buffer empty."""
        with self.lock:
            batches = [(h, h.pending) for h in self._models.values() if h.pending]
            for handle, _ in batches:
                handle.pending = []
            self.buffered_rows = 0
        return batches

    @property
    def buffer(self) -> list[tuple[Any, ...]]:
        """What waits, as ``(model log, request id, inputs, rows, outputs, latency, time)``."""
        return [
            (h, rid, dict(zip(names, inputs, strict=True)) if names else inputs, rows,
             dict(zip(keys, values, strict=True)), latency, when)
            for h in self._models.values()
            for rid, inputs, names, rows, keys, values, latency, when in h.pending
        ]  # fmt: skip

    def flush(self, batches: list[tuple[ModelLog, list[tuple[Any, ...]]]]) -> int:
        """Write requests taken from the buffer: one table per version and set of outputs."""
        from seaway.monitoring.logtable import concat_inputs, concat_named, serve_meta

        written = 0
        for handle, group in batches:
            for same in _by_outputs(group):
                ids, inputs, names, rows, keys, values, latencies, times = zip(*same, strict=True)
                try:
                    if None in ids:
                        ids = tuple(rid or uuid.uuid4().hex for rid in ids)
                    meta = serve_meta(ids, rows, times, latencies)
                    native = concat_inputs(inputs, names)
                    answers = concat_named(keys[0], values)
                except Exception as exc:
                    self._failed(handle, sum(rows), exc)
                    continue
                written += self.write(handle, native, answers, meta, requests=len(same))
        return written

    def write(
        self,
        handle: ModelLog,
        inputs: Any,
        outputs: Mapping[str, Any],
        meta: Meta,
        *,
        requests: int,
    ) -> int:
        """Commit these rows as parts (one per day) with their window summaries; count them."""
        from seaway.monitoring.logtable import build_parts, to_parquet

        n = len(meta.row)
        try:
            parts = build_parts(
                inputs, outputs, meta, classes=handle.classes, exclude=handle.exclude
            )
            fs, base = self.store()
            for part in parts:
                day = datetime.fromtimestamp(part.day * 86400, UTC).date()
                folder = logstore.date_path(base, handle.model, handle.version, day)
                name = logstore.part_name(datetime.fromtimestamp(self.clock(), UTC))
                logstore.commit(fs, f"{folder}/{name}", to_parquet(part.table))
                handle.files += 1
                self._summarize(handle, fs, f"{folder}/{logstore.summary_name(name)}", part)
        except Exception as exc:
            self._failed(handle, n, exc)
            return 0
        handle.requests += requests
        handle.rows += n
        if self._failing:
            self._failing = False
            log.info("prediction log: writing to %s again", self.config.root)
        return n

    def store(self) -> tuple[Any, str]:
        if self._store is None:
            self._store = logstore.open_store(self.config.root)
        return self._store

    def _failed(self, handle: ModelLog, rows: int, exc: Exception) -> None:
        handle.write_errors += 1
        handle.failed_rows += rows
        if not self._failing:
            self._failing = True
            log.warning(
                "prediction log: cannot write %s rows of %s version %s to %s: %s: %s (counted in "
                "seaway_prediction_log_write_errors_total; said once until a write succeeds)",
                rows, handle.model, handle.version, self.config.root, type(exc).__name__, exc,
            )  # fmt: skip

    def _summarize(self, handle: ModelLog, fs: Any, path: str, part: Part) -> None:
        """The part's window summary, when the model has a reference profile; a summary that
        fails costs the summary, not the part."""
        profile = self._profile(handle)
        if profile is None or part.features.empty:
            return
        try:
            from seaway.monitoring.summary import summarize

            start, end = part.span()
            text = summarize(part.features, profile, start=start, end=end).to_json()
            logstore.commit(fs, path, text.encode("utf-8"))
        except Exception as exc:
            if handle in self._no_summary:
                return
            self._no_summary.add(handle)
            log.warning(
                "prediction log: no window summary for %s version %s (said once): %s: %s",
                handle.model, handle.version, type(exc).__name__, exc,
            )  # fmt: skip

    @staticmethod
    def _profile(handle: ModelLog) -> ReferenceProfile | None:
        source = handle._profile_source
        if source is not None:
            handle._profile_source = None  # loaded once, here, off the request path
            try:
                handle.profile = source()
            except Exception as exc:
                log.warning(
                    "prediction log: cannot read the reference profile of %s version %s (no "
                    "window summaries): %s",
                    handle.model, handle.version, exc,
                )  # fmt: skip
        return handle.profile

    def report(self) -> None:
        """Leave each model's counters beside its parts (``_writer-<id>.json``), where
        ``seaway monitor log`` sums them."""
        for handle in self.models:
            counts = tuple(handle.counts().values())
            if counts == handle._reported:
                continue
            doc = {
                "writer": self.writer_id,
                "source": self.source,
                "started": self.started.isoformat(),
                "updated": datetime.fromtimestamp(self.clock(), UTC).isoformat(),
                "counts": handle.counts(),
            }
            try:
                fs, base = self.store()
                folder = logstore.version_path(base, handle.model, handle.version)
                path = f"{folder}/{logstore.WRITER_PREFIX}{self.writer_id}.json"
                logstore.commit(fs, path, json.dumps(doc).encode("utf-8"))
            except Exception:  # the parts' own failures were counted and said
                continue
            handle._reported = counts

    def sweep(self, now: float | None = None) -> int:
        """Delete the logged models' files older than the retention; returns how many."""
        retention = self.config.retention
        if retention is None or not self._models:
            return 0
        moment = datetime.fromtimestamp(self.clock() if now is None else now, UTC)
        try:
            return logstore.sweep(
                self.config.root, {m.model for m in self.models}, moment - retention
            )
        except Exception as exc:
            log.warning(
                "prediction log: the retention sweep of %s failed: %s", self.config.root, exc
            )
            return 0

    def compact(self, now: float | None = None) -> CompactReport | None:
        """Merge the small parts of the closed hours of the versions this process logs, in the
        last two days' folders (``compact.py``): at most ``compact_hours`` hours, and stopping
        as soon as a flush is due, so a flush waits for one hour's merge at most. Failures are
        logged (once until one succeeds), never raised. None: nothing is logged."""
        from seaway.monitoring.compact import CompactReport, compact

        if not self._models:
            return None
        moment = datetime.fromtimestamp(self.clock() if now is None else now, UTC)
        report = CompactReport()
        try:
            for handle in self.models:
                compact(
                    self.config.root, model=handle.model, version=handle.version, now=moment,
                    days=1, max_hours=self.config.compact_hours, should_stop=self._flush_due,
                    report=report,
                )  # fmt: skip
                if report.stopped:
                    break
        except Exception as exc:
            if not self._compact_failing:
                self._compact_failing = True
                log.warning(
                    "prediction log: compacting %s failed (said once until it works): %s: %s",
                    self.config.root, type(exc).__name__, exc,
                )  # fmt: skip
            return report
        self._compact_failing = False
        return report

    def _flush_due(self) -> bool:
        with self.lock:
            held, oldest = self.buffered_rows, self.oldest
        config = self.config
        return self._closing or (
            held > 0
            and (held >= config.flush_rows or self.clock() - oldest >= config.flush_seconds)
        )

    # ---- lifecycle --------------------------------------------------------------------------

    def close(self, timeout: float | None = 60.0) -> None:
        """Write everything buffered and stop the writer thread (idempotent)."""
        self._closing = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self.wake.set()
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            with contextlib.suppress(Exception):
                self.poll(force=True)  # nothing left after the thread's own last round
        with self.lock:
            self.closed = True
        if self.buffered_rows:  # recorded between the last round and now
            with contextlib.suppress(Exception):
                self.poll(force=True)
