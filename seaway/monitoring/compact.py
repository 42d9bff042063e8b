"""Compaction of the prediction log: the small parts of an hour merged into one part.

Under light traffic the writer commits a part, and its window summary, every
``log_flush_seconds``: thousands of files a week per version, each opened by drift, reports and
performance. Merged by the hour, a week is a few hundred.

In a model/version/date folder, the parts written in an hour that has closed (the clock past its
end by ``grace``: a part is named by its writer's clock as it commits) are merged when there are
at least two, each under ``small_bytes`` and together under ``max_bytes`` (a busy hour's parts are
big already; a larger merge would hold too much in memory). Rows are concatenated in the parts'
order; columns unified as pyarrow unifies them (a column some parts lack is null there, integers
beside floats become floats), as readers concatenating the parts do. Their window summaries are
merged into one. The merged part is named by its latest part's time, so that pruning by the time
in a name still holds. An hour is left as it is, and counted, when its parts' columns cannot be
unified (numbers in one, text in another) or their summaries were measured against different
profiles; an unreadable part is left out of the merge and counted. The commit order, and why a
reader never reads a row twice nor misses one, are in ``logfolder.py``.

It runs in the log's writer thread between flushes (``PredictionLog.compact``: a few hours at a
time, stopping as soon as a flush is due), over the versions the process logs and the last two
days; and as ``seaway monitor compact`` over a whole store, for logs earlier servers or batch jobs
wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from seaway.errors import ArtifactStoreError
from seaway.monitoring import logfolder, logstore
from seaway.monitoring.durations import as_utc
from seaway.monitoring.logfolder import FolderView, Manifest

GRACE = timedelta(minutes=5)
SMALL_BYTES = 8 << 20
MAX_BYTES = 64 << 20
#: how long a manifest whose part never came (a compaction cut short) is kept
ORPHAN_AGE = timedelta(hours=1)
_HOUR = timedelta(hours=1)
#: hours left for a reason that trying again cannot change, by folder and parts: not read again
_LEFT: dict[tuple[str, frozenset[str]], str] = {}
_LEFT_LIMIT = 10_000

COLUMNS_DIFFER = "columns differ"
PROFILES_DIFFER = "summaries of different profiles"
TOO_LARGE = "too large"
UNREADABLE = "unreadable parts"


@dataclass
class CompactReport:
    """What a compaction did."""

    hours: int = 0  # hours merged
    parts: int = 0  # parts merged into them
    rows: int = 0
    removed: int = 0  # replaced files deleted (parts, summaries, manifests)
    left: dict[str, int] = field(default_factory=dict)  # hours (or parts) left, by reason
    conflicts: int = 0  # compacted parts not read: their sets overlap without nesting
    stopped: bool = False  # stopped before the end: a flush was due, or enough hours were done

    def leave(self, reason: str, count: int = 1) -> None:
        self.left[reason] = self.left.get(reason, 0) + count

    def to_dict(self) -> dict[str, Any]:
        return {
            "hours": self.hours,
            "parts": self.parts,
            "rows": self.rows,
            "removed": self.removed,
            "left": dict(self.left),
            "conflicts": self.conflicts,
            "stopped": self.stopped,
        }


@dataclass(frozen=True)
class Group:
    """The parts of one closed hour of one folder, to merge (base names, oldest first)."""

    folder: str
    hour: datetime
    parts: tuple[str, ...]
    summaries: frozenset[str]  # the summaries of these parts that the folder holds
    view: FolderView


class _Left(Exception):
    def __init__(self, reason: str, *, again: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.again = again  # trying again later may work (a file deleted meanwhile)


def compact(
    root: str,
    *,
    model: str | None = None,
    version: str | None = None,
    now: datetime | None = None,
    days: int | None = None,
    grace: timedelta = GRACE,
    small_bytes: int = SMALL_BYTES,
    max_bytes: int = MAX_BYTES,
    max_hours: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    report: CompactReport | None = None,
) -> CompactReport:
    """Merge the small parts of the closed hours of ``model`` (every model when None), one
    ``version`` or all, in the date folders of the last ``days`` days (all when None); delete
    what earlier compactions replaced. ``max_hours`` and ``should_stop`` (asked before each
    hour) bound the work. ``report`` adds to one."""
    fs, base = logstore.open_store(root)
    moment = as_utc(now) if now is not None else datetime.now(UTC)
    first = (moment - timedelta(days=days)).date() if days is not None else None
    report = report if report is not None else CompactReport()
    for folder in _folders(fs, base, model, version, first):
        report.removed += remove_replaced(fs, folder, now=moment)
        for group in plan(fs, folder, now=moment, grace=grace, small_bytes=small_bytes,
                          max_bytes=max_bytes, report=report):  # fmt: skip
            if (max_hours is not None and report.hours >= max_hours) or (
                should_stop is not None and should_stop()
            ):
                report.stopped = True
                return report
            try:
                merged, rows = merge(fs, group, now=moment, report=report)
            except _Left as left:
                report.leave(left.reason)
                if not left.again:
                    _remember(group, left.reason)
                continue
            report.hours += 1
            report.parts += merged
            report.rows += rows
            report.removed += remove_replaced(fs, folder, now=moment)
    return report


def _folders(
    fs: Any, base: str, model: str | None, version: str | None, first: date | None
) -> Iterator[str]:
    models = (
        [logstore.segment("model", model)]
        if model is not None
        else [path.rsplit("/", 1)[-1] for _, path in logstore.partitions(fs, base, "model")]
    )
    for model_dir in models:
        for found, version_dir in logstore.partitions(fs, f"{base}/{model_dir}", "version"):
            if version is not None and found != str(version):
                continue
            for day_text, day_dir in logstore.partitions(fs, version_dir, "date"):
                try:
                    day = date.fromisoformat(day_text)
                except ValueError:
                    continue
                if first is None or day >= first:
                    yield day_dir


def plan(
    fs: Any,
    folder: str,
    *,
    now: datetime,
    grace: timedelta = GRACE,
    small_bytes: int = SMALL_BYTES,
    max_bytes: int = MAX_BYTES,
    report: CompactReport | None = None,
) -> list[Group]:
    """The hours of ``folder`` to merge, oldest first: closed, with two small parts or more."""
    sizes = _sizes(fs, folder)
    seen = logfolder.view(fs, folder, sizes)
    if report is not None:
        report.conflicts += seen.conflicts
    hours: dict[datetime, list[tuple[datetime, str]]] = {}
    for name in seen.parts:
        written = logstore.written_at(name)
        if written is None or sizes[name] >= small_bytes:
            continue
        hour = written.replace(minute=0, second=0, microsecond=0)
        if hour + _HOUR + grace <= now:
            hours.setdefault(hour, []).append((written, name))
    groups = []
    for hour, found in sorted(hours.items()):
        names = tuple(name for _, name in sorted(found))
        known = _LEFT.get((folder, frozenset(names)))
        reason = known or (TOO_LARGE if sum(sizes[n] for n in names) > max_bytes else None)
        if reason is not None:
            if report is not None:
                report.leave(reason)
            continue
        if len(names) >= 2:
            summaries = frozenset(logstore.summary_name(n) for n in names) & sizes.keys()
            groups.append(Group(folder, hour, names, summaries, seen))
    return groups


def merge(fs: Any, group: Group, *, now: datetime, report: CompactReport) -> tuple[int, int]:
    """Merge ``group``'s parts and summaries into one part, committed after its manifest and
    summary; returns the parts merged and their rows. Deletes nothing."""
    import pyarrow as pa

    from seaway.monitoring.logtable import to_parquet

    tables, used = [], []
    for name in group.parts:
        path = f"{group.folder}/{name}"
        try:
            tables.append(_read(fs, path))
        except FileNotFoundError:
            raise _Left("parts deleted meanwhile", again=True) from None
        except (OSError, ValueError, pa.ArrowException) as exc:
            logstore.skipped(path, exc)
            report.leave(UNREADABLE)
            continue
        used.append(name)
    if len(used) < 2:
        raise _Left(UNREADABLE)
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        raise _Left(COLUMNS_DIFFER) from None
    summary = _summary(fs, group, used)
    written = max(w for w in map(logstore.written_at, used) if w is not None)
    part = logstore.part_name(written)
    replaces = set(used)
    for name in used:
        inner = group.view.compacted.get(name)
        if inner is not None:
            replaces |= inner.replaces
    manifest = Manifest(part, frozenset(replaces), table.num_rows, now)
    folder = group.folder
    try:
        logstore.commit(fs, f"{folder}/{logfolder.manifest_name(part)}", manifest.to_json())
        if summary is not None:
            logstore.commit(fs, f"{folder}/{logstore.summary_name(part)}", summary)
        logstore.commit(fs, f"{folder}/{part}", to_parquet(table))
    except OSError as exc:
        raise ArtifactStoreError(
            f"cannot write the compacted part of {folder} at {group.hour:%Y-%m-%d %H}h: {exc} "
            "(nothing was deleted; check the store's space and permissions)"
        ) from exc
    return len(used), table.num_rows


def _summary(fs: Any, group: Group, used: list[str]) -> bytes | None:
    """The merged window summary of the parts ``used`` (those that have one), as JSON."""
    from seaway.monitoring.summary import WindowSummary, merge_all

    found = []
    for name in used:
        summary = logstore.summary_name(name)
        if summary not in group.summaries:
            continue
        path = f"{group.folder}/{summary}"
        try:
            found.append(WindowSummary.from_json(fs.cat_file(path)))
        except FileNotFoundError:
            raise _Left("summaries deleted meanwhile", again=True) from None
        except (OSError, ValueError) as exc:  # readers leave it out too
            logstore.skipped(path, exc)
    if not found:
        return None
    if len({s.profile for s in found}) > 1:
        raise _Left(PROFILES_DIFFER)
    return merge_all(found).to_json().encode("utf-8")


def remove_replaced(
    fs: Any, folder: str, *, now: datetime, orphan_age: timedelta = ORPHAN_AGE
) -> int:
    """Delete the files of ``folder`` that a compacted part replaces (parts, then summaries,
    then manifests: readers skip each of them at every step), and manifests older than
    ``orphan_age`` whose part never came, with their summaries. Returns how many."""
    names = list(_sizes(fs, folder))
    seen = logfolder.view(fs, folder, names)
    present = set(names)
    doomed: list[str] = []
    orphans: list[str] = []
    for name in names:
        part = logfolder.part_of(name)
        if part is None:
            continue
        if part in seen.replaced:
            doomed.append(name)
        elif (
            name.startswith(logfolder.MANIFEST_PREFIX)
            and part not in present
            and _created(fs, f"{folder}/{name}") <= now - orphan_age
        ):
            orphans += [n for n in (logstore.summary_name(part), name) if n in present]
    removed = 0
    for name in [*sorted(doomed, key=logstore.deletion_order), *orphans]:
        try:
            fs.rm(f"{folder}/{name}")
        except FileNotFoundError:
            continue
        removed += 1
    return removed


def _created(fs: Any, path: str) -> datetime:
    manifest = logfolder.read_manifest(fs, path)
    if manifest is None or manifest.created is None:
        return datetime.max.replace(tzinfo=UTC)  # unreadable: keep it
    return manifest.created


def _sizes(fs: Any, folder: str) -> dict[str, int]:
    """The folder's files: base name -> size."""
    try:
        entries = fs.ls(folder, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {
        str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]: int(entry.get("size") or 0)
        for entry in entries
        if entry.get("type") != "directory"
    }


def _read(fs: Any, path: str) -> Any:
    """A whole part (one ``ParquetFile``: ``pq.read_table`` costs more per small file)."""
    import pyarrow.parquet as pq

    if logstore.is_local(fs):
        with pq.ParquetFile(path) as parquet:
            return parquet.read()
    with fs.open(path, "rb") as source, pq.ParquetFile(source) as parquet:
        return parquet.read()


def _remember(group: Group, reason: str) -> None:
    if len(_LEFT) >= _LEFT_LIMIT:
        _LEFT.clear()
    _LEFT[(group.folder, frozenset(group.parts))] = reason
