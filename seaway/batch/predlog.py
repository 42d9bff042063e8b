"""Batch jobs write the prediction log too, so batch scoring is monitored like serving.

Each worker logs a sample of the rows it scored, chunk by chunk, right after committing the chunk,
into the same layout as the server (``seaway/monitoring/logstore.py``) with ``source`` "batch",
the job id, ``row`` the row's index in its input file, ``key`` the row's value of the first
``--keep`` column (for joining labels that arrive later), and ``request_id``
``<job id>:<file index>:<row>``. The sample is drawn per chunk from a generator seeded by the job,
file and chunk, so a resumed job samples the same rows. A chunk scored again after a crash is
logged again: the log may then hold a row twice (same request id).

The rate is ``--log-sample`` when given, else the model's own serving config
(``log_model(serving={"log_sample": ...})``), else 0: off. Logging never fails a job: a write
that fails is counted in the log's writer counters and logged once.
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from seaway.monitoring.predlog import LogConfig, ModelLog, PredictionLog
from seaway.packaging.manifest import Manifest

log = logging.getLogger("seaway.batch")


@dataclass(frozen=True)
class BatchLogSpec:
    """What a worker needs to log its chunks (picklable)."""

    root: str
    sample: float
    job_id: str
    exclude: tuple[str, ...] = ()
    key: str | None = None
    classes: tuple[Any, ...] | None = None
    profile_path: str | None = None

    def open(self, model: str, version: int) -> BatchLog:
        return BatchLog(self, model, str(version))


def log_spec(
    *,
    root: str,
    sample: float | None,
    exclude: tuple[str, ...],
    job_id: str,
    keep: tuple[str, ...],
    manifest: Manifest,
    package_path: str,
) -> BatchLogSpec | None:
    """The job's log settings, or None when it logs nothing (see the module docstring)."""
    own = manifest.serving
    rate = sample if sample is not None else (own.log_sample if own is not None else None)
    if not rate:
        return None
    excluded = set(exclude) | set(own.log_exclude or () if own is not None else ())
    signature = manifest.signature
    return BatchLogSpec(
        root=root,
        sample=float(rate),
        job_id=job_id,
        exclude=tuple(sorted(excluded)),
        key=keep[0] if keep else None,
        classes=tuple(signature.classes) if signature is not None and signature.classes else None,
        profile_path=str(Path(package_path) / manifest.reference_profile)
        if manifest.reference_profile
        else None,
    )


class BatchLog:
    """One worker's log of one job."""

    def __init__(self, spec: BatchLogSpec, model: str, version: str) -> None:
        self.spec = spec
        self.log = PredictionLog(LogConfig(spec.root, retention=None), source="batch", start=False)
        handle = self.log.model(
            model,
            version,
            sample=spec.sample,
            exclude=spec.exclude,
            classes=spec.classes,
            profile=self._profile,
        )
        assert handle is not None  # spec.sample > 0
        self.handle: ModelLog = handle
        self._seed = zlib.crc32(spec.job_id.encode("utf-8"))

    def _profile(self) -> Any:
        if self.spec.profile_path is None:
            return None
        from seaway.packaging.profile import ReferenceProfile

        text = Path(self.spec.profile_path).read_text("utf-8")
        return ReferenceProfile.model_validate(json.loads(text))

    def chunk(self, scorer: Any, chunk: Any, result: Any) -> int:
        """Log a sample of a committed chunk's scored rows; returns the rows logged."""
        from seaway.batch.scoring import model_inputs, output_names

        good = result.rows
        if good is None or not len(good):
            return 0
        if self.spec.sample >= 1.0:
            chosen = np.arange(len(good))
        else:
            rng = np.random.default_rng([self._seed, chunk.file_index, chunk.index])
            chosen = np.flatnonzero(rng.random(len(good)) < self.spec.sample)
        if not len(chosen):
            return 0
        import pyarrow as pa

        positions = good[chosen]
        picked = chunk.table.take(pa.array(positions))
        frame = picked.select(scorer.input_columns()).to_pandas()
        inputs = model_inputs(frame, scorer, np.arange(len(frame)))
        outputs = _outputs(result.output.take(pa.array(chosen)), scorer.keep, *output_names(scorer))
        rows = positions + chunk.first_row
        keys = None
        if self.spec.key is not None:
            keys = [None if v is None else str(v) for v in picked.column(self.spec.key).to_pylist()]
        prefix = f"{self.spec.job_id}:{chunk.file_index}:"
        written = self.handle.write_rows(
            inputs,
            outputs,
            request_ids=[prefix + str(r) for r in rows.tolist()],
            rows=rows,
            keys=keys,
            job_id=self.spec.job_id,
            when=datetime.now(UTC),
        )
        self.log.report()
        return written


def _outputs(
    table: Any, keep: tuple[str, ...], predict_name: str, proba_name: str
) -> dict[str, Any]:
    """The output table's prediction columns as the server names outputs: probabilities back
    into one 2-D ``proba_name`` (the log labels its columns by class, as for served models)."""
    outputs: dict[str, Any] = {}
    proba = [name for name in table.column_names if name.startswith(proba_name + "_")]
    for name in table.column_names:
        if name in keep or name in ("model_name", "model_version") or name in proba:
            continue
        outputs[name] = table.column(name).to_numpy(zero_copy_only=False)
    if proba:
        outputs[proba_name] = np.column_stack(
            [table.column(name).to_numpy(zero_copy_only=False) for name in proba]
        )
    return outputs


def log_chunk(batch_log: BatchLog | None, scorer: Any, chunk: Any, result: Any) -> None:
    """Log a committed chunk; a failure here is said once and never fails the job."""
    if batch_log is None:
        return
    try:
        batch_log.chunk(scorer, chunk, result)
    except Exception as exc:
        handle = batch_log.handle
        handle.write_errors += 1
        if handle.write_errors == 1:
            log.warning(
                "prediction log: cannot log rows of this job: %s: %s", type(exc).__name__, exc
            )
