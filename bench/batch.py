"""Batch scoring benchmark: `seaway batch run` against the limit (``model.predict`` on the array).

    .venv/bin/python bench/batch.py              # full run (1M and 5M rows), about 4 minutes
    .venv/bin/python bench/batch.py --quick      # smoke run (200k and 1M rows), about a minute
    .venv/bin/python bench/batch.py --json results.json --profile prof/   # py-spy: see below
    .venv/bin/python bench/batch.py --cheap      # a cheap model against a plain loop: batch_cheap.py

Writes Parquet files of 20 float64 features (pyarrow's default row groups: at most 1,048,576 rows
each, snappy) into a temporary folder, trains a scikit-learn model on the same distribution and
registers it with ``seaway.log_model`` in a temporary SEAWAY_HOME. Then, for each size, side by
side on the same cores:

- the limit: a child process loads the whole file into one numpy array (not timed), then times
  ``model.predict(X)``, once with the model's own threads across the cores (``threads``) and once
  split over N forked single-threaded processes that write into shared memory (``processes``);
  the faster one is the limit;
- Seaway: ``python -m seaway batch run models:/NAME/1 --input FILE --output DIR --workers N`` as a
  user would run it, timed by the wall clock, and its job record (``seaway batch show --json``).

Peak memory is the largest sum, over a process tree (the limit's child and its forks; Seaway's
driver and its workers), of each process's proportional set size (Pss, from
/proc/PID/smaps_rollup, which splits shared pages among the processes sharing them), plus the
chunks waiting in Seaway's handoff files in /dev/shm, sampled every 50 ms. Prints a table, then
the issue's targets with PASS/FAIL; exits 1 when one fails and 2 when the benchmark could not
run. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from machine import describe

FEATURES = 20
ROW_GROUP = 1024 * 1024  # pyarrow's default maximum rows per row group (write_table)
TRAIN_ROWS = 100_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024
SEAWAY_CHUNK_DEFAULT = 100_000  # `seaway batch run --chunk-rows` default, for the report only


class BenchError(Exception):
    """A precondition or a step failed; the message says what to do."""


# ---- data and model -----------------------------------------------------------------------------


def make_features(seed: int, rows: int) -> Any:
    import numpy as np

    return np.random.default_rng(seed).standard_normal((rows, FEATURES))


def make_labels(x: Any, seed: int) -> Any:
    """A non-linear rule with noise, so the trees have something to learn at every depth."""
    import numpy as np

    weights = np.random.default_rng(123).standard_normal(FEATURES)
    noise = np.random.default_rng(seed).standard_normal(len(x))
    score = x @ weights + 2.0 * x[:, 0] * x[:, 1] - x[:, 2] ** 2 + np.sin(3 * x[:, 3]) + noise
    return (score > np.median(score)).astype(np.int64)


def train(kind: str) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    x = make_features(1, TRAIN_ROWS)
    y = make_labels(x, 2)
    if kind == "hgb":
        # a fixed 100 trees of 31 leaves (early stopping off, so the cost does not depend on when
        # it would have stopped): scikit-learn's defaults for tabular data
        model = HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=0)
    else:
        model = RandomForestClassifier(n_estimators=50, max_depth=8, random_state=0, n_jobs=-1)
    model.fit(x, y)
    if kind == "rf":
        model.n_jobs = None  # as saved: the limit sets its own parallelism
    return model, x


def write_parquet(path: Path, rows: int, seed: int, row_group: int = ROW_GROUP) -> None:
    """``rows`` rows of FEATURES float64 columns f00..f19, in row groups of ``row_group`` rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = [f"f{i:02d}" for i in range(FEATURES)]
    schema = pa.schema([(name, pa.float64()) for name in names])
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        done, block = 0, 0
        while done < rows:
            n = min(row_group, rows - done)
            x = make_features(seed * 1000 + block, n)
            table = pa.table({name: x[:, i] for i, name in enumerate(names)})
            writer.write_table(table, row_group_size=n)
            done, block = done + n, block + 1


# ---- process-tree sampler -----------------------------------------------------------------------


def _status_fields(pid: int) -> tuple[int, float]:
    """(ppid, CPU seconds) of ``pid`` from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def _rss(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) of ``pid`` in bytes, from /proc/PID/status (cheap: ~20 us)."""
    rss = anon = 0
    with open(f"/proc/{pid}/status", "rb") as handle:
        for line in handle:
            if line.startswith(b"VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith(b"RssAnon:"):
                anon = int(line.split()[1]) * 1024
    return rss, anon


def _pss(pid: int) -> int:
    """Pss of ``pid`` in bytes, from /proc/PID/smaps_rollup (costly: ~5 ms for a process with
    scikit-learn and torch mapped, as the kernel walks every mapping)."""
    with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
        for line in handle:
            if line.startswith(b"Pss:"):
                return int(line.split()[1]) * 1024
    return 0  # a zombie


def machine_busy() -> float:
    """CPU seconds all cores spent busy (any process), from /proc/stat."""
    with open("/proc/stat", "rb") as handle:
        values = [int(v) for v in handle.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


@dataclass
class Sample:
    t: float  # time.monotonic()
    pss: int  # bytes, summed over the tree
    rss: int
    processes: int
    tree_cpu: float  # CPU seconds of every process seen in the tree so far (last known values)
    busy: float  # machine_busy()
    own_cpu: float  # this benchmark process (the sampler thread mostly)


class TreeSampler(threading.Thread):
    """Samples memory and CPU of ``root`` and its descendants every ``interval`` seconds.

    Pss is read from smaps_rollup every ``pss_every`` seconds per process (and when a process is
    first seen); in between it is carried forward by the change in the process's anonymous RSS,
    from /proc/PID/status. Pages allocated since the last Pss reading are private (a new page
    counts whole in Pss), so the estimate is exact for them; all are read afresh whenever a process
    starts or ends, which changes how pages are shared; it misses only a copy-on-write page
    written after a fork, between two readings. Reading smaps_rollup every
    50 ms instead would cost a fifth of this 2-core machine and slow down what it measures.
    """

    def __init__(self, root: int, interval: float, pss_every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.pss_every = pss_every
        self.samples: list[Sample] = []
        self.peak_by_pid: dict[int, dict[str, Any]] = {}
        self._ppid: dict[int, int] = {}
        self._cpu: dict[int, float] = {}
        self._pss_base: dict[int, tuple[float, int, int]] = {}  # pid: (when, Pss, RssAnon)
        self._last_pids: set[int] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        while True:
            self.sample()
            if self._halt.wait(self.interval):
                self.sample()
                return

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def _tree(self) -> list[int]:
        alive = {int(name) for name in os.listdir("/proc") if name.isdigit()}
        for pid in list(self._ppid):
            if pid not in alive:
                del self._ppid[pid]
        for pid in alive - self._ppid.keys():
            with contextlib.suppress(OSError, IndexError, ValueError):
                self._ppid[pid] = _status_fields(pid)[0]
        children: dict[int, list[int]] = {}
        for pid, ppid in self._ppid.items():
            children.setdefault(ppid, []).append(pid)
        found, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            if pid in self._ppid:
                found.append(pid)
            todo += children.get(pid, [])
        return found

    def _estimate(self, pid: int, now: float, anon: int, fresh: bool) -> int:
        base = self._pss_base.get(pid)
        if base is None or fresh or now - base[0] >= self.pss_every:
            base = (now, _pss(pid), anon)
            self._pss_base[pid] = base
        return max(base[1] + anon - base[2], 0)

    def sample(self) -> None:
        pss_sum = rss_sum = 0
        now = time.monotonic()
        pids = self._tree()
        # a process that starts or ends changes how pages are shared among the others (a fork
        # shares all its parent's pages): then every Pss is read afresh
        changed = set(pids) != self._last_pids
        self._last_pids = set(pids)
        for pid in pids:
            with contextlib.suppress(OSError, IndexError, ValueError):
                rss, anon = _rss(pid)
                pss = self._estimate(pid, now, anon, changed)
                self._cpu[pid] = _status_fields(pid)[1]
                pss_sum, rss_sum = pss_sum + pss, rss_sum + rss
                peak = self.peak_by_pid.setdefault(pid, {"pss": 0, "rss": 0, "cmd": _cmd(pid)})
                peak["pss"], peak["rss"] = max(peak["pss"], pss), max(peak["rss"], rss)
        handoff = handoff_bytes()
        pss_sum, rss_sum = pss_sum + handoff, rss_sum + handoff
        own = os.times()
        self.samples.append(
            Sample(
                now,
                pss_sum,
                rss_sum,
                len(pids),
                sum(self._cpu.values()),
                machine_busy(),
                own.user + own.system,
            )
        )

    def window(self, start: float, end: float) -> dict[str, float]:
        """CPU use between ``start`` and ``end`` (monotonic), from the nearest samples."""
        inside = [s for s in self.samples if start - self.interval <= s.t <= end + self.interval]
        if len(inside) < 2:
            return {"tree_cpu_s": 0.0, "other_cpu_s": 0.0, "own_cpu_s": 0.0, "span_s": 0.0}
        first, last = inside[0], inside[-1]
        tree = last.tree_cpu - first.tree_cpu
        own = last.own_cpu - first.own_cpu
        other = max(last.busy - first.busy - tree - own, 0.0)
        return {
            "tree_cpu_s": tree,
            "other_cpu_s": other,
            "own_cpu_s": own,
            "span_s": last.t - first.t,
        }

    def peak(self) -> tuple[int, int]:
        """(peak Pss sum, peak Rss sum) in bytes."""
        return (
            max((s.pss for s in self.samples), default=0),
            max((s.rss for s in self.samples), default=0),
        )


def handoff_bytes() -> int:
    """Bytes of the chunks waiting in Seaway's handoff folders (seaway/batch/handoff.py): files
    in memory (/dev/shm) that no process has mapped yet, so no Pss counts them."""
    total = 0
    for root in {"/dev/shm", tempfile.gettempdir()}:
        for folder in Path(root).glob("seaway-batch-*"):
            with contextlib.suppress(OSError):
                total += sum(f.stat().st_size for f in folder.iterdir())
    return total


def _cmd(pid: int) -> str:
    with contextlib.suppress(OSError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
        return raw.decode(errors="replace")[:160]
    return "?"


# ---- the limit ----------------------------------------------------------------------------------


def limit_child(argv: list[str]) -> None:
    """``batch.py _limit ...``: load the file into one array, then time ``model.predict`` on it.

    Runs in its own process so that its memory is measured alone. ``threads``: one call with the
    model's own parallelism over N threads (OpenMP for HistGradientBoosting, joblib threads over
    trees for RandomForest). ``processes``: N processes forked once the array is loaded (they share
    it), each limited to one thread, predicting 1/N of the rows into shared memory. Prints one
    ``LIMIT_RESULT {json}`` line; times are ``time.monotonic()``, comparable across processes.
    """
    parser = argparse.ArgumentParser(prog="batch.py _limit")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--mode", choices=("threads", "processes"), required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--save", type=Path)
    args = parser.parse_args(argv)

    import pickle

    import numpy as np
    import pyarrow.parquet as pq

    loaded = time.monotonic()
    parquet = pq.ParquetFile(args.input)
    names = parquet.schema_arrow.names
    x = np.empty((parquet.metadata.num_rows, len(names)), dtype=np.float64)
    row = 0
    for group in range(parquet.num_row_groups):  # one row group at a time: peak = the array
        table = parquet.read_row_group(group, columns=names)
        for j, name in enumerate(names):
            x[row : row + table.num_rows, j] = table.column(name).to_numpy()
        row += table.num_rows
        del table
    model = pickle.loads(args.model.read_bytes())
    load_s = time.monotonic() - loaded
    if args.mode == "threads":
        start, end, predictions = _limit_threads(model, x, args.workers)
    else:
        start, end, predictions = _limit_processes(model, x, args.workers)
    if args.save:
        np.save(args.save, predictions)
    result = {"start": start, "end": end, "seconds": end - start, "load_s": load_s}
    print("LIMIT_RESULT " + json.dumps(result), flush=True)


def _limit_threads(model: Any, x: Any, workers: int) -> tuple[float, float, Any]:
    from threadpoolctl import threadpool_limits

    if hasattr(model, "n_jobs"):
        model.n_jobs = workers
    with threadpool_limits(limits=workers):
        model.predict(x[:2000])  # warm-up: thread pools started, code paths touched
        start = time.monotonic()
        predictions = model.predict(x)
        end = time.monotonic()
    return start, end, predictions


def _limit_processes(model: Any, x: Any, workers: int) -> tuple[float, float, Any]:
    import mmap
    import multiprocessing

    import numpy as np

    # fork: the children share the loaded array (nothing is copied). The parent has not run an
    # OpenMP region yet, so libgomp is safe to use in the children.
    context = multiprocessing.get_context("fork")
    dtype = np.asarray(model.classes_).dtype
    shared = mmap.mmap(-1, max(1, len(x) * dtype.itemsize))
    out = np.frombuffer(shared, dtype=dtype, count=len(x))
    ends = context.Array("d", workers)
    barrier = context.Barrier(workers + 1)
    bounds = np.linspace(0, len(x), workers + 1).astype(int)

    def part(index: int) -> None:
        from threadpoolctl import threadpool_limits

        if hasattr(model, "n_jobs"):
            model.n_jobs = None
        with threadpool_limits(limits=1):
            model.predict(x[:2000])
            barrier.wait()
            lo, hi = bounds[index], bounds[index + 1]
            out[lo:hi] = model.predict(x[lo:hi])
            ends[index] = time.monotonic()

    children = [context.Process(target=part, args=(i,)) for i in range(workers)]
    for child in children:
        child.start()
    barrier.wait()
    start = time.monotonic()
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"a limit process failed (exit code {child.exitcode})")
    return start, max(ends), out.copy()


# ---- runs ---------------------------------------------------------------------------------------


@dataclass
class Run:
    rows: int
    name: str  # "limit (threads)", "limit (processes)", "seaway"
    seconds: float  # the timed part: predict for the limit, the whole command for Seaway
    rows_per_s: float
    peak_pss_mib: float
    peak_rss_mib: float
    cpu_share: float  # CPU of the tree over the timed part, as a share of the N cores
    other_share: float  # CPU of everything else on the machine, as a share of all its cores
    own_share: float  # this benchmark (mostly its sampler), as a share of all cores
    job_seconds: float | None = None  # Seaway's job record: scoring, without CLI start and exit
    pool_start_s: float | None = None  # Seaway: from the command's start to its first worker
    first_commit_s: float | None = None  # Seaway: from the command's start to its first chunk
    steady_rows_per_s: float | None = None  # Seaway: rows/s from the first commit to the last
    load_s: float | None = None  # the limit: reading the file into the array (not timed)
    processes: dict[str, float] = field(default_factory=dict)  # peak Pss MiB by role
    job: dict[str, Any] | None = None
    repeat: int = 0


def shares(window: dict[str, float], workers: int) -> tuple[float, float, float]:
    span = window["span_s"] or 1.0
    cores = os.cpu_count() or 1
    return (
        window["tree_cpu_s"] / (span * workers),
        window["other_cpu_s"] / (span * cores),
        window["own_cpu_s"] / (span * cores),
    )


@contextlib.contextmanager
def started(argv: list[str], log: Path, env: dict[str, str]) -> Any:
    """A child in its own session (stopped whole on any way out), and its log open."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):  # workers left behind by a dead driver
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run_limit(
    args: argparse.Namespace, tmp: Path, data: Path, rows: int, mode: str, repeat: int
) -> tuple[Run, Path]:
    save = tmp / f"limit-{rows}.npy"
    argv = [
        sys.executable, str(Path(__file__).resolve()), "_limit", "--model", str(tmp / "model.pkl"),
        "--input", str(data), "--mode", mode, "--workers", str(args.workers), "--save", str(save),
    ]  # fmt: skip
    log = tmp / f"limit-{mode}-{rows}-{repeat}.log"
    with started(argv, log, args.env) as process:
        sampler = TreeSampler(process.pid, args.interval, args.pss_every)
        sampler.start()
        try:
            code = process.wait(timeout=args.timeout)
        finally:
            sampler.stop()
    lines = [line for line in log.read_text().splitlines() if line.startswith("LIMIT_RESULT ")]
    if code != 0 or not lines:
        raise BenchError(f"the limit ({mode}, {rows:,} rows) failed ({code}):\n{tail(log)}")
    result = json.loads(lines[-1].removeprefix("LIMIT_RESULT "))
    window = sampler.window(result["start"], result["end"])
    cpu, other, own = shares(window, args.workers)
    pss, rss = sampler.peak()
    run = Run(
        rows=rows,
        name=f"limit ({mode})",
        seconds=result["seconds"],
        rows_per_s=rows / result["seconds"],
        peak_pss_mib=pss / MIB,
        peak_rss_mib=rss / MIB,
        cpu_share=cpu,
        other_share=other,
        own_share=own,
        load_s=result["load_s"],
        processes=by_role(sampler, process.pid),
        repeat=repeat,
    )
    return run, save


def by_role(sampler: TreeSampler, root: int) -> dict[str, float]:
    """Peak Pss (MiB) of the root process and of the largest other one."""
    roles: dict[str, float] = {}
    for pid, peak in sampler.peak_by_pid.items():
        if pid == root:
            roles["main"] = peak["pss"] / MIB
        elif "resource_tracker" in peak["cmd"]:
            roles["resource tracker"] = peak["pss"] / MIB
        else:
            roles["each worker (max)"] = max(roles.get("each worker (max)", 0.0), peak["pss"] / MIB)
    return {k: round(v, 1) for k, v in roles.items()}


def seaway_argv(args: argparse.Namespace, data: Path, out: Path) -> list[str]:
    argv = [
        sys.executable, "-m", "seaway", "batch", "run", f"models:/{args.name}/1",
        "--input", str(data), "--output", str(out), "--workers", str(args.workers),
    ]  # fmt: skip
    if args.chunk_rows:
        argv += ["--chunk-rows", str(args.chunk_rows)]
    return argv


def run_seaway(
    args: argparse.Namespace, tmp: Path, data: Path, rows: int, repeat: int, expected: Path
) -> Run:
    out = tmp / f"out-{rows}-{repeat}"
    log = tmp / f"seaway-{rows}-{repeat}.log"
    with started(seaway_argv(args, data, out), log, args.seaway_env) as process:
        sampler = TreeSampler(process.pid, args.interval, args.pss_every)
        begin, begin_wall = time.monotonic(), time.time()
        sampler.start()
        try:
            code = process.wait(timeout=args.timeout)
            end = time.monotonic()
        finally:
            sampler.stop()
    if code != 0:
        raise BenchError(f"seaway batch run ({rows:,} rows) failed ({code}):\n{tail(log)}")
    job = job_record(args, log)
    check_output(out, rows, expected, job)
    first_commit, steady = commit_times(out, begin_wall)
    window = sampler.window(begin, end)
    cpu, other, own = shares(window, args.workers)
    pss, rss = sampler.peak()
    seconds = end - begin
    run = Run(
        rows=rows,
        name="seaway",
        seconds=seconds,
        rows_per_s=rows / seconds,
        peak_pss_mib=pss / MIB,
        peak_rss_mib=rss / MIB,
        cpu_share=cpu,
        other_share=other,
        own_share=own,
        job_seconds=job.get("duration_s"),
        pool_start_s=next((s.t - begin for s in sampler.samples if s.processes > 1), None),
        first_commit_s=first_commit,
        steady_rows_per_s=steady,
        processes=by_role(sampler, process.pid),
        job=job,
        repeat=repeat,
    )
    shutil.rmtree(out, ignore_errors=True)
    return run


def job_record(args: argparse.Namespace, log: Path) -> dict[str, Any]:
    found = re.search(r"Job (\S+) succeeded", log.read_text(errors="replace"))
    if not found:
        raise BenchError(f"seaway batch run did not report a succeeded job:\n{tail(log)}")
    shown = subprocess.run(
        [sys.executable, "-m", "seaway", "batch", "show", found.group(1), "--json"],
        capture_output=True,
        text=True,
        env=args.env,
        timeout=120,
    )
    if shown.returncode != 0:
        raise BenchError(f"seaway batch show failed:\n{shown.stdout}\n{shown.stderr}")
    return json.loads(shown.stdout)  # type: ignore[no-any-return]


def commit_times(out: Path, begin: float) -> tuple[float | None, float | None]:
    """(seconds to the first committed chunk, rows/s from the first commit to the last), from
    the chunk markers' times: what the job costs before it scores, and its pace once it does."""
    markers = []
    for path in out.glob("_chunks/*.json"):
        markers.append((path.stat().st_mtime, json.loads(path.read_text())["rows_in"]))
    if not markers:
        return None, None
    markers.sort()
    first, last = markers[0][0], markers[-1][0]
    later = sum(rows for _, rows in markers[1:])
    return first - begin, (later / (last - first) if last > first else None)


def check_output(out: Path, rows: int, expected: Path, job: dict[str, Any]) -> None:
    """Every row scored once, in order, with the same prediction as the limit's."""
    import numpy as np
    import pyarrow.parquet as pq

    if (job["status"], job["rows_in"], job["rows_out"]) != ("succeeded", rows, rows):
        raise BenchError(f"the job did not score every row: {job}")
    parts = sorted(out.glob("part-*.parquet"))
    got = np.concatenate(
        [pq.read_table(p, columns=["predict"]).column(0).to_numpy() for p in parts]
    )
    want = np.load(expected)
    if len(got) != len(want) or not np.array_equal(got, want):
        differ = int(np.sum(got[: len(want)] != want[: len(got)]))
        raise BenchError(
            f"Seaway's predictions differ from the limit's: {len(got):,} rows against "
            f"{len(want):,}, {differ:,} different"
        )


# ---- profile ------------------------------------------------------------------------------------

#: (category, pattern over a frame); a sample goes to the first category matched from its leaf
WORKER_STEPS = [
    ("model predict (scikit-learn)", r"\(sklearn/|predict \(seaway/runtime/model\.py"),
    ("take the chunk (map its handoff file)", r"seaway/batch/handoff\.py"),
    ("receive the chunk (pipe read, unpickle)", r"multiprocessing/(connection|queues)\.py|_recv"),
    ("commit (Parquet encode, write, rename)", r"seaway/batch/output\.py"),
    ("Arrow -> pandas (to_pandas)", r"to_pandas|pyarrow/pandas_compat|table_to_dataframe"),
    ("row checks (_check_rows)", r"_check_rows"),
    ("model inputs (_model_inputs, coerce)", r"_model_inputs|coerce|seaway/packaging/signature"),
    ("output table (score: pa.array, take)", r"score \(seaway/batch/scoring\.py"),
    ("start: imports, model load (skops)", r"_init_worker|importlib|<module>|skops"),
]
DRIVER_STEPS = [
    ("read Parquet (iter_batches)", r"_parquet_blocks|iter_batches|pyarrow/parquet"),
    ("hand chunks off (Arrow files in /dev/shm)", r"seaway/batch/handoff\.py"),
    ("rechunk (from_batches, combine_chunks)", r"_rechunk"),
    (
        "send chunks to workers (pickle, pipe write)",
        r"concurrent/futures|multiprocessing/(connection|queues|reduction)|_send",
    ),
    (
        "start: imports, registry, checks, model load (before forking)",
        r"importlib|<module>|run_job \(|resolve|fetch|_start_pool|skops",
    ),
]


def profile_argv(args: argparse.Namespace, out: Path, command: list[str]) -> list[str]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return [
        py_spy, "record", "--subprocesses", "--nonblocking", "--rate", "100", "--format", "raw",
        "--output", str(out), "--", *command,
    ]  # fmt: skip


def summarise_profile(path: Path, rate: int = 100) -> dict[str, Any]:
    """Samples of a ``py-spy record --subprocesses --format raw`` file by process and step."""
    compiled = {
        role: [(name, re.compile(pattern)) for name, pattern in steps]
        for role, steps in (("driver", DRIVER_STEPS), ("workers", WORKER_STEPS))
    }
    counts: dict[str, Counter[str]] = {
        "driver": Counter(),
        "workers": Counter(),
        "other": Counter(),
    }
    worker_pids: set[str] = set()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        # py-spy puts one `process PID:"command line"` frame per process level first; a command
        # line may hold ";" (spawn_main's does), so those are cut off by their quotes
        processes = []
        while stack.startswith("process "):
            end = stack.find('";', stack.find(':"'))
            if end < 0:  # a process frame alone: no Python frame (starting, exiting)
                processes.append(stack)
                stack = ""
                break
            processes.append(stack[: end + 1])
            stack = stack[end + 2 :]
        body = stack.split(";") if stack else ["(no Python frame)"]
        # the driver is the root; its children are workers (spawned ones carry
        # --multiprocessing-fork in their command line, forked ones the driver's) except
        # multiprocessing's resource tracker
        if len(processes) == 1:
            role = "driver"
        elif "resource_tracker" in processes[-1]:
            role = "other"
        else:
            role = "workers"
            worker_pids.add(processes[-1].split(":", 1)[0])
        for frame in reversed(body):
            hit = next((n for n, rx in compiled.get(role, []) if rx.search(frame)), None)
            if hit is not None:
                counts[role][hit] += int(number)
                break
        else:
            counts[role]["other (" + (body[-1][:70] if body else "?") + ")"] += int(number)
    summary: dict[str, Any] = {"rate_hz": rate, "worker_processes": len(worker_pids)}
    for role, counter in counts.items():
        total = sum(counter.values())
        rest = [(n, c) for n, c in counter.most_common() if n.startswith("other (")]
        named = [(n, c) for n, c in counter.most_common() if not n.startswith("other (")]
        items = [*named, ("other", sum(c for _, c in rest))] if rest else named
        summary[role] = {
            "cpu_s": round(total / rate, 2),
            "steps": [
                {"step": n, "cpu_s": round(c / rate, 2), "share": round(c / total, 3)}
                for n, c in items
                if c
            ],
            "top_other": [{"frame": n[7:-1], "cpu_s": round(c / rate, 2)} for n, c in rest[:5]],
        }
    return summary


def print_profile(summary: dict[str, Any], seconds: float) -> None:
    print(f"\nprofile (py-spy, 100 Hz, CPU seconds; run took {seconds:.1f} s wall)")
    for role in ("driver", "workers"):
        part = summary[role]
        label = (
            f"{role} ({summary['worker_processes']} processes together)"
            if role == "workers"
            else role
        )
        print(f"  {label}: {part['cpu_s']:.1f} CPU s")
        for step in part["steps"]:
            print(f"    {step['cpu_s']:7.1f} s  {step['share']:6.1%}  {step['step']}")
        for other in part["top_other"]:
            print(f"             other: {other['cpu_s']:.1f} s in {other['frame']}")


def run_profile(args: argparse.Namespace, tmp: Path, data: Path, rows: int) -> dict[str, Any]:
    raw = args.profile / f"seaway-{rows}.txt"
    out = tmp / f"out-profile-{rows}"
    log = tmp / f"profile-{rows}.log"
    argv = profile_argv(args, raw, seaway_argv(args, data, out))
    begin = time.monotonic()
    with started(argv, log, args.seaway_env) as process:
        code = process.wait(timeout=args.timeout)
    seconds = time.monotonic() - begin
    shutil.rmtree(out, ignore_errors=True)
    if code != 0 or not raw.exists():
        raise BenchError(f"py-spy failed ({code}); is ptrace allowed here?\n{tail(log)}")
    summary = summarise_profile(raw)
    summary["wall_s"] = round(seconds, 2)
    summary["raw"] = str(raw)
    print_profile(summary, seconds)
    return summary


# ---- report -------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    value: float | None
    goal: str
    passed: bool | None


def best(runs: list[Run], rows: int, name: str) -> Run | None:
    """The fastest repeat of ``name`` at ``rows``, with the largest peak memory of the repeats."""
    mine = [r for r in runs if (r.rows, r.name) == (rows, name)]
    if not mine:
        return None
    fastest = min(mine, key=lambda r: r.seconds)
    worst_pss = max(r.peak_pss_mib for r in mine)
    worst_rss = max(r.peak_rss_mib for r in mine)
    return Run(**{**asdict(fastest), "peak_pss_mib": worst_pss, "peak_rss_mib": worst_rss})


def limit_of(runs: list[Run], rows: int) -> Run | None:
    found = [r for r in (best(runs, rows, f"limit ({m})") for m in ("threads", "processes")) if r]
    return min(found, key=lambda r: r.seconds) if found else None


def targets(runs: list[Run], sizes: list[int]) -> list[Target]:
    small, large = min(sizes), max(sizes)
    found: list[Target] = []
    own, limit = best(runs, large, "seaway"), limit_of(runs, large)
    if own and limit:
        ratio = own.rows_per_s / limit.rows_per_s
        found.append(Target(f"rows/s vs limit, {large:,} rows", ratio, ">= 0.8x", ratio >= 0.8))
    low, high = best(runs, small, "seaway"), best(runs, large, "seaway")
    if low and high and small != large:
        ratio = high.peak_pss_mib / low.peak_pss_mib
        found.append(Target(f"peak memory {large:,} / {small:,}", ratio, "<= 1.2x", ratio <= 1.2))
    return found


def print_table(runs: list[Run], sizes: list[int]) -> None:
    """Best repeat per (rows, run); ``x limit``: rows/s over the faster limit's."""
    head = (
        f"{'rows':>10}  {'run':<18}{'seconds':>9}{'rows/s':>10}{'x limit':>8}{'job s':>7}"
        f"{'peak MiB':>9}{'RSS MiB':>9}{'CPU':>6}{'other':>7}"
    )
    print(head)
    print("-" * len(head))
    for rows in sizes:
        limit = limit_of(runs, rows)
        for name in ("limit (threads)", "limit (processes)", "seaway"):
            r = best(runs, rows, name)
            if r is None:
                continue
            ratio = f"{r.rows_per_s / limit.rows_per_s:.2f}" if limit else "-"
            job = f"{r.job_seconds:.1f}" if r.job_seconds is not None else "-"
            print(
                f"{rows:>10,}  {name:<18}{r.seconds:>9.2f}{r.rows_per_s:>10,.0f}{ratio:>8}{job:>7}"
                f"{r.peak_pss_mib:>9,.0f}{r.peak_rss_mib:>9,.0f}{r.cpu_share:>6.0%}"
                f"{r.other_share:>7.0%}"
            )


def print_targets(found: list[Target]) -> None:
    print("\ntargets (seaway against the limit)")
    for t in found:
        value = "n/a" if t.value is None else f"{t.value:.2f}"
        verdict = "PASS" if t.passed else "FAIL"
        print(f"  {t.name:<36}{value:>7}  goal {t.goal:<9}{verdict}")


# ---- main ---------------------------------------------------------------------------------------


def usable_cores() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Seaway batch scoring benchmark against the limit."
    )
    parser.add_argument("--quick", action="store_true", help="200k and 1M rows: a smoke run")
    parser.add_argument("--sizes", help="comma-separated row counts [1000000,5000000]")
    parser.add_argument("--model", choices=("hgb", "rf"), default="hgb", help="[hgb]")
    parser.add_argument("--workers", type=int, help="N, for both sides [the usable cores]")
    parser.add_argument(
        "--chunk-rows", type=int, help="passed to seaway batch run [its default, 100,000]"
    )
    parser.add_argument(
        "--threads-per-worker",
        type=int,
        help="diagnosis: OMP/OpenBLAS/MKL_NUM_THREADS for Seaway's processes [unset, as shipped]",
    )
    parser.add_argument(
        "--limit",
        default="threads,processes",
        help="limit modes, comma-separated, of threads,processes [both]",
    )
    parser.add_argument(
        "--row-group-rows",
        type=int,
        default=ROW_GROUP,
        help=f"rows per Parquet row group [pyarrow's default, {ROW_GROUP:,}]",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, best kept [1]")
    parser.add_argument("--interval", type=float, default=0.05, help="sampling period, s [0.05]")
    parser.add_argument(
        "--pss-every", type=float, default=1.0, help="smaps_rollup reading period, s [1.0]"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="per run, seconds [1800]")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="then run Seaway once more on the largest size under py-spy; raw stacks go to DIR",
    )
    parser.add_argument("--keep-logs", action="store_true", help="print the end of Seaway's logs")
    args = parser.parse_args()
    default = "200000,1000000" if args.quick else "1000000,5000000"
    args.sizes = sorted({int(s.replace("_", "")) for s in (args.sizes or default).split(",")})
    args.limit = [m for m in args.limit.split(",") if m]
    args.workers = args.workers or usable_cores()
    args.name = args.model
    if set(args.limit) - {"threads", "processes"} or not args.limit:
        parser.error("--limit takes threads, processes or both")
    if any(s < 1 for s in args.sizes) or args.repeat < 1 or args.workers < 1:
        parser.error("sizes, --repeat and --workers must be positive")
    return args


def machine() -> dict[str, Any]:
    return describe("seaway", "sklearn", "pyarrow", "numpy")


def preflight(args: argparse.Namespace) -> None:
    if not Path("/proc/self/smaps_rollup").exists():
        raise BenchError("needs Linux with /proc/PID/smaps_rollup (kernel 4.14 or later)")
    try:
        import pyarrow  # noqa: F401
        import sklearn  # noqa: F401
        import threadpoolctl  # noqa: F401
    except ImportError as exc:
        raise BenchError(
            f"{exc.name} is missing: install the project with the batch and sklearn extras"
        ) from exc
    if args.profile is not None and not (
        shutil.which("py-spy") or (Path(sys.executable).parent / "py-spy").exists()
    ):
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")


def run(args: argparse.Namespace) -> int:
    preflight(args)
    info = machine()
    print(
        f"machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
        f"{info['memory_gib']} GiB, load average {info['load_avg']}"
    )
    print(f"date: {info['date']} (shared machine: other work may run beside the benchmark)")
    threads = args.threads_per_worker
    print(
        f"workers: {args.workers} on both sides; Seaway chunk rows: "
        f"{args.chunk_rows or f'default ({SEAWAY_CHUNK_DEFAULT:,})'}"
        + (f"; Seaway threads per process: {threads} (diagnosis)" if threads else "")
    )

    with tempfile.TemporaryDirectory(prefix="seaway-bench-batch-") as tmp_name:
        tmp = Path(tmp_name)
        home = str(tmp / "home")
        args.env = {**os.environ, "SEAWAY_HOME": home, "PYTHONUNBUFFERED": "1"}
        args.seaway_env = dict(args.env)
        if threads:
            for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                args.seaway_env[name] = str(threads)
        os.environ["SEAWAY_HOME"] = home

        import pickle

        import seaway

        began = time.monotonic()
        model, x = train(args.model)
        print(f"model: {model!r} trained on {len(x):,} rows in {time.monotonic() - began:.1f} s")
        seaway.log_model(model, args.name, sample_input=x[:20], reference_data=x[:5000])
        (tmp / "model.pkl").write_bytes(pickle.dumps(model))
        files = {}
        for index, rows in enumerate(args.sizes):
            began = time.monotonic()
            files[rows] = tmp / f"data-{rows}.parquet"
            write_parquet(files[rows], rows, seed=10 + index, row_group=args.row_group_rows)
            size = files[rows].stat().st_size / MIB
            groups = -(-rows // args.row_group_rows)
            print(
                f"data: {rows:,} rows x {FEATURES} float64, {groups} row group(s), {size:,.0f} MiB "
                f"Parquet (snappy), written in {time.monotonic() - began:.1f} s"
            )
        cost = predict_cost(model, x)
        print(f"model.predict: {cost:.2f} us per row, one thread, 100,000 rows in process\n")

        runs: list[Run] = []
        for rows in args.sizes:
            for repeat in range(args.repeat):
                expected = None
                for mode in args.limit:  # side by side: each size runs every side in turn
                    result, save = run_limit(args, tmp, files[rows], rows, mode, repeat)
                    expected = expected or save
                    runs.append(result)
                    report_line(result)
                assert expected is not None
                result = run_seaway(args, tmp, files[rows], rows, repeat, expected)
                runs.append(result)
                report_line(result)
                if args.keep_logs:
                    print(tail(tmp / f"seaway-{rows}-{repeat}.log", 8))
            (tmp / f"limit-{rows}.npy").unlink(missing_ok=True)
        profile = None
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            profile = run_profile(args, tmp, files[max(args.sizes)], max(args.sizes))

    print()
    print_table(runs, args.sizes)
    print(
        "\nseconds: the limit's predict call; Seaway's whole command (job s: its job record). "
        "peak MiB: Pss summed over the process tree; CPU: the tree's, of N cores; other: the "
        "rest of the machine's use"
    )
    found = targets(runs, args.sizes)
    print_targets(found)
    if args.json:
        doc = {
            "machine": info,
            "settings": {
                "model": repr(model),
                "sizes": args.sizes,
                "workers": args.workers,
                "chunk_rows": args.chunk_rows or SEAWAY_CHUNK_DEFAULT,
                "threads_per_worker": threads,
                "row_group_rows": args.row_group_rows,
                "repeat": args.repeat,
                "sample_interval_s": args.interval,
                "pss_every_s": args.pss_every,
                "seaway_command": seaway_argv(args, Path("DATA"), Path("OUT")),
                "predict_us_per_row_one_thread": round(cost, 3),
            },
            "runs": [asdict(r) for r in runs],
            "targets": [asdict(t) for t in found],
            "profile": profile,
        }
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0 if found and all(t.passed for t in found) else 1


def predict_cost(model: Any, x: Any) -> float:
    from threadpoolctl import threadpool_limits

    batch = x[:100_000]
    jobs = getattr(model, "n_jobs", None)
    with threadpool_limits(limits=1):
        model.predict(batch[:1000])
        began = time.perf_counter()
        model.predict(batch)
        seconds = time.perf_counter() - began
    if jobs is not None:
        model.n_jobs = jobs
    return seconds / len(batch) * 1e6


def report_line(r: Run) -> None:
    extra = f"  job {r.job_seconds:.2f} s" if r.job_seconds is not None else ""
    if r.pool_start_s is not None:
        extra += f"  workers at {r.pool_start_s:.1f} s"
    if r.first_commit_s is not None:
        extra += f", first chunk at {r.first_commit_s:.1f} s"
    if r.steady_rows_per_s is not None:
        extra += f", then {r.steady_rows_per_s:,.0f} rows/s"
    extra += f"  load {r.load_s:.1f} s (not timed)" if r.load_s is not None else ""
    print(
        f"  {r.rows:>10,} {r.name:<18} {r.seconds:7.2f} s {r.rows_per_s:>10,.0f} rows/s  "
        f"peak {r.peak_pss_mib:,.0f} MiB  CPU {r.cpu_share:.0%}  other {r.other_share:.0%}{extra}",
        flush=True,
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_limit":
        limit_child(sys.argv[2:])
        return
    if "--cheap" in sys.argv[1:]:  # the cheap-model case: its own options (batch_cheap.py)
        import batch_cheap

        sys.exit(batch_cheap.main(sys.argv[1:]))
    args = parse_args()

    def on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # unwinds through every `started` block: children stopped

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        sys.exit(run(args))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; child processes stopped, temporary files removed", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
