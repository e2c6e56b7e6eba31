"""Millions of narrow rows into PostgreSQL by binary COPY, built column by column in numpy.

Runs write one row per household (decisions, scores, entitlements): tens of millions of rows
of integers, booleans and dates. As CSV, each value is formatted by Python's side and parsed
again by the server's, and parsing is most of what a CSV COPY costs the server. PostgreSQL's
binary COPY format carries each value as its fixed-width big-endian bytes: this module lays a
frame's columns out in that format with numpy (no per-row Python), a piece of rows at a time.
psycopg's own binary COPY goes through Python once per row, which is what this avoids.

Fixed-width types (smallint, integer, bigint, double precision, boolean, date, timestamps with
a time zone) and text are laid out here; a frame with any other column is written as CSV.
A frame of fixed-width columns is laid out as one block of equal rows; text makes rows of
unequal length, so each field is placed at its row's offset instead.
"""

import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    SmallInteger,
    String,
    Table,
    text,
)
from sqlalchemy.types import TypeEngine

_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_EPOCH = (date(2000, 1, 1) - date(1970, 1, 1)).days  # PostgreSQL counts days from 2000
_TIMESTAMP_EPOCH = 946_684_800_000_000  # and microseconds from 2000-01-01 UTC
# Rows laid out per piece. Each piece's arrays are a few megabytes, so the allocator hands the
# same memory back for the next piece; with a million rows a piece (tens of megabytes) every
# piece was fresh memory from the kernel, page-faulted in as it was written, and writing a
# million decisions by COPY took 3.8 s against 2.0 s in pieces of 65,536 (median of 4 runs
# each, alternated, into a fresh table with its primary key). The server also starts on the
# first rows sooner.
_CHUNK = 65_536
_WIDTHS = {
    pl.Int16: (">i2", 2),
    pl.Int32: (">i4", 4),
    pl.Int64: (">i8", 8),
    pl.Float64: (">f8", 8),
    pl.Boolean: ("u1", 1),
    pl.Date: (">i4", 4),
}


def _timestamp(dtype: pl.DataType) -> bool:
    # A timestamp without a zone would be read as UTC here but in the session's zone from CSV:
    # only zoned ones (one instant, whatever the zone) are laid out.
    return isinstance(dtype, pl.Datetime) and dtype.time_zone is not None


def _binary_into(dtype: pl.DataType, column: TypeEngine) -> bool:
    """Whether the server takes this frame type's binary bytes as the column's own: its binary
    input accepts only its type's exact form (eight bytes are not an integer column's four;
    text is not jsonb's), where from CSV it parses and converts whatever it is given."""
    if dtype in (pl.Int16, pl.Int32, pl.Int64):
        widest = {pl.Int16: SmallInteger, pl.Int32: Integer, pl.Int64: BigInteger}[dtype]
        narrower = {pl.Int16: (), pl.Int32: (SmallInteger, BigInteger), pl.Int64: ()}[dtype]
        return isinstance(column, widest) and not isinstance(column, narrower)
    if dtype == pl.Float64:
        return isinstance(column, Float) and column.precision is None  # double precision
    if _timestamp(dtype):
        return isinstance(column, DateTime) and bool(column.timezone)
    kinds = {pl.Boolean: Boolean, pl.Date: Date, pl.String: String}
    return dtype in kinds and isinstance(column, kinds[dtype])


def binary_ready(frame: pl.DataFrame, table: Table) -> bool:
    """Whether every column of the frame can go into `table`'s by binary COPY."""
    return all(_binary_into(dtype, table.c[name].type) for name, dtype in frame.schema.items())


def _column_bytes(series: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4 + width) bytes of a column (length prefix, value) and which of them to keep."""
    if _timestamp(series.dtype):
        micros = series.dt.cast_time_unit("us").dt.epoch("us") - _TIMESTAMP_EPOCH
        return _column_bytes(micros.alias(series.name))
    code, width = _WIDTHS[series.dtype]
    nulls = series.is_null().to_numpy()
    if series.dtype == pl.Date:
        values = series.cast(pl.Int32).fill_null(0).to_numpy() - _EPOCH
    elif series.dtype == pl.Boolean:
        values = series.fill_null(False).cast(pl.UInt8).to_numpy()
    else:
        values = series.fill_null(0).to_numpy()
    n = series.len()
    block = np.empty((n, 4 + width), dtype=np.uint8)
    lengths = np.where(nulls, -1, width).astype(">i4")
    block[:, :4] = lengths.view(np.uint8).reshape(n, 4)
    block[:, 4:] = values.astype(code).view(np.uint8).reshape(n, width)
    keep = np.ones((n, 4 + width), dtype=bool)
    keep[nulls, 4:] = False  # a NULL is its length (-1) alone
    return block, keep


def _fixed_rows(part: pl.DataFrame, count: np.ndarray) -> bytes:
    blocks, keeps = [np.tile(count, (part.height, 1))], [np.ones((part.height, 2), bool)]
    for name in part.columns:
        block, keep = _column_bytes(part[name])
        blocks.append(block)
        keeps.append(keep)
    rows = np.hstack(blocks)
    return rows[np.hstack(keeps)].tobytes()  # row-major: each row's fields in order


def _text_field(series: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A text column's UTF-8 bytes, each row's offset into them and length (-1: NULL)."""
    array = series.to_arrow().cast(pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    _, offsets, data = array.buffers()
    offsets = np.frombuffer(offsets, np.int64)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8)
    lengths = np.diff(offsets)
    return data, offsets[:-1], np.where(series.is_null().to_numpy(), -1, lengths)


def _varying_rows(part: pl.DataFrame, count: np.ndarray) -> bytes:
    """Rows of unequal length: every field's bytes placed at its own offset in the piece."""
    fields = []
    for name in part.columns:
        series = part[name]
        if series.dtype == pl.String:
            data, starts, lengths = _text_field(series)
            fields.append((lengths, data, starts))
        else:
            block, keep = _column_bytes(series)
            fields.append((np.where(keep[:, -1], block.shape[1] - 4, -1), block, None))
    sizes = 2 + sum(4 + np.maximum(lengths, 0) for lengths, _, _ in fields)
    at = np.zeros(part.height, np.int64)
    np.cumsum(sizes[:-1], out=at[1:])
    out = np.empty(int(sizes.sum()), np.uint8)
    out[at[:, None] + np.arange(2)] = count
    at += 2
    for lengths, values, starts in fields:
        out[at[:, None] + np.arange(4)] = lengths.astype(">i4").view(np.uint8).reshape(-1, 4)
        present = lengths > 0
        if starts is None:  # a fixed-width value: after its length, unless NULL
            width = values.shape[1] - 4
            out[at[present, None] + 4 + np.arange(width)] = values[present, 4:]
        elif present.any():  # text: each value's bytes, from its source offset to its field's
            length, source_start = lengths[present], starts[present]
            before = np.cumsum(length) - length  # bytes of earlier values in the copied run
            source = np.arange(length.sum()) + np.repeat(source_start - before, length)
            out[source + np.repeat(at[present] + 4 - source_start, length)] = values[source]
        at += 4 + np.maximum(lengths, 0)
    return out.tobytes()


def binary_chunks(frame: pl.DataFrame):
    """The frame in PostgreSQL's binary COPY format, in pieces of at most `_CHUNK` rows."""
    yield _HEADER
    count = np.array([frame.width], dtype=">i2").view(np.uint8)
    fixed = all(dtype in _WIDTHS or _timestamp(dtype) for dtype in frame.schema.values())
    for start in range(0, frame.height, _CHUNK):
        part = frame.slice(start, _CHUNK)
        yield _fixed_rows(part, count) if fixed else _varying_rows(part, count)
    yield _TRAILER


def copy_frame(driver_connection, table: Table, frame: pl.DataFrame) -> None:
    """Append the frame's rows to `table` (columns named as the frame's) by COPY: binary when
    every column's values are laid out as its type's (`binary_ready`), CSV otherwise."""
    if not frame.height:
        return
    columns = ", ".join(frame.columns)
    with driver_connection.cursor() as cursor:
        if binary_ready(frame, table):
            with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN (FORMAT binary)") as copy:
                for piece in binary_chunks(frame):
                    copy.write(piece)
            return
        buffer = io.BytesIO()
        frame.write_csv(buffer, include_header=False, null_value="")
        with cursor.copy(f"COPY {table.name} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            view = buffer.getbuffer()
            for start in range(0, len(view), 1 << 20):
                copy.write(view[start : start + (1 << 20)])


def query_frame(session, query: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """A SELECT's rows as a frame, read in the session's own transaction: by COPY out on
    PostgreSQL (millions of rows without a Python object each), by the driver elsewhere.
    `query` is trusted SQL (no user input: parameters are the caller's literals); `schema`
    names the columns in order: integers, text and dates (no Boolean: COPY writes t/f)."""
    if session.bind.dialect.name != "postgresql":
        rows = session.execute(text(query)).all()
        # SQLite hands dates back as ISO text.
        dates = [name for name, dtype in schema.items() if dtype == pl.Date]
        as_read = {name: (pl.String if name in dates else dtype) for name, dtype in schema.items()}
        frame = pl.DataFrame(rows, schema=as_read, orient="row")
        return frame.with_columns(pl.col(name).str.to_date() for name in dates)
    buffer = io.BytesIO()
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
        for chunk in copy:
            buffer.write(chunk)
    if not buffer.tell():
        return pl.DataFrame(schema=schema)
    buffer.seek(0)
    return pl.read_csv(buffer, has_header=False, new_columns=list(schema), schema=schema)


# --- reading a query's rows out of the database, by engine (outside any session) -------------

# A bulk read may sort or hash millions of rows: with the default 4 MB it spills to disk
# in a hundred batches.
READ_WORK_MEM = "256MB"


def read_query(engine: Engine, query: str, schema: dict, work_dir: Path | None) -> pl.DataFrame:
    """A query's rows as a frame (`schema` names its columns in order; a list column comes as
    its text): PostgreSQL's COPY through a private file in `work_dir`, SQLite's driver."""
    if engine.dialect.name == "postgresql":
        return _copy_out(engine, query, schema, work_dir)
    with engine.connect() as connection:
        rows = connection.execute(text(query)).all()
    dates = [name for name, dtype in schema.items() if dtype == pl.Date]
    text_schema = {name: (pl.String if name in dates else dtype) for name, dtype in schema.items()}
    frame = pl.DataFrame(rows, schema=text_schema, orient="row")
    return frame.with_columns(pl.col(name).str.to_date(strict=False) for name in dates)


def _csv_schema(schema: dict) -> dict:
    return {
        name: (pl.String if isinstance(dtype, pl.List) else dtype) for name, dtype in schema.items()
    }


def _copy_to(engine: Engine, query: str, spool) -> None:
    connection = engine.raw_connection()
    try:
        copy_sql = f"COPY ({query}) TO STDOUT (FORMAT csv)"
        with connection.cursor() as cursor:
            # For this read only (rolled back below).
            cursor.execute(f"SET LOCAL work_mem = '{READ_WORK_MEM}'")
            with cursor.copy(copy_sql) as copy:
                for chunk in copy:
                    spool.write(chunk)
        spool.flush()
    finally:
        connection.rollback()
        connection.close()


@contextmanager
def _spooled(engine: Engine, query: str, work_dir: Path | None) -> Iterator[Path | None]:
    """The query's rows as CSV in a private file in `work_dir` (None when there are none),
    removed when the block ends."""
    if work_dir is not None:
        work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=work_dir, suffix=".csv") as spool:
        _copy_to(engine, query, spool)
        path = Path(spool.name)
        yield path if path.stat().st_size else None


def _copy_out(engine: Engine, query: str, schema: dict, work_dir: Path | None) -> pl.DataFrame:
    with _spooled(engine, query, work_dir) as spool:
        if spool is None:
            return pl.DataFrame(schema=schema)
        return pl.read_csv(
            spool, has_header=False, new_columns=list(schema), schema=_csv_schema(schema)
        )
