"""Reading input files as a stream of Arrow tables of exactly ``chunk_rows`` rows.

Chunk ``k`` of a file always holds its rows ``[k * chunk_rows, (k + 1) * chunk_rows)``, whatever
the reader's own block sizes: that is what lets a resumed job skip the chunks it committed and
produce the same parts. Memory stays at about one chunk per reader.

- Parquet: ``ParquetFile.iter_batches`` over only the columns needed; a resumed job starts at the
  row group holding its first missing chunk instead of the top of the file.
- CSV: pyarrow's streaming reader, the model's columns read as text so that a bad value becomes a
  rejected row, not a failed job (scoring converts and checks them).
- JSON Lines: pandas' chunked reader, which keeps mixed-type values for the same reason.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd

from seaway.batch.inputs import BatchInputError, InputFile
from seaway.errors import MissingDependencyError

_BLOCK_BYTES = 4 << 20


def pyarrow_modules() -> Any:
    try:
        import pyarrow
        import pyarrow.csv
        import pyarrow.parquet
    except ImportError as exc:  # pragma: no cover - the batch extra installs it
        raise MissingDependencyError("pyarrow", "batch", "Batch scoring") from exc
    return pyarrow


def columns_of(file: InputFile) -> list[str]:
    """The file's column names, read from its schema or first line (checks it is readable)."""
    pa = pyarrow_modules()
    try:
        with file.open() as handle:
            if file.format == "parquet":
                return list(pa.parquet.ParquetFile(handle).schema_arrow.names)
            if file.format == "csv":
                reader = pa.csv.open_csv(handle, read_options=_csv_read(1 << 16))
                return list(reader.schema.names)
            first = handle.readline()
            if not first.strip():
                raise BatchInputError(f"{file.url} is empty: no JSON line to read")
            row = pd.read_json(io.StringIO(first.decode("utf-8")), lines=True, dtype=False)
            return [str(c) for c in row.columns]
    except BatchInputError:
        raise
    except Exception as exc:  # pyarrow and pandas raise many kinds for a broken file
        raise BatchInputError(
            f"cannot read {file.url} as {file.format}: {type(exc).__name__}: {exc}"
        ) from exc


def row_count(file: InputFile) -> int | None:
    """Rows in the file when its metadata says so (Parquet), else None."""
    if file.format != "parquet":
        return None
    pa = pyarrow_modules()
    with file.open() as handle:
        return int(pa.parquet.ParquetFile(handle).metadata.num_rows)


def read_chunks(
    file: InputFile,
    columns: Sequence[str],
    text_columns: Sequence[str],
    chunk_rows: int,
    skip: set[int] | frozenset[int] = frozenset(),
) -> Iterator[tuple[int, Any]]:
    """``(chunk index, pyarrow.Table)`` for every chunk not in ``skip``, in order."""
    pa = pyarrow_modules()
    handle = file.open()
    try:
        if file.format == "parquet":
            blocks, first_row = _parquet_blocks(pa, handle, columns, chunk_rows, skip)
        elif file.format == "csv":
            blocks, first_row = _csv_blocks(pa, handle, columns, text_columns), 0
        else:
            blocks, first_row = _jsonl_blocks(pa, handle, columns, chunk_rows), 0
        try:
            yield from _rechunk(pa, blocks, chunk_rows, first_row, skip)
        except BatchInputError:
            raise
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise BatchInputError(f"cannot read {file.url}: {exc}") from exc
    finally:
        handle.close()


def _rechunk(
    pa: Any, blocks: Iterator[Any], chunk_rows: int, first_row: int, skip: set[int] | frozenset[int]
) -> Iterator[tuple[int, Any]]:
    """Cut blocks of any size into chunks aligned on multiples of ``chunk_rows``."""
    pending: list[Any] = []
    pending_rows = 0
    # a stream starting mid-chunk cannot complete that chunk (it was committed): drop the rest of
    # it and start at the next chunk boundary
    index, offset = divmod(first_row, chunk_rows)
    lead = 0
    if offset:
        index, lead = index + 1, chunk_rows - offset
    for block in blocks:
        if block.num_rows == 0:
            continue
        if lead:
            take = min(lead, block.num_rows)
            block, lead = block.slice(take), lead - take
            if block.num_rows == 0:
                continue
        pending.append(block)
        pending_rows += block.num_rows
        while pending_rows >= chunk_rows:
            table = pa.Table.from_batches(pending) if pending else None
            assert table is not None
            chunk, rest = table.slice(0, chunk_rows), table.slice(chunk_rows)
            if index not in skip:
                yield index, chunk.combine_chunks()
            index += 1
            pending = rest.to_batches() if rest.num_rows else []
            pending_rows = rest.num_rows
    if pending_rows and index not in skip:
        yield index, pa.Table.from_batches(pending).combine_chunks()


def _parquet_blocks(
    pa: Any, handle: Any, columns: Sequence[str], chunk_rows: int, skip: set[int] | frozenset[int]
) -> tuple[Iterator[Any], int]:
    parquet = pa.parquet.ParquetFile(handle, buffer_size=_BLOCK_BYTES, pre_buffer=False)
    meta = parquet.metadata
    # start at the row group that holds the first chunk still to do
    first_missing = 0
    while first_missing in skip:
        first_missing += 1
    wanted_row = first_missing * chunk_rows
    groups: list[int] = []
    start_row = row = 0
    for group in range(meta.num_row_groups):
        rows = meta.row_group(group).num_rows
        if row + rows <= wanted_row and not groups:
            row += rows
            start_row = row
            continue
        groups.append(group)
        row += rows
    if not groups:
        return iter(()), start_row
    # batches of a chunk's size: where row groups hold whole chunks, each batch is one chunk and
    # _rechunk passes it on without copying
    return parquet.iter_batches(
        batch_size=chunk_rows, row_groups=groups, columns=list(columns)
    ), start_row


def _csv_blocks(pa: Any, handle: Any, columns: Sequence[str], text: Sequence[str]) -> Iterator[Any]:
    convert = pa.csv.ConvertOptions(
        include_columns=list(columns),
        column_types={name: pa.string() for name in text},
        strings_can_be_null=True,
    )
    reader = pa.csv.open_csv(handle, read_options=_csv_read(_BLOCK_BYTES), convert_options=convert)
    yield from reader


def _jsonl_blocks(pa: Any, handle: Any, columns: Sequence[str], chunk_rows: int) -> Iterator[Any]:
    wanted = list(columns)
    frames = pd.read_json(handle, lines=True, dtype=False, chunksize=min(chunk_rows, 50_000))
    with frames:
        for frame in frames:
            missing = [c for c in wanted if c not in frame.columns]
            for name in missing:  # a line without the key: missing values, rejected by scoring
                frame[name] = None
            frame = frame[wanted]
            yield from pa.Table.from_pandas(_objects(frame), preserve_index=False).to_batches()


def _objects(frame: pd.DataFrame) -> pd.DataFrame:
    """Mixed-type JSON columns as plain objects of text, so Arrow accepts every line."""
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object and len({type(v) for v in column if v is not None}) > 1:
            frame[name] = column.map(lambda v: None if v is None else str(v))
    return frame


def _csv_read(block_size: int) -> Any:
    import pyarrow.csv

    return pyarrow.csv.ReadOptions(block_size=block_size, use_threads=False)
