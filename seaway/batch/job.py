"""A batch job from start to finish: check everything, record it, score, commit, resume.

Every check that can fail does so before any row is scored: the model must resolve, every input
file must open and hold the columns the model and ``--keep`` need, the output folder must be new
or this job's own. The output folder's manifest pins what a rerun must reuse: the job id, the
model *version* (an alias that moved meanwhile does not change a half-done job) and the exact
list of input files (a file added to the folder later does not shift the part numbers), each
with its size and modification time: a rerun refuses to continue over a file that changed, since
the chunks it committed were cut from the old content (``allow_changed_input`` says go on).

The job record's counts are those of the committed chunks: when an attempt ends early, they are
counted again from the output folder's markers, so chunks that workers committed after the
failure count too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from seaway.batch.driverlock import holding
from seaway.batch.inputs import InputFile, changed, resolve_inputs
from seaway.batch.local import Chunk, Span, Work, WorkerSpec, run_local, usable_cores
from seaway.batch.output import ChunkStats, OutputFolder
from seaway.batch.predlog import log_spec
from seaway.batch.progress import Progress, Silent
from seaway.batch.readers import columns_of, plan_spans, read_chunks, row_count, row_groups
from seaway.errors import BatchInputError, ConflictError, InvalidInputError, NotFoundError
from seaway.monitoring import logstore
from seaway.registry import Registry
from seaway.registry.jobs import BatchJob
from seaway.registry.uri import is_model_uri, parse_model_uri, uri_hint
from seaway.types import JobStatus

#: Settings a rerun must share with the job it continues (the rest may differ: workers, engine).
PINNED = ("input_format", "output_format", "keep", "features", "proba", "chunk_rows", "on_error")

log = logging.getLogger("seaway.batch")


@dataclass(frozen=True)
class BatchOptions:
    model: str
    input: str
    output: str
    output_format: Literal["parquet", "csv"] = "parquet"
    input_format: str | None = None
    keep: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    proba: bool = False
    on_error: Literal["skip", "fail"] = "skip"
    workers: int | None = None
    chunk_rows: int = 100_000
    engine: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    trusted: bool = False
    #: share of scored rows written to the prediction log (None: the model's serving config's
    #: ``log_sample``, else 0: off); where (None: ``<SEAWAY_HOME>/monitoring/predictions``);
    #: inputs left out (added to the model's own ``log_exclude``). See seaway/batch/predlog.py.
    log_sample: float | None = None
    log_store: str | None = None
    log_exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.chunk_rows < 1:
            raise InvalidInputError(f"--chunk-rows must be at least 1, got {self.chunk_rows}")
        if self.workers is not None and self.workers < 1:
            raise InvalidInputError(f"--workers must be at least 1, got {self.workers}")
        if self.on_error not in ("skip", "fail"):
            raise InvalidInputError(f"--on-error must be skip or fail, got {self.on_error!r}")
        if self.output_format not in ("parquet", "csv"):
            raise InvalidInputError(f"--format must be parquet or csv, got {self.output_format!r}")
        if self.engine not in ("local", "ray"):
            raise InvalidInputError(f"--engine must be local or ray, got {self.engine!r}")
        if self.log_sample is not None and not 0.0 <= self.log_sample <= 1.0:
            raise InvalidInputError(f"--log-sample must be from 0 to 1, got {self.log_sample}")

    def params(self) -> dict[str, Any]:
        values = asdict(self)
        for key in ("model", "input", "output"):
            values.pop(key)
        values["keep"], values["features"] = list(self.keep), list(self.features)
        values["log_exclude"] = list(self.log_exclude)
        return values

    @classmethod
    def from_job(cls, job: BatchJob, **overrides: Any) -> BatchOptions:
        params = dict(job.params)
        params["keep"] = tuple(params.get("keep", ()))
        params["features"] = tuple(params.get("features", ()))
        params["log_exclude"] = tuple(params.get("log_exclude", ()))
        params.update({k: v for k, v in overrides.items() if v is not None})
        known = {f for f in cls.__dataclass_fields__}
        return cls(
            model=job.model_uri,
            input=job.input,
            output=job.output,
            **{k: v for k, v in params.items() if k in known},
        )


@dataclass
class _Totals:
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    per_file_rows: dict[int, int] = field(default_factory=dict)

    def add(self, file_index: int, stats: ChunkStats) -> None:
        self.rows_in += stats.rows_in
        self.rows_out += stats.rows_out
        self.rows_rejected += stats.rows_rejected
        self.per_file_rows[file_index] = self.per_file_rows.get(file_index, 0) + stats.rows_in

    def as_dict(self) -> dict[str, int]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_rejected": self.rows_rejected,
        }


def run_job(
    registry: Registry,
    options: BatchOptions | None = None,
    *,
    resume: str | None = None,
    schedule: str | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    engine: str | None = None,
    ray_address: str | None = None,
    allow_changed_input: bool = False,
) -> BatchJob:
    """Run (or continue) a job to the end; returns its final record. See the module docstring.

    Continuing a job whose input files changed since it started is refused unless
    ``allow_changed_input``: its committed chunks hold rows of the old content."""
    if resume is not None:
        options = BatchOptions.from_job(
            registry.jobs.get(resume), workers=workers, engine=engine, ray_address=ray_address
        )
    elif options is None:
        raise InvalidInputError("run_job needs options or a job id to resume")
    if not is_model_uri(options.model):
        raise InvalidInputError(
            f"{options.model!r} is not a model URI: batch jobs score registered models; "
            f"{uri_hint(options.model)} (a package folder: register it first with "
            "'seaway models register PATH --name NAME')"
        )
    folder = OutputFolder(options.output, options.output_format)
    manifest = folder.read_manifest()
    job: BatchJob | None = None
    if manifest is not None:
        job = _job_of(registry, manifest, options, resume)
        if folder.succeeded() is not None:
            return job  # done already: every row was scored exactly once
    elif resume is None and not folder.is_fresh():
        raise ConflictError(
            f"output folder {options.output} exists and is not empty; batch jobs write into a new "
            "or empty folder (or their own, to resume)"
        )
    elif resume is not None:
        job = registry.jobs.get(resume)

    pinned_version = job.model_version if job is not None else None
    ref = parse_model_uri(options.model)
    record = registry.resolve(f"models:/{ref.name}/{pinned_version}" if pinned_version else ref)
    model_path = str(registry.fetch(record))
    if manifest is not None:
        files = [InputFile(**item) for item in manifest["inputs"]]
        _check_unchanged(files, str(manifest.get("job_id")), allow_changed_input)
    else:
        files = resolve_inputs(options.input, options.input_format)
    features = _features(record.manifest, options, files)
    signature = record.manifest.signature
    model_columns = features or (tuple(signature.input_names) if signature is not None else ())
    if not model_columns:
        raise InvalidInputError(
            f"{record.uri} has no signature, so the columns it takes are unknown; name them "
            "with --features"
        )
    spec = WorkerSpec(
        package_path=model_path,
        manifest_sha256=record.manifest_sha256,
        trusted=options.trusted,
        model_name=record.name,
        model_version=record.version,
        keep=options.keep,
        proba=options.proba,
        features=features,
        columns=tuple(dict.fromkeys([*model_columns, *options.keep])),
        output_url=options.output,
        output_format=options.output_format,
        on_error=options.on_error,
        threads=max(1, usable_cores() // (options.workers or usable_cores())),
        flavor=record.manifest.flavor,
    )
    _check_inputs(spec, record.manifest, files)

    if job is None:
        job = registry.jobs.create(
            model_uri=options.model,
            model_name=record.name,
            model_version=record.version,
            input=options.input,
            output=options.output,
            params=options.params(),
            schedule=schedule,
        )
    if manifest is None:
        folder.write_manifest(
            {
                "job_id": job.job_id,
                "model_name": record.name,
                "model_version": record.version,
                "manifest_sha256": record.manifest_sha256,
                "model_uri": options.model,
                "input": options.input,
                "inputs": [asdict(f) for f in files],
                "params": {k: options.params()[k] for k in PINNED},
                "created_at": datetime.now(UTC).isoformat(),
            }
        )
    spec = replace(
        spec,
        log=log_spec(
            root=options.log_store or logstore.default_root(),
            sample=options.log_sample,
            exclude=options.log_exclude,
            job_id=job.job_id,
            keep=options.keep,
            manifest=record.manifest,
            package_path=model_path,
        ),
    )
    return _execute(registry, job, options, spec, files, folder, progress or Silent())


def _execute(
    registry: Registry,
    job: BatchJob,
    options: BatchOptions,
    spec: WorkerSpec,
    files: list[InputFile],
    folder: OutputFolder,
    progress: Progress,
) -> BatchJob:
    # held from before the record says running until after it says how the attempt ended
    with holding(options.output, job.job_id):
        return _attempt(registry, job, options, spec, files, folder, progress)


def _attempt(
    registry: Registry,
    job: BatchJob,
    options: BatchOptions,
    spec: WorkerSpec,
    files: list[InputFile],
    folder: OutputFolder,
    progress: Progress,
) -> BatchJob:
    """One attempt. Its heartbeat records the running time of every attempt so far, so that
    an attempt killed without a word still counts in the job's duration."""
    before = registry.jobs.start(job.job_id).duration_s or 0.0
    started = time.monotonic()
    done = folder.committed()
    totals = _Totals()
    for (file_index, _), stats in done.items():
        totals.add(file_index, stats)
    total_rows = _total_rows(files)
    last_beat = 0.0

    def on_idle() -> None:
        """Also called while no chunk finishes: a slow chunk is no stopped job, and the
        scheduler's progress reporter raises from ``update`` to cancel the job."""
        nonlocal last_beat
        progress.update(totals.rows_in, totals.rows_in / total_rows if total_rows else None)
        now = time.monotonic()
        if now - last_beat >= 2.0:
            last_beat = now
            registry.jobs.progress(
                job.job_id, duration_s=before + now - started, **totals.as_dict()
            )

    def on_chunk(file_index: int, chunk: int, stats: ChunkStats) -> None:
        totals.add(file_index, stats)
        on_idle()

    try:
        if options.engine == "ray":
            from seaway.batch.ray_engine import run_ray

            # no --workers: as many actors as the cluster has CPUs
            chunks = _chunks(spec, files, options.chunk_rows, done)
            run_ray(chunks, spec, options.workers, on_chunk, address=options.ray_address)
        else:
            workers = options.workers or usable_cores()
            work = _work(spec, files, options.chunk_rows, done, workers)
            run_local(work, spec, workers, on_chunk, on_idle)
    except BaseException as exc:
        progress.close()
        totals = _recount(folder, totals)
        stopped = isinstance(exc, KeyboardInterrupt | SystemExit)  # Ctrl-C, SIGTERM
        status = JobStatus.INTERRUPTED if stopped else JobStatus.FAILED
        message = "stopped before the end" if stopped else str(exc)
        registry.jobs.finish(
            job.job_id,
            status,
            seconds=time.monotonic() - started,
            before=before,
            error=f"{message}; rerun with 'seaway batch run --resume {job.job_id}'",
            rows_in=totals.rows_in,
            rows_out=totals.rows_out,
            rows_rejected=totals.rows_rejected,
        )
        raise
    progress.close()
    folder.mark_success({"job_id": job.job_id, **totals.as_dict()})
    return registry.jobs.finish(
        job.job_id,
        JobStatus.SUCCEEDED,
        seconds=time.monotonic() - started,
        before=before,
        rows_in=totals.rows_in,
        rows_out=totals.rows_out,
        rows_rejected=totals.rows_rejected,
    )


def _recount(folder: OutputFolder, totals: _Totals) -> _Totals:
    """The counts of every chunk committed, from the folder's markers: after a failure, chunks
    still being scored commit after the driver stopped hearing of them, and the record must say
    what the folder holds. The counts heard so far when the folder cannot be read."""
    recount = _Totals()
    try:
        for (file_index, _), stats in folder.committed().items():
            recount.add(file_index, stats)
    except Exception:  # the folder itself may be why the job failed
        return totals
    return recount


def _check_unchanged(files: list[InputFile], job_id: str, allow: bool) -> None:
    for file in files:
        how = changed(file)
        if how is None:
            continue
        if allow:
            log.warning(
                "input %s changed since job %s started (%s); going on", file.url, job_id, how
            )
            continue
        raise ConflictError(
            f"input file {file.url} changed since job {job_id} started: {how}. Its committed "
            "chunks hold rows of the old content, so resuming would mix the two; score it into a "
            "new output folder, or pass --allow-changed-input to continue anyway"
        )


def _chunks(
    spec: WorkerSpec,
    files: list[InputFile],
    chunk_rows: int,
    done: dict[tuple[int, int], ChunkStats],
) -> Iterator[Chunk]:
    columns = list(spec.columns)
    for file_index, file in enumerate(files):
        skip = {chunk for (index, chunk) in done if index == file_index}
        text = columns if file.format == "csv" else ()
        for chunk, table in read_chunks(file, columns, text, chunk_rows, skip):
            yield Chunk(file_index, file.url, chunk, chunk * chunk_rows, table)


#: the most chunks in one span a local worker reads itself: the driver hears of a span's chunks
#: when the span is done, so this bounds how far the job's progress may lag
MAX_SPAN_CHUNKS = 16


def _work(
    spec: WorkerSpec,
    files: list[InputFile],
    chunk_rows: int,
    done: dict[tuple[int, int], ChunkStats],
    workers: int,
) -> Iterator[Work]:
    """The local engine's work, in input order: spans of Parquet chunks, which the workers read
    themselves (planned here from the files' metadata alone), and the chunks of other formats,
    read here. Spans are short enough that every worker gets several (about four each)."""
    columns = list(spec.columns)
    layouts = {
        index: row_groups(file) for index, file in enumerate(files) if file.format == "parquet"
    }
    skips = {index: {chunk for (i, chunk) in done if i == index} for index in range(len(files))}
    todo = sum(-(-sum(groups) // chunk_rows) - len(skips[i]) for i, groups in layouts.items())
    longest = max(1, min(MAX_SPAN_CHUNKS, -(-todo // (4 * workers))))
    use_threads = spec.threads > 1
    for file_index, file in enumerate(files):
        skip = skips[file_index]
        if file.format == "parquet":
            for first, stop in plan_spans(layouts[file_index], chunk_rows, skip, longest):
                yield Span(file_index, file, first, stop, chunk_rows, spec.columns, use_threads)
            continue
        text = columns if file.format == "csv" else ()
        for chunk, table in read_chunks(file, columns, text, chunk_rows, skip):
            yield Chunk(file_index, file.url, chunk, chunk * chunk_rows, table)


def _features(manifest: Any, options: BatchOptions, files: list[InputFile]) -> tuple[str, ...]:
    """Columns forming a one-array model's input: ``--features``, else the file's others."""
    signature = manifest.signature
    if options.features or signature is None or signature.input_format != "tensor":
        return options.features
    spec = signature.inputs[0]
    if len(spec.shape) != 2 or spec.shape[1] < 1:
        raise InvalidInputError(
            f"this model takes one array of shape {list(spec.shape)}; batch scoring reads one "
            "row per input row, so it needs a [rows, features] model"
        )
    available = [c for c in columns_of(files[0]) if c not in options.keep]
    if len(available) != spec.shape[1]:
        raise BatchInputError(
            f"this model takes {spec.shape[1]} features as one array; {files[0].url} has "
            f"{len(available)} columns besides --keep ({available[:8]}...): name them in order "
            "with --features"
        )
    return tuple(available)


def _check_inputs(spec: WorkerSpec, manifest: Any, files: list[InputFile]) -> None:
    """Every file opens and holds every column needed, before any row is scored."""
    needed = spec.columns
    outputs = {"model_name", "model_version", "predict"}
    clash = sorted(set(spec.keep) & outputs)
    if clash:
        raise InvalidInputError(f"--keep {clash} would clash with output columns of that name")
    for file in files:
        present = set(columns_of(file))
        missing = [name for name in needed if name not in present]
        if missing:
            raise BatchInputError(
                f"{file.url} lacks the column(s) {missing} that the model (or --keep) needs; it "
                f"has {sorted(present)[:20]}"
            )


def _job_of(
    registry: Registry, manifest: dict[str, Any], options: BatchOptions, resume: str | None
) -> BatchJob:
    job_id = str(manifest.get("job_id"))
    if resume is not None and resume != job_id:
        raise ConflictError(f"output folder {options.output} belongs to job {job_id}, not {resume}")
    try:
        job = registry.jobs.get(job_id)
    except NotFoundError:
        raise ConflictError(
            f"output folder {options.output} belongs to job {job_id}, which this registry does "
            "not know; use another output folder"
        ) from None
    ours = {k: options.params()[k] for k in PINNED}
    theirs = manifest.get("params", {})
    differ = [k for k in PINNED if ours[k] != theirs.get(k)]
    if manifest.get("input") != options.input:
        differ.append("input")
    if manifest.get("model_uri") != options.model:
        differ.append("model")
    if differ:
        raise ConflictError(
            f"output folder {options.output} holds job {job_id} with other settings "
            f"({', '.join(differ)}); resume it with 'seaway batch run --resume {job_id}' or "
            "write to another folder"
        )
    return job


def _total_rows(files: list[InputFile]) -> int | None:
    counts = [row_count(f) for f in files]
    if any(c is None for c in counts):
        return None
    return sum(c for c in counts if c is not None)
