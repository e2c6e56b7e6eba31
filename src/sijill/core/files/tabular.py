"""Tables (CSV, XLSX, Parquet) as batches of text rows with their line numbers and rejects.

Everything is read as text: an agency's "numbers" carry Arabic-Indic digits, leading zeros
and stray spaces, and its dates come in the formats its clerks use, so typing is done later by
the reader's caller (never by a parser's guess). Each row carries `_row`, where a clerk finds
it: the line in a CSV, the row in a spreadsheet, the record in a Parquet file. Blank rows are
skipped; a row with a NUL character or an overlong field is a reject, whatever the format.
"""

import datetime as dt
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from sijill.core.files.contract import (
    MAX_FIELD_CHARS,
    ROW,
    Reason,
    UnreadableFile,
    check_openable,
    message,
    no_rejects,
    rejects_frame,
)
from sijill.core.files.csv_reader import csv_pieces

TABLE_SUFFIXES = (".csv", ".parquet", ".xlsx")
# An XLSX is a ZIP of XML: refuse one that would unpack to far more than it weighs (sheets
# compress about tenfold) before a parser tries.
_XLSX_MAX_RATIO = 200
_XLSX_MAX_BYTES = 4 << 30

Piece = tuple[pl.DataFrame, pl.DataFrame]
ROW_KEY = "row"  # a reject's row


@dataclass
class TableBatch:
    rows: pl.DataFrame  # every column text, plus _row
    rejects: pl.DataFrame  # row, reason, message (contract.REJECTS): never a row's content


def read_table(path: Path, batch_rows: int, sheet: str | None = None) -> Iterator[TableBatch]:
    """Batches of at most `batch_rows` rows, in the file's order, each with the rejects found
    since the batch before (a batch may hold no rows and only rejects)."""
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise UnreadableFile(path, f"cannot read '{suffix}' files; use CSV, XLSX or Parquet")
    check_openable(path)
    kind = {".csv": "CSV", ".parquet": "Parquet", ".xlsx": "XLSX"}[suffix]
    try:
        if suffix == ".csv":
            pieces = csv_pieces(path)
        elif suffix == ".parquet":
            pieces = _parquet_pieces(path, batch_rows)
        else:
            pieces = _xlsx_pieces(path, batch_rows, sheet)
        yield from _batches((_checked(*piece) for piece in pieces), batch_rows)
    except UnreadableFile:
        raise
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException, pl.exceptions.PolarsError):
        # The parsers' messages quote the file's content: only its kind is said.
        raise UnreadableFile(path, f"cannot be read as {kind}") from None


def count_rows(path: Path) -> int | None:
    """Rows in the file when it is cheap to know (for a progress bar)."""
    if path.suffix.lower() == ".parquet":
        try:
            return pq.ParquetFile(path).metadata.num_rows
        except (OSError, pa.ArrowException):
            return None
    return None


def _may_hold_nul_or_long(rows: pl.DataFrame, texts: list[str]) -> bool:
    """False when no value of the text columns holds a NUL or passes MAX_FIELD_CHARS: each
    column searched once, joined into one text, and its longest value measured in bytes (a
    character is at least one byte). Less than half the cost of asking value by value, which
    is left for the rare batch where this says True."""
    nul, longest = rows.select(
        pl.any_horizontal(pl.col(texts).str.join("").str.contains("\x00", literal=True)),
        pl.max_horizontal(pl.col(texts).str.len_bytes().max()).alias("longest"),
    ).row(0)
    return bool(nul) or (longest or 0) > MAX_FIELD_CHARS


def _checked(rows: pl.DataFrame, rejects: pl.DataFrame) -> Piece:
    """Blank rows dropped; rows with a NUL or an overlong field moved to the rejects."""
    texts = [name for name in rows.columns if name != ROW]
    if not texts or rows.height == 0:
        return rows, rejects
    if not _may_hold_nul_or_long(rows, texts):
        blank = rows.select(pl.all_horizontal(pl.col(texts).is_null()))
        if not blank.to_series().any():
            return rows, rejects
    marks = rows.select(
        pl.all_horizontal(pl.col(texts).is_null()).alias("blank"),
        pl.any_horizontal(pl.col(texts).str.contains("\x00", literal=True))
        .fill_null(False)
        .alias("nul"),
        pl.any_horizontal(pl.col(texts).str.len_chars() > MAX_FIELD_CHARS)
        .fill_null(False)
        .alias("long"),
    )
    if not (marks["blank"].any() or marks["nul"].any() or marks["long"].any()):
        return rows, rejects
    found = [rejects]
    for mark, reason, values in (
        ("nul", Reason.NUL, {}),
        ("long", Reason.TOO_LONG, {"limit": MAX_FIELD_CHARS}),
    ):
        numbers = rows.filter(marks[mark] & ~marks["blank"])[ROW].to_list()
        if numbers:
            said = message(reason, **values)
            found.append(rejects_frame(numbers, [reason] * len(numbers), [said] * len(numbers)))
    keep = ~(marks["blank"] | marks["nul"] | marks["long"])
    return rows.filter(keep), pl.concat(found).unique(ROW_KEY, keep="first", maintain_order=True)


def _batches(pieces: Iterator[Piece], size: int) -> Iterator[TableBatch]:
    pending: list[pl.DataFrame] = []
    pending_rows = 0
    rejects: list[pl.DataFrame] = []
    template = pl.DataFrame(schema={ROW: pl.Int64})
    for rows, found in pieces:
        template = rows.clear()
        if found.height:
            rejects.append(found)
        if rows.height:
            pending.append(rows)
            pending_rows += rows.height
        while pending_rows >= size:
            frame = pl.concat(pending) if len(pending) > 1 else pending[0]
            head, rest = frame.slice(0, size), frame.slice(size)
            yield TableBatch(head, _joined(rejects))
            rejects = []
            pending, pending_rows = ([rest] if rest.height else []), rest.height
    if pending or rejects:
        rows = pl.concat(pending) if len(pending) > 1 else pending[0] if pending else template
        yield TableBatch(rows, _joined(rejects))


def _joined(rejects: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(rejects).sort(ROW_KEY) if rejects else no_rejects()


# --- Parquet ---------------------------------------------------------------------------------


def _as_text(path: Path, frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text, as a CSV would give it: dates as ISO days, lists joined by ';'."""
    converted = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if dtype == pl.String:
            continue
        if dtype == pl.Date or isinstance(dtype, pl.Datetime):
            converted.append(column.cast(pl.Date).cast(pl.String))
        elif isinstance(dtype, pl.List | pl.Array):
            converted.append(column.cast(pl.List(pl.String)).list.join(";"))
        else:
            converted.append(column.cast(pl.String))
    if not converted:
        return frame
    try:
        return frame.with_columns(converted)
    except pl.exceptions.PolarsError:
        raise UnreadableFile(path, "a column holds values that cannot be read as text") from None


def _parquet_pieces(path: Path, batch_rows: int) -> Iterator[Piece]:
    total = pq.ParquetFile(path).metadata.num_rows
    source = pl.scan_parquet(path)
    if ROW in source.collect_schema().names():
        raise UnreadableFile(path, f"a column is named {ROW}, a name kept for row numbers")
    # Polars reads the row groups a slice needs, on every core.
    for offset in range(0, total, batch_rows):
        frame = _as_text(path, source.slice(offset, batch_rows).collect())
        rows = frame.with_columns(
            pl.int_range(offset + 1, offset + 1 + frame.height, dtype=pl.Int64).alias(ROW)
        )
        yield rows, no_rejects()


# --- XLSX ------------------------------------------------------------------------------------


def _cell_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        raise UnreadableFile(path, "is not an XLSX file (not a ZIP archive)") from None
    if unpacked > _XLSX_MAX_BYTES or unpacked > _XLSX_MAX_RATIO * path.stat().st_size + (1 << 24):
        raise UnreadableFile(path, "would unpack to far more than its size (a ZIP bomb?)")


def _xlsx_pieces(path: Path, batch_rows: int, sheet: str | None) -> Iterator[Piece]:
    from openpyxl import load_workbook

    _check_zip(path)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a damaged file, quoting it
        raise UnreadableFile(path, "cannot be read as XLSX") from None
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise UnreadableFile(path, f"no sheet named '{sheet}'")
        try:
            yield from _sheet_pieces(
                path, workbook[sheet] if sheet else workbook.worksheets[0], batch_rows
            )
        except UnreadableFile:
            raise
        except Exception:  # a damaged sheet fails part way, in many ways
            raise UnreadableFile(path, "cannot be read as XLSX") from None
    finally:
        workbook.close()


def _sheet_pieces(path: Path, worksheet, batch_rows: int) -> Iterator[Piece]:
    rows = worksheet.iter_rows(values_only=True)
    header_cells = next(rows, None)
    if header_cells is None:
        raise UnreadableFile(path, "the sheet is empty")
    header = [_cell_text(cell) or f"column_{i + 1}" for i, cell in enumerate(header_cells)]
    if len(set(header)) != len(header):
        raise UnreadableFile(path, "the header row names a column twice")
    if ROW in header:
        raise UnreadableFile(path, f"a column is named {ROW}, a name kept for row numbers")
    next_row, chunk = 2, []
    for cells in rows:
        chunk.append([_cell_text(cell) for cell in cells[: len(header)]])
        if len(chunk) == batch_rows:
            yield _xlsx_frame(header, chunk, next_row), no_rejects()
            next_row += len(chunk)
            chunk = []
    yield _xlsx_frame(header, chunk, next_row), no_rejects()


def _xlsx_frame(header: list[str], chunk: list[list], first_row: int) -> pl.DataFrame:
    columns = {
        name: pa.array([row[i] if i < len(row) else None for row in chunk], type=pa.string())
        for i, name in enumerate(header)
    }
    rows = pa.array(range(first_row, first_row + len(chunk)), type=pa.int64())
    return pl.from_arrow(pa.table({**columns, ROW: rows}))
