"""What the file-based providers (mobile money, cash agents, prepaid cards) share: files
written whole or not at all, and the batch CSV with its header block (the result CSVs they
answer with, and the sandbox's answers, are in `result_files.py`).

A batch CSV opens with its own header block, so it can be checked without the database:

    batch,provider,currency,value_date,payments,total,remittance
    SIJ-2026-11-0001,mobile_money,JOD,2026-11-05,2,75.500,SIJILL 2026-11
    reference,msisdn,holder,amount
    T000001,+962791234567,<holder>,50.000
    T000002,+962791234568,<holder>,25.500

Every amount is written with exactly the currency's decimals, so the total's decimals say how
many minor units the file counts in. Messages about a file name its line, never its values:
they are people's names, phones and card numbers.
"""

import csv
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO

import polars as pl

from sijill.core.errors import InvalidInput
from sijill.payments.amounts import format_minor, parse_minor
from sijill.payments.providers import BatchHeader, PaymentLine

PART = ".part"
BATCH_COLUMNS = ("batch", "provider", "currency", "value_date", "payments", "total", "remittance")
_REFERENCE_CHUNK = 100_000


# --- whole or not at all -----------------------------------------------------------------------


@contextmanager
def whole_file(path: Path, binary: bool = False) -> Iterator[IO]:
    """Write `path` as `<name>.part`, flushed to disk, then renamed into place: a process killed
    on the way leaves at most a `.part` file, never a half file under the final name."""
    part = path.with_name(path.name + PART)
    descriptor = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if binary:
            handle = os.fdopen(descriptor, "wb")
        else:
            handle = os.fdopen(descriptor, "w", encoding="utf-8", newline="")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    # The rename is durable once the folder's entry is on disk too.
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def prepare_folder(folder: Path) -> None:
    """The batch's folder, created owner-only; `.part` files a killed writer left are removed
    (a re-run writes them again)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for leftover in folder.glob(f"*{PART}"):
        leftover.unlink()


def refuse_unfinished(folder: Path) -> None:
    if not folder.is_dir():
        raise InvalidInput(f"the batch's files are missing ({folder.name})")
    if any(folder.glob(f"*{PART}")):
        raise InvalidInput(f"{folder.name}: a file was left half written; write the batch again")


# --- the lines of a batch ----------------------------------------------------------------------


def detail(line: PaymentLine, number: int, key: str) -> str:
    """One of the instrument's details, refused (by line number) when missing or blank."""
    value = line.details.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"payment line {number}: the instrument has no {key}")
    return value


def checked_amount(line: PaymentLine, number: int) -> int:
    amount = line.amount_minor
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidInput(f"payment line {number}: an amount is integer minor units")
    if amount <= 0:
        raise InvalidInput(f"payment line {number}: an amount must be more than zero")
    return amount


def batch_fields(header: BatchHeader, provider: str) -> list[str]:
    return [
        header.reference,
        provider,
        header.currency,
        header.value_date.isoformat(),
        str(header.payments),
        format_minor(header.total_minor, header.minor_units),
        header.remittance,
    ]


class Tally:
    """Count and total of the lines written, held against the batch's header at the end."""

    def __init__(self, header: BatchHeader):
        self.header, self.count, self.total = header, 0, 0

    def add(self, amount_minor: int) -> None:
        self.count += 1
        self.total += amount_minor

    def check(self) -> None:
        if (self.count, self.total) != (self.header.payments, self.header.total_minor):
            units = self.header.minor_units
            raise InvalidInput(
                f"batch {self.header.reference}: its lines are {self.count} payments for "
                f"{format_minor(self.total, units)}, its header says {self.header.payments} "
                f"for {format_minor(self.header.total_minor, units)}"
            )


def write_batch_csv(
    path: Path,
    header: BatchHeader,
    provider: str,
    columns: Iterable[str],
    rows: Iterable[tuple[list[str], int]],
) -> None:
    """The batch CSV: its header block, then one row per (fields, amount in minor units), the
    amount written last. Refused, and nothing left, if the lines do not match the header."""
    tally = Tally(header)
    with whole_file(path) as handle:
        writer = csv.writer(handle)
        writer.writerow(BATCH_COLUMNS)
        writer.writerow(batch_fields(header, provider))
        writer.writerow([*columns, "amount"])
        for fields, amount in rows:
            tally.add(amount)
            writer.writerow([*fields, format_minor(amount, header.minor_units)])
        tally.check()


@dataclass(frozen=True)
class FileHeader:
    """The header block of a batch file, as read back and checked."""

    reference: str
    provider: str
    currency: str
    value_date: date
    payments: int
    total_minor: int
    minor_units: int
    remittance: str


def parse_header(name: str, values: dict[str, object], provider: str) -> FileHeader:
    """The header's values checked one by one: a wrong one is named, never quoted."""

    def text(key: str) -> str:
        value = values.get(key)
        if not isinstance(value, str):
            raise InvalidInput(f"{name}: the header has no {key}")
        return value

    reference, currency, total = text("batch"), text("currency"), text("total")
    if not reference or len(reference) > 35:
        raise InvalidInput(f"{name}: the header's batch reference is empty or too long")
    if text("provider") != provider:
        raise InvalidInput(f"{name}: the file is not a {provider} batch")
    if len(currency) != 3 or not currency.isascii() or not currency.isupper():
        raise InvalidInput(f"{name}: the header's currency is not an ISO 4217 code")
    try:
        value_date = date.fromisoformat(text("value_date"))
        payments = int(text("payments"))
        minor_units = len(total.partition(".")[2])
        total_minor = parse_minor(total, minor_units)
    except ValueError:
        raise InvalidInput(f"{name}: the header's value date, count or total is wrong") from None
    if payments < 0 or total_minor < 0 or format_minor(total_minor, minor_units) != total:
        raise InvalidInput(f"{name}: the header's count or total is wrong")
    return FileHeader(
        reference, provider, currency, value_date, payments, total_minor, minor_units,
        text("remittance"),
    )  # fmt: skip


class LineCheck:
    """What every batch file's lines must hold to their header: references unique, amounts
    positive and written with the currency's decimals, count and total as the header says."""

    def __init__(self, name: str, header: FileHeader):
        self.name, self.header = name, header
        # References kept as Arrow columns, a few bytes each: a million fit in tens of MB,
        # where a set of Python strings would take ten times more.
        self.pending: tuple[list[str], list[int]] = ([], [])
        self.kept: list[pl.DataFrame] = []
        self.count = self.total = 0

    def line(self, line: int, reference: str, amount: str) -> None:
        if not reference:
            raise InvalidInput(f"{self.name}: line {line}: no reference")
        references, lines = self.pending
        references.append(reference)
        lines.append(line)
        if len(lines) >= _REFERENCE_CHUNK:
            self._keep()
        try:
            value = parse_minor(amount, self.header.minor_units)
        except ValueError:
            value = -1
        if value <= 0 or format_minor(value, self.header.minor_units) != amount:
            raise InvalidInput(f"{self.name}: line {line}: the amount is not a payable amount")
        self.count += 1
        self.total += value

    def _keep(self) -> None:
        references, lines = self.pending
        self.kept.append(pl.DataFrame({"reference": references, "line": lines}))
        self.pending = ([], [])

    def end(self) -> None:
        header = self.header
        self._keep()
        seen = pl.concat(self.kept)
        repeated = seen.filter(~pl.col("reference").is_first_distinct())["line"]
        if repeated.len():
            raise InvalidInput(f"{self.name}: line {repeated.min()}: the reference is repeated")
        if self.count != header.payments:
            raise InvalidInput(
                f"{self.name}: {self.count} payment lines, the header says {header.payments}"
            )
        if self.total != header.total_minor:
            units = header.minor_units
            raise InvalidInput(
                f"{self.name}: the lines add up to {format_minor(self.total, units)}, the "
                f"header says {format_minor(header.total_minor, units)}"
            )


def read_batch_csv(
    path: Path, provider: str, columns: tuple[str, ...]
) -> tuple[FileHeader, Iterator[tuple[int, dict[str, str]]]]:
    """The header block of a batch CSV, and its rows (line number, values by column) as they
    are read: the caller checks each row, then calls `LineCheck.end`."""
    name = path.name
    if not path.is_file():
        raise InvalidInput(f"the batch file {name} is missing")
    handle = path.open(encoding="utf-8", newline="")
    reader = csv.reader(handle)
    try:
        first, values, names = next(reader), next(reader), next(reader)
    except (StopIteration, csv.Error, UnicodeDecodeError):
        handle.close()
        raise InvalidInput(f"{name}: the header block is missing or unreadable") from None
    if tuple(first) != BATCH_COLUMNS or len(values) != len(BATCH_COLUMNS):
        handle.close()
        raise InvalidInput(f"{name}: the first two lines are not a batch header")
    if tuple(names) != (*columns, "amount"):
        handle.close()
        raise InvalidInput(f"{name}: line 3 does not name the columns {', '.join(columns)}")
    header = parse_header(name, dict(zip(BATCH_COLUMNS, values, strict=True)), provider)
    width = len(columns) + 1

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with handle:
            line = reader.line_num + 1
            try:
                for fields in reader:
                    if len(fields) != width:
                        raise InvalidInput(
                            f"{name}: line {line}: {len(fields)} fields, not {width}"
                        )
                    yield line, dict(zip(names, fields, strict=True))
                    line = reader.line_num + 1
            except (csv.Error, UnicodeDecodeError):
                raise InvalidInput(f"{name}: line {line} cannot be read as CSV") from None

    return header, rows()
