"""CSV, as pieces of text rows with their line numbers and the rejects found among them.

The fast path is pyarrow's reader, one thread, so it can number the rows it skips: its
`invalid_row_handler` hands over the record number of a row whose field count is wrong, and
the reader goes on. Rows are read as bytes and decoded here, so a line that is not UTF-8 is one
reject, not the end of the file. Line numbers count the line breaks inside quoted fields, so
they are the lines an editor shows.

Where pyarrow cannot go on (a quote left open swallows the lines after it, or an error it
cannot skip), reading continues from that line with the standard library's reader, record by
record: a record that spans lines but does not fit the header is the first line's fault, so
that line is rejected and the next one read afresh.
"""

import codecs
import csv
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sijill.core.files.contract import (
    MAX_FIELD_CHARS,
    ROW,
    Reason,
    UnreadableFile,
    message,
    rejects_frame,
)

Piece = tuple[pl.DataFrame, pl.DataFrame]  # rows (text columns and _row), rejects
_BLOCK = 1 << 24
_SLOW_PIECE_ROWS = 50_000
# A record whose quoted field runs past this many characters is a quote left open.
_MAX_RECORD_CHARS = 1 << 20
_OTHER_ENCODINGS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)


def csv_pieces(path: Path) -> Iterator[Piece]:
    """The file's pieces; a file none of whose lines can be read as UTF-8 text (saved in
    another encoding) is refused as a whole. Pieces without a readable row are held back
    until one has a row, so the verdict is the whole file's, wherever its readable lines are
    (the fast reader may hand the rest of a file over to the slow one)."""
    header, header_lines = _header(path)
    fast = _FastReader(path, header, header_lines)
    held: list[Piece] = []
    readable = False
    for piece in _all_pieces(path, header, fast):
        if readable:
            yield piece
        elif piece[0].height:
            readable = True
            yield from held
            held.clear()
            yield piece
        else:
            held.append(piece)
    if not readable and any(
        (rejects["reason"] == Reason.NOT_UTF8).any() for _, rejects in held if rejects.height
    ):
        raise UnreadableFile(path, "is not UTF-8 text; save it as UTF-8 CSV")
    yield from held


def _all_pieces(path: Path, header: list[str], fast: "_FastReader") -> Iterator[Piece]:
    yield from fast.pieces()
    if fast.resume_at is not None:
        yield from _slow_pieces(path, header, fast.resume_at)


def _header(path: Path) -> tuple[list[str], int]:
    """The column names and how many lines they take."""
    with path.open("rb") as handle:
        start = handle.read(4)
    if start.startswith(_OTHER_ENCODINGS):
        raise UnreadableFile(path, "is not UTF-8 text (UTF-16 or UTF-32); save it as UTF-8 CSV")
    if start.startswith(b"PK\x03\x04"):
        raise UnreadableFile(path, "is a ZIP archive (an XLSX file?), not CSV text")
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise UnreadableFile(path, "the file is empty") from None
        except csv.Error:
            raise UnreadableFile(path, "the header row cannot be read") from None
        lines = reader.line_num
    text = "".join(header)
    if not text.strip():
        raise UnreadableFile(path, "the first line is empty: it must name the columns")
    if "\x00" in text:
        raise UnreadableFile(path, "is not a text file (it holds NUL characters)")
    if _not_utf8(text):
        raise UnreadableFile(path, "is not UTF-8 text; save it as UTF-8 CSV")
    names = [name or f"column_{i + 1}" for i, name in enumerate(header)]
    if len(set(names)) != len(names):
        raise UnreadableFile(path, "the header row names a column twice")
    if ROW in names:
        raise UnreadableFile(path, f"a column is named {ROW}, a name kept for row numbers")
    return names, lines


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # surrogates: bytes the decoder could not read
        return True
    return False


def _breaks_in(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _field_count(rows: list[int], found: list[int], width: int) -> pl.DataFrame:
    return rejects_frame(
        rows,
        [Reason.FIELD_COUNT] * len(rows),
        [message(Reason.FIELD_COUNT, found=n, expected=width) for n in found],
    )


class _FastReader:
    def __init__(self, path: Path, header: list[str], header_lines: int):
        self.path, self.header = path, header
        self.names = [f"c{i}" for i in range(len(header))]
        self.header_lines = header_lines
        # pyarrow numbers records counting the header's lines; a record's line adds the line
        # breaks inside the quoted fields of the records before it.
        self.next_record = header_lines + 1
        self.breaks_before = 0
        self.skipped: list[tuple[int | None, int, int]] = []  # record, fields, line breaks
        self.resume_at: int | None = None  # the line the slow reader goes on from

    def _skip(self, row) -> str:
        # Only the row's shape is kept: its text is a person's data.
        self.skipped.append((row.number, row.actual_columns, _breaks_in(row.text)))
        return "skip"

    def pieces(self) -> Iterator[Piece]:
        _keep_handler_errors_quiet()
        try:
            reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(
                    use_threads=False,
                    block_size=_BLOCK,
                    skip_rows=self.header_lines,
                    column_names=self.names,
                ),
                parse_options=pacsv.ParseOptions(
                    newlines_in_values=True,
                    ignore_empty_lines=False,
                    invalid_row_handler=self._skip,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(self.names, pa.binary()),
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
            for batch in reader:
                piece = self._take(batch)
                if piece is not None:
                    yield piece
                if self.resume_at is not None:
                    return
        except pa.ArrowException:
            # Its message quotes the row: never passed on. Whatever it was, the slow reader
            # reads from the first line not yet taken and says what is wrong with it.
            self.resume_at = self.next_record + self.breaks_before
            return
        piece = self._take(None)
        if piece is not None:
            yield piece

    def _take(self, batch: pa.RecordBatch | None) -> Piece | None:
        """Number the batch's rows and the rows skipped among them (None: the skipped rows
        left at the end of the file)."""
        if any(record is None for record, _, _ in self.skipped):
            self.resume_at = self.next_record + self.breaks_before
            return None
        pending = sorted(s for s in self.skipped if s[0] >= self.next_record)
        count = batch.num_rows if batch is not None else 0
        candidates = np.arange(self.next_record, self.next_record + count + len(pending))
        skipped_records = np.array([s[0] for s in pending], dtype=np.int64)
        good = np.setdiff1d(candidates, skipped_records, assume_unique=True)[:count]
        if count:
            last = int(good[-1])
        elif pending:
            last = pending[-1][0]
        else:
            return None
        here = [s for s in pending if s[0] <= last]
        spanning = [s[0] for s in here if s[2] > 0]
        cut = spanning[0] if spanning else last + 1  # the first record not taken
        keep = good < cut
        here = [s for s in here if s[0] < cut]
        extra = np.zeros(cut - self.next_record, dtype=np.int64)
        taken = good[keep]
        if batch is not None and keep.any():
            batch = batch.filter(pa.array(keep)) if not keep.all() else batch
            extra[taken - self.next_record] = _breaks(batch)
        for record, _, breaks in here:
            extra[record - self.next_record] = breaks
        before = self.breaks_before + np.cumsum(extra) - extra
        lines = taken + before[taken - self.next_record]
        rejects = _field_count(
            [int(r + before[r - self.next_record]) for r, _, _ in here],
            [fields for _, fields, _ in here],
            len(self.names),
        )
        self.breaks_before += int(extra.sum())
        self.next_record = cut
        self.skipped = [s for s in self.skipped if s[0] >= cut]
        if spanning:
            self.resume_at = self.next_record + self.breaks_before
        if not taken.size:
            return pl.DataFrame(
                schema={**dict.fromkeys(self.header, pl.String), ROW: pl.Int64}
            ), rejects
        frame, not_utf8 = self._decoded(batch, lines)
        if not_utf8.any():
            rows = frame.filter(pl.Series(not_utf8))[ROW].to_list()
            bad = rejects_frame(
                rows, [Reason.NOT_UTF8] * len(rows), [message(Reason.NOT_UTF8)] * len(rows)
            )
            rejects = pl.concat([rejects, bad])
            frame = frame.filter(~pl.Series(not_utf8))
        return frame, rejects

    def _decoded(self, batch: pa.RecordBatch, lines: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
        """The batch as text, and which of its rows are not UTF-8."""
        bad = np.zeros(batch.num_rows, dtype=bool)
        columns = []
        for column in batch.columns:
            try:
                columns.append(pc.cast(column, pa.string()))
            except pa.ArrowInvalid:  # rare: find the rows, in Python
                values = column.to_pylist()
                wrong = [v is not None and not _utf8(v) for v in values]
                bad |= np.array(wrong)
                kept = [None if w else v for v, w in zip(values, wrong, strict=True)]
                columns.append(pc.cast(pa.array(kept, pa.binary()), pa.string()))
        table = pa.table(columns, names=self.header).append_column(ROW, pa.array(lines, pa.int64()))
        return pl.from_arrow(table), bad


def _utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _breaks(batch: pa.RecordBatch) -> np.ndarray:
    """Line breaks inside each row's quoted fields (\\n, \\r\\n or \\r, as editors count)."""
    total = np.zeros(batch.num_rows, dtype=np.int64)
    for column in batch.columns:
        newlines = pc.count_substring(column, "\n").fill_null(0).to_numpy()
        returns = pc.count_substring(column, "\r").fill_null(0).to_numpy()
        total += newlines
        if returns.any():
            total += returns - pc.count_substring(column, "\r\n").fill_null(0).to_numpy()
    return total


# --- the slow path --------------------------------------------------------------------------


class _RecordTooLong(Exception):
    pass


def _records(source: Iterator[str], line: int, width: int) -> Iterable[tuple]:
    """(line, fields, None) for each record that fits the header, (line, None, reason,
    fields found) for each that does not; blank lines are skipped."""
    again: deque[str] = deque()

    def feed(taken: list[str]) -> Iterator[str]:
        size = 0
        while True:
            text = again.popleft() if again else next(source, None)
            if text is None:
                return
            taken.append(text)
            size += len(text)
            if size > _MAX_RECORD_CHARS:
                raise _RecordTooLong
            yield text

    while True:
        taken: list[str] = []
        try:
            fields = next(csv.reader(feed(taken)))
        except StopIteration:
            return
        except (csv.Error, _RecordTooLong):
            fields = None
        spans = len(taken)
        if fields is not None and (len(fields) == width or not fields):
            if fields:
                yield line, fields, None, 0
            line += spans
            continue
        if spans > 1:  # the first line opened a quote the record did not close in time
            yield line, None, Reason.OPEN_QUOTE, 0
            again.extendleft(reversed(taken[1:]))
        elif fields is None:
            yield line, None, Reason.TOO_LONG, 0
        else:
            yield line, None, Reason.FIELD_COUNT, len(fields)
        line += 1


def _slow_pieces(path: Path, header: list[str], start_line: int) -> Iterator[Piece]:
    width = len(header)
    rows: list[list[str | None]] = []
    lines: list[int] = []
    rejected: list[tuple[int, Reason, str]] = []

    def piece() -> Piece:
        columns = list(zip(*rows, strict=True)) if rows else [()] * width
        frame = pl.DataFrame(
            {name: list(values) for name, values in zip(header, columns, strict=True)},
            schema=dict.fromkeys(header, pl.String),
        ).with_columns(pl.Series(ROW, lines, dtype=pl.Int64))
        found = rejects_frame(*map(list, zip(*rejected, strict=True))) if rejected else None
        return frame, found if found is not None else rejects_frame([], [], [])

    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        source = iter(handle)
        for _ in range(start_line - 1):
            next(source, None)
        for line, fields, reason, found in _records(source, start_line, width):
            if fields is not None and _not_utf8("".join(fields)):
                reason = Reason.NOT_UTF8
            if reason is None:
                rows.append([value or None for value in fields])
                lines.append(line)
            elif reason is Reason.FIELD_COUNT:
                rejected.append((line, reason, message(reason, found=found, expected=width)))
            elif reason is Reason.TOO_LONG:
                rejected.append((line, reason, message(reason, limit=MAX_FIELD_CHARS)))
            else:
                rejected.append((line, reason, message(reason)))
            if len(rows) + len(rejected) >= _SLOW_PIECE_ROWS:
                yield piece()
                rows, lines, rejected = [], [], []
    yield piece()


_previous_hook = sys.unraisablehook


def _quiet_handler_errors(unraisable) -> None:
    """pyarrow decodes a skipped row's text before calling the handler; when the row is not
    UTF-8 that fails, is reported as 'unraisable' (a traceback on stderr) and then raised as
    a parse error, which the slow path takes over. The traceback is not for the terminal."""
    if getattr(unraisable.object, "__func__", None) is _FastReader._skip:
        return
    _previous_hook(unraisable)


def _keep_handler_errors_quiet() -> None:
    global _previous_hook
    if sys.unraisablehook is not _quiet_handler_errors:
        _previous_hook, sys.unraisablehook = sys.unraisablehook, _quiet_handler_errors
