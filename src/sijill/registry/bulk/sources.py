"""Reading agencies' files as streams of all-text batches (Polars frames), whatever their format.

Everything is read as text: an agency's "numbers" carry Arabic-Indic digits, leading zeros
and stray spaces, and its dates come in the formats its clerks use, so typing is done later by
the importer's own rules (never by a reader's guess). Each row carries `_row`, its position as a
clerk would find it: the line in a CSV, the row in a spreadsheet, the record in a Parquet file.
"""

import csv
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sijill.core.errors import InvalidInput

ROW = "_row"
_ROW_EXCERPT = re.compile(r"(Expected \d+ columns, got \d+): .*", re.DOTALL)
SUFFIXES = (".csv", ".parquet", ".xlsx")


def read_batches(path: Path, batch_rows: int, sheet: str | None = None) -> Iterator[pl.DataFrame]:
    """Yield frames of at most `batch_rows` rows, every column a string, plus `_row`."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from (pl.from_arrow(table) for table in _csv_batches(path, batch_rows))
    elif suffix == ".parquet":
        yield from _parquet_batches(path, batch_rows)
    elif suffix == ".xlsx":
        yield from (pl.from_arrow(table) for table in _xlsx_batches(path, batch_rows, sheet))
    else:
        raise InvalidInput(f"{path.name}: cannot read '{suffix}' files; use CSV, XLSX or Parquet")


def count_rows(path: Path, sheet: str | None = None) -> int | None:
    """Rows in the file when it is cheap to know (for the progress bar)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    return None


def _with_row_numbers(table: pa.Table, first_row: int) -> pa.Table:
    rows = pa.array(range(first_row, first_row + table.num_rows), type=pa.int64())
    return table.append_column(ROW, rows)


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
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
    return frame.with_columns(converted) if converted else frame


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        try:
            return next(csv.reader(handle))
        except StopIteration:
            raise InvalidInput(f"{path.name}: the file is empty") from None
        except UnicodeDecodeError:
            raise InvalidInput(f"{path.name}: the file is not UTF-8 text") from None


def _csv_batches(path: Path, batch_rows: int) -> Iterator[pa.Table]:
    header = _csv_header(path)
    if len(set(header)) != len(header):
        raise InvalidInput(f"{path.name}: the header row names a column twice")
    # Line 1 is the header, so the first record is line 2 (assumes no newlines inside fields,
    # which agencies' exports do not use; numbering stays a good pointer if they do).
    next_row = 2
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    try:
        # Opening parses the first block already: a malformed row there fails here.
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 24, use_threads=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
        for record_batch in reader:
            pending.append(record_batch)
            pending_rows += record_batch.num_rows
            while pending_rows >= batch_rows:
                table = pa.Table.from_batches(pending)
                head, rest = table.slice(0, batch_rows), table.slice(batch_rows)
                yield _with_row_numbers(head, next_row)
                next_row += head.num_rows
                pending, pending_rows = rest.to_batches(), rest.num_rows
    except pa.ArrowInvalid as error:
        # Arrow quotes the offending row after its reason: a person's data, which a job's
        # error (shown and stored) must not hold.
        reason = _ROW_EXCERPT.sub(r"\1", str(error))
        raise InvalidInput(f"{path.name}: cannot be read as CSV ({reason})") from None
    if pending_rows:
        yield _with_row_numbers(pa.Table.from_batches(pending), next_row)


def _parquet_batches(path: Path, batch_rows: int) -> Iterator[pl.DataFrame]:
    try:
        total = pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowInvalid, OSError) as error:
        raise InvalidInput(f"{path.name}: cannot be read as Parquet ({error})") from None
    # Polars reads the row groups a slice needs, on every core.
    source = pl.scan_parquet(path)
    for offset in range(0, total, batch_rows):
        frame = _as_text(source.slice(offset, batch_rows).collect())
        yield frame.with_columns(
            pl.int_range(offset + 1, offset + 1 + frame.height, dtype=pl.Int64).alias(ROW)
        )


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


def _xlsx_batches(path: Path, batch_rows: int, sheet: str | None) -> Iterator[pa.Table]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a damaged file
        raise InvalidInput(f"{path.name}: cannot be read as XLSX ({error})") from None
    if sheet is not None and sheet not in workbook.sheetnames:
        raise InvalidInput(f"{path.name}: no sheet named '{sheet}'")
    rows = (workbook[sheet] if sheet else workbook.worksheets[0]).iter_rows(values_only=True)
    header_cells = next(rows, None)
    if header_cells is None:
        raise InvalidInput(f"{path.name}: the sheet is empty")
    header = [_cell_text(cell) or f"column_{i + 1}" for i, cell in enumerate(header_cells)]
    next_row, chunk = 2, []
    for cells in rows:
        chunk.append([_cell_text(cell) for cell in cells[: len(header)]])
        if len(chunk) == batch_rows:
            yield _xlsx_table(header, chunk, next_row)
            next_row += len(chunk)
            chunk = []
    if chunk:
        yield _xlsx_table(header, chunk, next_row)
    workbook.close()


def _xlsx_table(header: list[str], chunk: list[list], first_row: int) -> pa.Table:
    columns = {
        name: pa.array([row[i] if i < len(row) else None for row in chunk], type=pa.string())
        for i, name in enumerate(header)
    }
    return _with_row_numbers(pa.table(columns), first_row)
