"""Batch scoring of files: chunked, parallel, resumable, recorded in the registry. See
docs/batch.md."""

from seaway.batch.job import BatchOptions, run_job

__all__ = ["BatchOptions", "run_job"]
