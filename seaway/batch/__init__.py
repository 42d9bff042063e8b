"""Batch scoring of files: chunked, parallel, resumable, recorded in the registry. See
docs/batch.md. Names are imported on first use: a worker process imports ``seaway.batch.local``
without the registry."""

from typing import TYPE_CHECKING

from seaway._lazy import lazy_exports

if TYPE_CHECKING:
    from seaway.batch.job import BatchOptions, run_job

__getattr__, __dir__ = lazy_exports(
    __name__, {"BatchOptions": "seaway.batch.job", "run_job": "seaway.batch.job"}, globals()
)

__all__ = ["BatchOptions", "run_job"]
