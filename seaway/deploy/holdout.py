"""Reading a held-out data set for validation: one local path or fsspec URL, read whole.

A holdout set is small by nature (thousands of rows), so it is read into one DataFrame; the format
comes from the name (.parquet, .csv, .jsonl). Every failure is an ``InvalidInputError`` naming the
file, never fsspec's or pandas' own exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from seaway.errors import InvalidInputError, MissingDependencyError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = (".parquet", ".csv", ".jsonl")
#: fsspec protocols that a Seaway extra installs the driver for
_PROTOCOL_EXTRAS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3")}


def read_holdout(url: str) -> pd.DataFrame:
    """The rows of ``url``; refuses an unknown format, a missing or unreadable file, no rows."""
    import fsspec
    import pandas as pd

    suffix = next((s for s in FORMATS if url.lower().endswith(s)), None)
    if suffix is None:
        raise InvalidInputError(
            f"holdout data {url!r}: unknown format; name a {', '.join(FORMATS)} file"
        )
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        protocol = url.split("://", 1)[0]
        if protocol in _PROTOCOL_EXTRAS:
            package, extra = _PROTOCOL_EXTRAS[protocol]
            raise MissingDependencyError(package, extra, f"Reading {url}") from exc
        raise InvalidInputError(f"holdout data {url!r}: no fsspec driver for it ({exc})") from exc
    if not fs.exists(path):
        raise InvalidInputError(f"holdout data {url!r}: no such file")
    try:
        with fs.open(path, "rb") as handle:
            if suffix == ".parquet":
                frame = pd.read_parquet(handle)
            elif suffix == ".csv":
                frame = pd.read_csv(handle)
            else:
                frame = pd.read_json(handle, lines=True, dtype=False)
    except (OSError, ValueError) as exc:  # pandas' and pyarrow's parse errors are ValueErrors
        raise InvalidInputError(f"holdout data {url!r} cannot be read as {suffix}: {exc}") from exc
    if frame.empty:
        raise InvalidInputError(f"holdout data {url!r} holds no rows")
    return frame
