"""Where the prediction log lives, how its files are named and committed, and how it is read.

The layout is a contract every monitoring command reads (docs/monitoring.md, "Prediction log")::

    <root>/model=<name>/version=<version>/date=<YYYY-MM-DD>/part-<utc time>-<uuid>.parquet
                                                          /_summary-<part stem>.json
                                                          /_compacted-<part stem>.json
                                         /_writer-<writer id>.json

``root`` is a local folder or any fsspec URL (``s3://bucket/predictions``); by default
``<SEAWAY_HOME>/monitoring/predictions``. Names and versions are URL-quoted, which is how
pyarrow's hive partitioning decodes them. A part file is committed atomically: on a local disk
it is written under a name starting with "." and renamed; elsewhere it is one PUT. Readers (this
module, pyarrow.dataset, DuckDB, Spark) skip names starting with "." or "_", so they never see a
file being written, nor the window summaries and writer counters kept beside the parts.
Compaction (``compact.py``) merges an hour's small parts into one and leaves a manifest of what
it replaces; listing resolves each folder (``logfolder.py``) so that no row is read twice.

Reading prunes by the date partitions first, then by the time a part was written (rows are
never later than their part), then filters rows by their own ``time``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from seaway.errors import ArtifactStoreError
from seaway.monitoring import logfolder
from seaway.monitoring.durations import as_utc

if TYPE_CHECKING:
    import pandas as pd

    from seaway.monitoring.summary import WindowSummary

PREDICTIONS = ("monitoring", "predictions")
PART_PREFIX = "part-"
SUMMARY_PREFIX = "_summary-"
WRITER_PREFIX = "_writer-"
_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
_PART = re.compile(r"^part-(\d{8}T\d{12}Z)-[0-9a-f]+\.parquet$")
#: the columns every part holds besides its inputs and outputs, in order
META_COLUMNS = ("request_id", "row", "time", "latency_ms", "source", "job_id", "key")
INPUT_PREFIX = "input."
OUTPUT_PREFIX = "output."

logger = logging.getLogger(__name__)
#: broken files already named (bounded: a log with more broken files is named up to this many)
_SKIPPED: set[str] = set()
_SKIPPED_LIMIT = 10_000


def default_root(home: str | Path | None = None) -> str:
    """``<home>/monitoring/predictions``; the home Seaway's settings resolve to by default."""
    if home is None:
        from seaway.config import Settings

        home = Settings.resolve().home
    return str(Path(home).joinpath(*PREDICTIONS))


def open_store(root: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``root`` and ``root``'s path on it (no trailing slash)."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(root)
    except (ImportError, ValueError) as exc:
        raise ArtifactStoreError(f"cannot open the prediction log store {root!r}: {exc}") from exc
    return fs, str(path).rstrip("/") or "/"


def segment(key: str, value: str) -> str:
    """One hive partition folder name: ``key=<value URL-quoted>``."""
    return f"{key}={quote(str(value), safe='')}"


def version_path(base: str, model: str, version: str) -> str:
    return f"{base}/{segment('model', model)}/{segment('version', version)}"


def date_path(base: str, model: str, version: str, day: date) -> str:
    return f"{version_path(base, model, version)}/date={day.isoformat()}"


def part_name(written: datetime) -> str:
    """A new part's file name: its UTC write time (sortable), then a random unique part."""
    return f"{PART_PREFIX}{as_utc(written).strftime(_TIME_FORMAT)}-{uuid.uuid4().hex}.parquet"


def summary_name(part: str) -> str:
    """The window summary's file name beside part file ``part``."""
    return f"{SUMMARY_PREFIX}{part.rsplit('/', 1)[-1].removesuffix('.parquet')}.json"


def written_at(name: str) -> datetime | None:
    """When a part (or its summary, or its compaction manifest) was written, from its name; None
    for other names."""
    base = logfolder.part_of(name)
    match = _PART.match(base) if base is not None else None
    if match is None:
        return None
    return datetime.strptime(match.group(1), _TIME_FORMAT).replace(tzinfo=UTC)


def commit(fs: Any, path: str, data: bytes) -> None:
    """Write ``data`` at ``path`` so that no reader sees part of it: on a local disk under a
    hidden name, then renamed (atomic on POSIX); on other stores in one PUT."""
    folder, name = path.rsplit("/", 1)
    if is_local(fs):
        fs.makedirs(folder, exist_ok=True)
        hidden = f"{folder}/.{name}.{uuid.uuid4().hex[:8]}"
        try:
            with open(hidden, "wb") as handle:
                handle.write(data)
            Path(hidden).replace(path)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(hidden).unlink()
            raise
        return
    fs.pipe_file(path, data)


def is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocol or "local" in protocol


@dataclass(frozen=True)
class LogFile:
    """One part file (or window summary) of the log."""

    path: str  # on the store's filesystem
    model: str
    version: str
    date: date
    written: datetime


def _listing(fs: Any, path: str) -> list[str]:
    try:
        return [str(p).rstrip("/") for p in fs.ls(path, detail=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def partitions(fs: Any, path: str, key: str) -> list[tuple[str, str]]:
    """The partition folders ``key=value`` under ``path``: (decoded value, folder path)."""
    found = []
    for child in _listing(fs, path):
        name = child.rsplit("/", 1)[-1]
        if name.startswith(f"{key}="):
            found.append((unquote(name[len(key) + 1 :]), child))
    return sorted(found)


def list_files(
    model: str,
    *,
    version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    root: str | None = None,
    summaries: bool = False,
) -> list[LogFile]:
    """The part files (``summaries``: the window summaries) of ``model`` (one ``version``, or
    all) that may hold rows in ``[since, until)``, oldest first."""
    fs, base = open_store(root or default_root())
    since = as_utc(since) if since is not None else None
    until = as_utc(until) if until is not None else None
    prefix = SUMMARY_PREFIX if summaries else PART_PREFIX
    found: list[LogFile] = []
    for found_version, version_dir in partitions(
        fs, f"{base}/{segment('model', model)}", "version"
    ):
        if version is not None and found_version != str(version):
            continue
        for day_text, day_dir in partitions(fs, version_dir, "date"):
            try:
                day = date.fromisoformat(day_text)
            except ValueError:
                continue
            if (since is not None and day < since.date()) or (
                until is not None and day > until.date()
            ):
                continue
            paths = _listing(fs, day_dir)
            read = _reader(fs, day_dir, paths, summaries=summaries)
            for path in paths:
                name = path.rsplit("/", 1)[-1]
                written = written_at(name) if name.startswith(prefix) else None
                if written is None or (since is not None and written < since):
                    continue  # a part written before the window holds no row of it
                if read is None or read(name):
                    found.append(LogFile(path, model, found_version, day, written))
    return sorted(found, key=lambda f: (f.written, f.path))


def _reader(
    fs: Any, folder: str, paths: list[str], *, summaries: bool
) -> Callable[[str], bool] | None:
    """Which of a folder's parts (or summaries) a reader reads, where compaction has been:
    not those a compacted part replaces (``logfolder.py``). None: all of them."""
    names = [path.rsplit("/", 1)[-1] for path in paths]
    if not logfolder.has_manifests(names):
        return None
    seen = logfolder.view(fs, folder, names)
    return seen.reads_summary if summaries else seen.parts.__contains__


def read_log(
    model: str,
    *,
    version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    root: str | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Logged rows of ``model`` with ``since <= time < until`` as one DataFrame sorted by time:
    ``model``, ``version``, the meta columns, ``input.*`` and ``output.*``. Parts written with
    different features are aligned (missing columns are null). Empty: no row, no column but
    ``model`` and ``version``. ``columns`` reads only those (a name ending in ``*`` is a
    prefix: ``output.*``), which is much faster than all of a wide log's columns."""
    import pandas as pd

    fs, _ = open_store(root or default_root())
    for attempt in range(2):  # a part deleted while read: compaction replaced it, list again
        files = list_files(model, version=version, since=since, until=until, root=root)
        frame, vanished = _read_parts(fs, files, since, until, columns)
        if not vanished or attempt:
            break
        _relist(fs)
    if frame is None:
        return pd.DataFrame({"model": pd.Series(dtype=str), "version": pd.Series(dtype=str)})
    return frame


def _read_parts(
    fs: Any,
    files: list[LogFile],
    since: datetime | None,
    until: datetime | None,
    columns: Sequence[str] | None,
) -> tuple[pd.DataFrame | None, bool]:
    """The rows of ``files`` in the window, aligned on the union of their columns; and whether
    a file was deleted before it could be read."""
    import pandas as pd
    import pyarrow as pa

    stamp = pa.timestamp("us", "UTC")
    low = pa.scalar(as_utc(since), stamp) if since is not None else None
    high = pa.scalar(as_utc(until), stamp) if until is not None else None
    local = is_local(fs)
    tables = []
    vanished = False
    for file in files:
        try:
            table = _read_part(fs, file.path, columns, low, high, local=local)
        except FileNotFoundError:  # swept or compacted meanwhile
            vanished = True
            continue
        except (OSError, ValueError, pa.ArrowException) as exc:
            skipped(file.path, exc)
            continue
        if table.num_rows:
            for name, value in (("version", file.version), ("model", file.model)):
                table = table.add_column(0, name, pa.array([value] * table.num_rows, pa.string()))
            tables.append(table)
    if not tables:
        return None, vanished
    try:
        merged = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # a feature logged as numbers in one part and text in another: pandas aligns anything
        frame = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    else:
        frame = merged.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    if "time" in frame.columns:
        frame = frame.sort_values(
            ["time", "row"] if "row" in frame.columns else "time", kind="stable"
        )
    return frame.reset_index(drop=True), vanished


def _relist(fs: Any) -> None:
    """Forget the listings fsspec may keep (object stores), so the next one is fresh."""
    with contextlib.suppress(Exception):
        fs.invalidate_cache()


def _read_part(
    fs: Any, path: str, columns: Sequence[str] | None, low: Any, high: Any, *, local: bool
) -> Any:
    """One part's rows with ``low <= time < high``: the footer read once and only the columns
    asked decoded (``pq.read_table``'s dataset machinery costs several times more per small
    file, and a window of a week holds a thousand of them)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with (
        contextlib.nullcontext(path) if local else fs.open(path, "rb") as source,
        pq.ParquetFile(source) as parquet,
    ):
        names = parquet.schema_arrow.names
        wanted = list(names) if columns is None else _project(names, columns)
        bounded = (low is not None or high is not None) and "time" in names
        table = parquet.read(
            columns=wanted if not bounded or "time" in wanted else [*wanted, "time"]
        )
    if bounded:
        stamps = table.column("time")
        masks = []
        if low is not None:
            masks.append(pc.greater_equal(stamps, low))
        if high is not None:
            masks.append(pc.less(stamps, high))
        table = table.filter(functools.reduce(pc.and_, masks))  # a null time is left out
        if "time" not in wanted:
            table = table.drop_columns(["time"])
    return table


def _project(names: Sequence[str], columns: Sequence[str]) -> list[str]:
    """The ``columns`` a part has, in the order asked; ``prefix*`` gives every match."""
    chosen: list[str] = []
    for column in columns:
        if column.endswith("*"):
            chosen += [n for n in names if n.startswith(column[:-1]) and n not in chosen]
        elif column in names and column not in chosen:
            chosen.append(column)
    return chosen


def read_summaries(
    model: str,
    *,
    version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    root: str | None = None,
) -> list[WindowSummary]:
    """The window summaries of the parts written in ``[since, until)``, oldest first. (A part's
    summary covers its rows, which came in during the flush interval before the part was
    written: the window's edges are as fine as that interval.)"""
    from seaway.monitoring.summary import WindowSummary

    fs, _ = open_store(root or default_root())
    until_utc = as_utc(until) if until is not None else None
    for attempt in range(2):  # a summary deleted while read: compaction replaced it, list again
        found = []
        vanished = False
        files = list_files(
            model, version=version, since=since, until=until, root=root, summaries=True
        )
        for file in files:
            if until_utc is not None and file.written >= until_utc:
                continue
            try:
                found.append(WindowSummary.from_json(fs.cat_file(file.path)))
            except FileNotFoundError:  # swept or compacted meanwhile
                vanished = True
            except (OSError, ValueError) as exc:  # InvalidInputError is a ValueError
                skipped(file.path, exc)
        if not vanished or attempt:
            break
        _relist(fs)
    return found


def skipped(path: str, exc: BaseException, *, what: str = "prediction log file") -> None:
    """A file of the log that cannot be read (cut short by a crash or a full disk outside the
    writer's atomic commit, edited by hand) is left out of what is read rather than failing every
    reader of the model until it is deleted; said once per file per process."""
    if path in _SKIPPED:
        return
    if len(_SKIPPED) < _SKIPPED_LIMIT:
        _SKIPPED.add(path)
    logger.warning("skipped unreadable %s %s (delete it): %s", what, path, exc)


def merged_summary(
    model: str,
    *,
    version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    root: str | None = None,
) -> WindowSummary | None:
    """All the window summaries of ``[since, until)`` merged into one; None when there is none.
    Summaries merge only when measured against the same profile: name the ``version`` when
    versions differ."""
    from seaway.monitoring.summary import merge_all

    summaries = read_summaries(model, version=version, since=since, until=until, root=root)
    return merge_all(summaries) if summaries else None


def writer_stats(
    model: str, *, version: str | None = None, root: str | None = None
) -> dict[str, int]:
    """The counters the log's writers (servers, batch workers) left for ``model``, summed:
    ``requests``, ``rows``, ``dropped``, ``write_errors``, ``failed_rows``, ``writers``."""
    fs, base = open_store(root or default_root())
    totals: dict[str, int] = {"writers": 0}
    for found_version, version_dir in partitions(
        fs, f"{base}/{segment('model', model)}", "version"
    ):
        if version is not None and found_version != str(version):
            continue
        for path in _listing(fs, version_dir):
            if not path.rsplit("/", 1)[-1].startswith(WRITER_PREFIX):
                continue
            try:
                data = json.loads(fs.cat_file(path))
            except (OSError, ValueError):
                continue
            totals["writers"] += 1
            for key, value in data.get("counts", {}).items():
                if isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
    return totals


def versions(model: str, *, root: str | None = None) -> list[str]:
    """The versions of ``model`` that have a log."""
    fs, base = open_store(root or default_root())
    return [value for value, _ in partitions(fs, f"{base}/{segment('model', model)}", "version")]


def sweep(root: str, models: Iterable[str], older_than: datetime) -> int:
    """Delete what the log holds of ``models`` from before ``older_than``: whole date partitions
    before its day, and parts (with their summaries) written before it on its day; writer
    counters not updated since. Returns the number of files and folders deleted. Files deleted
    by another writer meanwhile are fine."""
    fs, base = open_store(root)
    cutoff = as_utc(older_than)
    deleted = 0
    for model in models:
        for _, version_dir in partitions(fs, f"{base}/{segment('model', model)}", "version"):
            for day_text, day_dir in partitions(fs, version_dir, "date"):
                try:
                    day = date.fromisoformat(day_text)
                except ValueError:
                    continue
                if day < cutoff.date():
                    deleted += _remove(fs, day_dir, recursive=True)
                elif day == cutoff.date():
                    old = [p for p in _listing(fs, day_dir) if (written_at(p) or cutoff) < cutoff]
                    for path in sorted(old, key=deletion_order):
                        deleted += _remove(fs, path)
            for path in _listing(fs, version_dir):
                if (
                    path.rsplit("/", 1)[-1].startswith(WRITER_PREFIX)
                    and _updated(fs, path) < cutoff
                ):
                    deleted += _remove(fs, path)
    return deleted


def deletion_order(path: str) -> int:
    """Parts, then summaries, then compaction manifests: a reader in between never reads a
    replaced part beside the part that replaced it, nor the summary of an absent one."""
    name = path.rsplit("/", 1)[-1]
    return 0 if name.startswith(PART_PREFIX) else 1 if name.startswith(SUMMARY_PREFIX) else 2


def _updated(fs: Any, path: str) -> datetime:
    try:
        stamp = json.loads(fs.cat_file(path)).get("updated")
        return as_utc(datetime.fromisoformat(stamp))
    except (OSError, ValueError, TypeError, AttributeError):
        return datetime.now(UTC)  # unreadable: being written; keep it


def _remove(fs: Any, path: str, *, recursive: bool = False) -> int:
    try:
        fs.rm(path, recursive=recursive)
    except FileNotFoundError:
        return 0
    return 1
