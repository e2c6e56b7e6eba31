"""The providers paid by file rather than by bank: mobile-money operators (a bulk disbursement
file, CSV or JSON), prepaid-card issuers (a card-load CSV) and cash agents (a pay-list, in
`paylist.py`). Each writes its files whole or not at all and checks them again from the
files alone (`batch_files.py`), and reads the result CSV its provider sends back
(`result_files.py`).

The JSON file is written one payment a line (the header's object, then one element of the
`payments` array per line), so a million payments are written and checked line by line,
never held in memory, and the file stays one JSON document any parser reads:

    {"batch": {"batch": "SIJ-...", "provider": "mobile_money", ..., "total": "75.500"},
     "payments": [          <- the header's line, broken here only to fit this page
    {"reference": "T000001", "msisdn": "+962791234567", "holder": "...", "amount": "50.000"},
    {"reference": "T000002", "msisdn": "+962791234568", "holder": "...", "amount": "25.500"}
    ]}
"""

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import ClassVar

import orjson

from sijill.core.errors import InvalidInput
from sijill.core.settings import Settings
from sijill.identity.phones import E164
from sijill.payments.amounts import format_minor
from sijill.payments.batch_files import (
    BATCH_COLUMNS,
    LineCheck,
    Tally,
    batch_fields,
    checked_amount,
    detail,
    parse_header,
    prepare_folder,
    read_batch_csv,
    refuse_unfinished,
    whole_file,
    write_batch_csv,
)
from sijill.payments.paylist import CashAgent
from sijill.payments.providers import (
    FAILED,
    PAID,
    RETURNED,
    BatchHeader,
    PaymentLine,
    ReportHeader,
    ResultLine,
    register,
)
from sijill.payments.result_files import read_results, references_of, write_answer

__all__ = ["CashAgent", "MobileMoney", "PrepaidCard"]

_E164_RE = re.compile(E164)
_CARD_RE = re.compile(r"[0-9]{12,19}")  # ISO/IEC 7812: a card number has 12 to 19 digits
_OPERATOR_STATUSES: dict[str, str | None] = {
    "success": PAID,
    "failed": FAILED,
    "reversed": RETURNED,
    "pending": None,
}


def _phone(line: PaymentLine, number: int) -> str:
    phone = detail(line, number, "phone")
    if not _E164_RE.fullmatch(phone):
        raise InvalidInput(f"payment line {number}: the wallet's phone is not in E.164 form")
    return phone


def _card(line: PaymentLine, number: int) -> str:
    card = detail(line, number, "card_number")
    if not _CARD_RE.fullmatch(card):
        raise InvalidInput(f"payment line {number}: the card number is not 12 to 19 digits")
    return card


def _masked(card: str) -> str:
    return "*" * (len(card) - 4) + card[-4:]


@register
class MobileMoney:
    """A bulk disbursement file for a mobile-money operator: `mobile-money.csv` or
    `mobile-money.json` (setting `mobile_money_format`)."""

    name: ClassVar[str] = "mobile_money"
    kinds: ClassVar[tuple[str, ...]] = ("wallet",)
    COLUMNS = ("reference", "msisdn", "holder")
    STEM = "mobile-money"
    FAILURES = ("INVALID_MSISDN", "WALLET_NOT_FOUND", "WALLET_LIMIT_EXCEEDED", "WALLET_BLOCKED")

    def __init__(self, settings: Settings):
        self.format = settings.mobile_money_format

    def write(self, header: BatchHeader, lines: Iterable[PaymentLine], folder: Path) -> list[str]:
        prepare_folder(folder)
        path = folder / f"{self.STEM}.{self.format}"
        rows = (
            (
                [line.transfer_ref, _phone(line, n), detail(line, n, "holder")],
                checked_amount(line, n),
            )
            for n, line in enumerate(lines, start=1)
        )
        if self.format == "json":
            _write_json(path, header, self.name, rows)
        else:
            write_batch_csv(path, header, self.name, self.COLUMNS, rows)
        self.validate(folder)
        return [path.name]

    def _file(self, folder: Path) -> Path:
        refuse_unfinished(folder)
        found = [folder / f"{self.STEM}.{kind}" for kind in ("csv", "json")]
        found = [path for path in found if path.is_file()]
        if len(found) != 1:
            raise InvalidInput(f"{folder.name}: not one mobile-money file (found {len(found)})")
        return found[0]

    def _rows(self, path: Path):
        if path.suffix == ".json":
            return _read_json(path, self.name, self.COLUMNS)
        return read_batch_csv(path, self.name, self.COLUMNS)

    def validate(self, folder: Path) -> None:
        path = self._file(folder)
        header, rows = self._rows(path)
        check = LineCheck(path.name, header)
        for line, values in rows:
            check.line(line, values["reference"], values["amount"])
            if not _E164_RE.fullmatch(values["msisdn"]) or not values["holder"]:
                raise InvalidInput(f"{path.name}: line {line}: no holder or no E.164 phone")
        check.end()

    def read_report(self, path: Path) -> tuple[ReportHeader, Iterator[ResultLine]]:
        return read_results(path, _OPERATOR_STATUSES)

    def answer(self, folder: Path, out: Path, *, fail_one_in: int, seed: int) -> Path:
        _header, rows = self._rows(self._file(folder))
        return write_answer(
            out, references_of(rows), paid="success", unpaid="failed", reasons=self.FAILURES,
            fail_one_in=fail_one_in, seed=seed,
        )  # fmt: skip


@register
class PrepaidCard:
    """A card-load CSV for a prepaid-card issuer, `card-load.csv`: the full card number the
    issuer loads, and its last four digits for the people who check the file by eye."""

    name: ClassVar[str] = "card"
    kinds: ClassVar[tuple[str, ...]] = ("card",)
    COLUMNS = ("reference", "card_masked", "card_number", "holder")
    FILE = "card-load.csv"
    FAILURES = ("CARD_BLOCKED", "CARD_NOT_ACTIVATED", "CARD_EXPIRED", "LOAD_LIMIT_EXCEEDED")

    def __init__(self, settings: Settings):
        self.settings = settings

    def write(self, header: BatchHeader, lines: Iterable[PaymentLine], folder: Path) -> list[str]:
        prepare_folder(folder)

        def rows() -> Iterator[tuple[list[str], int]]:
            for n, line in enumerate(lines, start=1):
                card = _card(line, n)
                holder = detail(line, n, "holder")
                yield [line.transfer_ref, _masked(card), card, holder], checked_amount(line, n)

        write_batch_csv(folder / self.FILE, header, self.name, self.COLUMNS, rows())
        self.validate(folder)
        return [self.FILE]

    def validate(self, folder: Path) -> None:
        refuse_unfinished(folder)
        path = folder / self.FILE
        header, rows = read_batch_csv(path, self.name, self.COLUMNS)
        check = LineCheck(path.name, header)
        for line, values in rows:
            check.line(line, values["reference"], values["amount"])
            card = values["card_number"]
            if not _CARD_RE.fullmatch(card) or values["card_masked"] != _masked(card):
                raise InvalidInput(f"{path.name}: line {line}: the card number is wrong")
            if not values["holder"]:
                raise InvalidInput(f"{path.name}: line {line}: no holder")
        check.end()

    def read_report(self, path: Path) -> tuple[ReportHeader, Iterator[ResultLine]]:
        return read_results(path, _OPERATOR_STATUSES)

    def answer(self, folder: Path, out: Path, *, fail_one_in: int, seed: int) -> Path:
        _header, rows = read_batch_csv(folder / self.FILE, self.name, self.COLUMNS)
        return write_answer(
            out, references_of(rows), paid="success", unpaid="failed", reasons=self.FAILURES,
            fail_one_in=fail_one_in, seed=seed,
        )  # fmt: skip


# --- the JSON bulk file ------------------------------------------------------------------------


def _write_json(
    path: Path, header: BatchHeader, provider: str, rows: Iterable[tuple[list[str], int]]
) -> None:
    """The JSON document, one payment a line; every payment line but the last ends with a
    comma, so each is written once the next one is known to exist."""
    batch = dict(zip(BATCH_COLUMNS, batch_fields(header, provider), strict=True))
    with whole_file(path, binary=True) as handle:
        handle.write(b'{"batch": ' + orjson.dumps(batch) + b', "payments": [\n')
        tally = Tally(header)
        pending = None
        for (reference, msisdn, holder), amount in rows:
            tally.add(amount)
            element = orjson.dumps(
                {
                    "reference": reference,
                    "msisdn": msisdn,
                    "holder": holder,
                    "amount": format_minor(amount, header.minor_units),
                }
            )
            if pending is not None:
                handle.write(pending + b",\n")
            pending = element
        if pending is not None:
            handle.write(pending + b"\n")
        handle.write(b"]}\n")
        tally.check()


def _read_json(path: Path, provider: str, columns: tuple[str, ...]):
    """The header and the payments of a JSON bulk file, line by line, each line's shape
    checked: together the lines are the one JSON document `_write_json` writes."""
    name = path.name
    handle = path.open("rb")
    first = handle.readline()
    start, end = b'{"batch": ', b', "payments": [\n'
    try:
        if not (first.startswith(start) and first.endswith(end)):
            raise ValueError
        batch = orjson.loads(first[len(start) : -len(end)])
        if not isinstance(batch, dict) or list(batch) != list(BATCH_COLUMNS):
            raise ValueError
    except (ValueError, orjson.JSONDecodeError):
        handle.close()
        raise InvalidInput(f"{name}: line 1 is not a batch header") from None
    header = parse_header(name, batch, provider)
    keys = [*columns, "amount"]

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with handle:
            line, closed, last_had_comma = 1, False, True
            for text in handle:
                line += 1
                if closed:
                    raise InvalidInput(f"{name}: line {line}: text after the end of the document")
                if text == b"]}\n":
                    if line > 2 and last_had_comma:
                        raise InvalidInput(f"{name}: line {line - 1}: a comma before the end")
                    closed = True
                    continue
                if not last_had_comma:
                    raise InvalidInput(f"{name}: line {line - 1}: no comma after the payment")
                body = text.rstrip(b"\n")
                last_had_comma = body.endswith(b",")
                try:
                    values = orjson.loads(body[:-1] if last_had_comma else body)
                except orjson.JSONDecodeError:
                    values = None
                if (
                    not isinstance(values, dict)
                    or list(values) != keys
                    or not all(isinstance(v, str) for v in values.values())
                ):
                    raise InvalidInput(f"{name}: line {line}: not a payment of this file")
                yield line, values
            if not closed:
                raise InvalidInput(f"{name}: the file ends before its last line")

    return header, rows()
