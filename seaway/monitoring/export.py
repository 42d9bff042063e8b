"""The logged inputs joined with their labels: what a retraining pipeline consumes.

``seaway monitor export NAME --since 7d --with-feedback --out data.parquet`` writes what
``export_rows`` returns: the log's columns (``model``, ``version``, ``request_id``, ``row``,
``time``, ..., ``input.<feature>``, ``output.<name>``) and, with feedback, ``label`` (the label as
text), ``label_value`` (as a number) and ``label_time``, for the rows that have one.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from seaway.errors import InvalidInputError
from seaway.monitoring.feedback import LABEL, feedback_root, join_feedback, read_feedback
from seaway.monitoring.logstore import read_log

if TYPE_CHECKING:
    import pandas as pd

FORMATS = (".parquet", ".csv")


def export_rows(
    model: str,
    *,
    since: datetime,
    until: datetime | None = None,
    version: str | None = None,
    with_feedback: bool = False,
    log_root: str | None = None,
    labels_root: str | None = None,
) -> pd.DataFrame:
    """``model``'s logged rows in ``[since, until)``; ``with_feedback``: only those with a label,
    the label columns added (the latest label of each row, whenever it was recorded)."""
    log = read_log(model, version=version, since=since, until=until, root=log_root)
    if not with_feedback:
        return log
    labels = read_feedback(model, root=labels_root or feedback_root(log_root))
    joined = join_feedback(log, labels)
    if LABEL not in joined.columns:
        return joined
    return joined[joined[LABEL].notna()].reset_index(drop=True)


def write_rows(frame: pd.DataFrame, out: Path, *, overwrite: bool = False) -> None:
    """``frame`` as Parquet or CSV, by ``out``'s suffix, written beside and renamed into place."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInputError(
            f"--out {out} must end in .parquet or .csv (the format is taken from the suffix)"
        )
    if out.exists() and not overwrite:
        raise InvalidInputError(f"{out} already exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    hidden = out.with_name(f".{out.name}.partial")
    try:
        if suffix == ".parquet":
            frame.to_parquet(hidden, index=False)
        else:
            frame.to_csv(hidden, index=False)
        hidden.replace(out)
    finally:
        hidden.unlink(missing_ok=True)
