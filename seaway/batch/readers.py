"""Reading input files as a stream of Arrow tables of exactly ``chunk_rows`` rows.

Chunk ``k`` of a file always holds its rows ``[k * chunk_rows, (k + 1) * chunk_rows)``, whatever
the reader's own block sizes: that is what lets a resumed job skip the chunks it committed and
produce the same parts. Memory stays at about one chunk per reader.

- Parquet: ``ParquetFile.iter_batches`` over only the columns needed; a resumed job starts at the
  row group holding its first missing chunk instead of the top of the file. The local engine's
  workers read their own Parquet chunks: the driver cuts each file into spans of consecutive
  chunks from its metadata alone (``plan_spans``), and a worker reads one span's rows
  (``read_span``), so no chunk is decoded in the driver or copied between processes.
- CSV: pyarrow's streaming reader, the model's columns read as text so that a bad value becomes a
  rejected row, not a failed job (scoring converts and checks them).
- JSON Lines: pandas' chunked reader, which keeps mixed-type values for the same reason.
"""

from __future__ import annotations

import io
from collections.abc import Container, Generator, Iterator, Sequence
from typing import Any

import pandas as pd

from seaway.batch.inputs import InputFile
from seaway.errors import BatchInputError, MissingDependencyError

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


def row_groups(file: InputFile) -> list[int]:
    """The rows of each of a Parquet file's row groups, from its metadata alone."""
    pa = pyarrow_modules()
    try:
        with file.open() as handle:
            meta = pa.parquet.ParquetFile(handle).metadata
            return [meta.row_group(group).num_rows for group in range(meta.num_row_groups)]
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise BatchInputError(f"cannot read {file.url}: {exc}") from exc


def plan_spans(
    groups: Sequence[int], chunk_rows: int, skip: Container[int], max_chunks: int
) -> list[tuple[int, int]]:
    """A Parquet file's chunks still to do, as ranges ``[first, stop)`` of chunk indices.

    A span never holds a chunk in ``skip`` and has at most ``max_chunks`` chunks. A worker
    reading a span decodes its first row group from the top (Parquet cannot start mid-group),
    so a span longer than half of ``max_chunks`` ends where a row group starts, when one
    starts there: the next span then drops as few rows as the file's layout allows.
    """
    max_chunks = max(1, max_chunks)
    total = sum(groups)
    starts = set()  # for each row group, the first chunk whose first row is in it
    row = 0
    for rows in groups:
        if rows:
            starts.add(-(-row // chunk_rows))
        row += rows
    spans: list[tuple[int, int]] = []
    first: int | None = None
    for chunk in range(-(-total // chunk_rows)):
        if chunk in skip:
            if first is not None:
                spans.append((first, chunk))
                first = None
            continue
        if first is not None:
            length = chunk - first
            if length >= max_chunks or (chunk in starts and 2 * length >= max_chunks):
                spans.append((first, chunk))
                first = None
        if first is None:
            first = chunk
    if first is not None:
        spans.append((first, -(-total // chunk_rows)))
    return spans


def read_span(
    file: InputFile,
    columns: Sequence[str],
    chunk_rows: int,
    first: int,
    stop: int,
    *,
    use_threads: bool = False,
) -> Generator[tuple[int, Any], None, None]:
    """``(chunk index, pyarrow.Table)`` for chunks ``first`` to ``stop - 1`` of a Parquet file:
    the same tables ``read_chunks`` gives for them, read from the row groups that hold them."""
    pa = pyarrow_modules()
    try:
        handle = file.open()
    except (OSError, ValueError) as exc:
        raise BatchInputError(f"cannot read {file.url}: {exc}") from exc
    try:
        parquet = pa.parquet.ParquetFile(handle, buffer_size=_BLOCK_BYTES, pre_buffer=False)
        meta = parquet.metadata
        begin, end = first * chunk_rows, min(stop * chunk_rows, meta.num_rows)
        groups: list[int] = []
        start_row = row = 0
        for group in range(meta.num_row_groups):
            rows = meta.row_group(group).num_rows
            if row + rows > begin and row < end:
                if not groups:
                    start_row = row
                groups.append(group)
            row += rows
        if not groups:
            return
        blocks = parquet.iter_batches(
            batch_size=chunk_rows, row_groups=groups, columns=list(columns), use_threads=use_threads
        )
        # the chunks before ``first`` in the first row group are decoded (no way around it) but
        # never assembled
        for index, table in _rechunk(pa, blocks, chunk_rows, start_row, range(first)):
            if index >= stop:
                break
            yield index, table
    except BatchInputError:
        raise
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise BatchInputError(f"cannot read {file.url}: {exc}") from exc
    finally:
        handle.close()


def _rechunk(
    pa: Any, blocks: Iterator[Any], chunk_rows: int, first_row: int, skip: Container[int]
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
