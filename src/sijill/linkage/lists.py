"""An outside list (`sijill link`): another agency's file of persons, read and checked.

The file is read by `core.files.read_table` (CSV, XLSX or Parquet, each row with its line),
mapped by the import's mapping files (`registry.bulk.mapping`, with the list's own columns
added: `LIST_COLUMNS`), and each line checked as the import checks a person
(`registry.bulk.validate.check_persons`: names, sex, dates, document numbers by the country's
scheme), then by its kind's columns. A line that fails is a reject with its line and reasons,
never its content; the others become matching input (`linkage.features.INPUT_COLUMNS`) whose
`unique_id` is minus the line, so that a pair's smaller ID is always the list's side.

National ID numbers enter matching as their blind index only (`keyring.blind_index_many` over
the normalised number, as `registry.identifiers.write_batch` stores them): an exact comparison
with the registry's index, and no registry number is ever decrypted.
"""

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl

from sijill.core.errors import InvalidInput
from sijill.core.files import ROW, UnreadableFile, read_table
from sijill.identity.national_id import Scheme
from sijill.identity.text import RULES, TextKind, checked_text_column
from sijill.linkage.features import NAME_PARTS
from sijill.registry.bulk.dates import parse_dates
from sijill.registry.bulk.mapping import Mapping, apply_mapping, load_mapping
from sijill.registry.bulk.validate import Context, check_persons
from sijill.registry.fields import HOUSEHOLD_KEY, PERSON_KEY
from sijill.security.keys.keyring import current_keyring

# A list's own columns per kind, each saying whether it reads local digits as numbers.
LIST_COLUMNS: dict[str, dict[str, bool]] = {
    "civil": {"death_date": True},
    "payroll": {"employer": False, "monthly_salary": True},
    "tax": {"tax_year": True, "taxable_income": True},
    "beneficiaries": {"program": False, "amount": True},
}
LIST_KINDS = tuple(LIST_COLUMNS)
_REQUIRED = {
    "civil": ("death_date",),
    "payroll": (),
    "tax": ("tax_year", "taxable_income"),
    "beneficiaries": ("program",),
}
_AMOUNTS = ("monthly_salary", "taxable_income", "amount")
_TEXTS = ("employer", "program")
_TEXT_MAX = 200
# Digits, and a point before at most three decimals (dinars have fils): never a float.
AMOUNT_PATTERN = r"^\d{1,15}(\.\d{1,3})?$"
_NAMES = [f"{part}_name_{script}" for part in NAME_PARTS for script in ("ar", "lat")]
_BATCH_ROWS = 50_000
REPORT = {"row": pl.Int64, "reason": pl.String}


@dataclass
class ListLines:
    lines: int  # lines read (every row the file holds, rejected or not)
    persons: pl.DataFrame  # the readable lines: matching input, `_row`, the kind's columns
    rejects: pl.DataFrame  # row, reason: one per rejected line, its reasons joined


def read_list(
    path: Path,
    kind: str,
    *,
    mapping_path: Path | None,
    scheme: Scheme,
    today: dt.date,
) -> ListLines:
    if kind not in LIST_COLUMNS:
        raise InvalidInput(f"--kind must be one of {', '.join(LIST_KINDS)}: got {kind!r}")
    own = LIST_COLUMNS[kind]
    mapping = load_mapping(mapping_path, extra=own) if mapping_path else Mapping()
    ctx = Context(areas={}, scheme=scheme, date_order=mapping.date_order, today=today)
    persons, rejects, lines = [], [], 0
    for batch in read_table(path, _BATCH_ROWS, sheet=mapping.sheet):
        unreadable = batch.rejects.select("row", pl.col("message").alias("reason"))
        rejects.append(unreadable.cast(REPORT))
        lines += batch.rows.height + unreadable.height
        if batch.rows.height == 0:
            continue
        frame = apply_mapping(batch.rows, mapping, extra=own)
        if not persons:
            _check_header(path, frame, kind)
        good, bad = _check(frame, kind, ctx)
        persons.append(good)
        rejects.append(bad)
    if lines == 0:
        raise UnreadableFile(path, "the file has no rows")
    if not persons:  # every line unreadable: the header was never seen
        persons.append(pl.DataFrame())
    found = pl.concat(rejects).sort("row") if rejects else pl.DataFrame(schema=REPORT)
    good = pl.concat(persons, how="diagonal_relaxed") if persons[0].width else pl.DataFrame()
    return ListLines(lines, _matching_input(good, kind), found)


def _check_header(path: Path, frame: pl.DataFrame, kind: str) -> None:
    """One line for a list that cannot be linked at all: no name, or not its kind's columns."""
    missing = [c for c in _REQUIRED[kind] if c not in frame.columns]
    if not any(name in frame.columns for name in _NAMES):
        missing.insert(0, "a name (given_name_ar, given_name_lat ...)")
    if missing:
        raise UnreadableFile(
            path,
            f"no column for {', '.join(missing)}: name it so in the file or map one of your "
            "columns to it with --mapping",
        )


def _check(frame: pl.DataFrame, kind: str, ctx: Context) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(readable lines, typed; rejects: row and reasons) of one batch."""
    # A list's line is a person alone: it is its own record and household for the checks.
    frame = frame.with_columns(
        pl.col(ROW).cast(pl.String).alias(PERSON_KEY),
        pl.lit("list").alias(HOUSEHOLD_KEY),
        pl.lit("head").alias("relationship"),
    )
    checked, person_rejects = check_persons(frame, ctx)
    own, reasons = _own_columns(frame, kind, ctx)
    reasons.append(
        person_rejects.select(
            "row", pl.format("{}: {}", pl.col("field"), pl.col("message")).alias("reason")
        )
    )
    found = (
        pl.concat([r.cast(REPORT) for r in reasons])
        .group_by("row", maintain_order=True)
        .agg(pl.col("reason").unique(maintain_order=True).str.join("; "))
        .sort("row")
    )
    good = checked.join(own, on=ROW, how="left").join(
        found, left_on=ROW, right_on="row", how="anti"
    )
    return good, found


def _own_columns(
    frame: pl.DataFrame, kind: str, ctx: Context
) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """The kind's columns typed (amounts as exact text, read as Decimal when written), and
    their reject reasons."""
    names = list(LIST_COLUMNS[kind])
    frame = frame.with_columns(
        pl.lit(None, dtype=pl.String).alias(n) for n in names if n not in frame.columns
    )
    out = [pl.col(ROW)]
    reasons: list[pl.DataFrame] = []

    def reject(bad: pl.Expr, message: str | pl.Expr) -> None:
        reason = pl.lit(message) if isinstance(message, str) else message
        lines = frame.filter(bad.fill_null(False))
        reasons.append(lines.select(pl.col(ROW).alias("row"), reason.alias("reason")))

    for name in _REQUIRED[kind]:
        reject(pl.col(name).is_null(), f"{name}: is empty")
    for name in names:
        column = pl.col(name)
        if name == "death_date":
            parsed = parse_dates(frame, name, ctx.date_order, False, ctx.today)
            frame = frame.with_columns(parsed)
            error = pl.col(f"{name}__error")
            reject(error.is_not_null(), pl.format("death_date: {}", error))
            out.append(pl.col(f"{name}__date").alias(name))
        elif name == "tax_year":
            year = column.str.to_integer(strict=False)
            reject(
                column.is_not_null() & ~year.is_between(1900, ctx.today.year).fill_null(False),
                f"tax_year: is not a year from 1900 to {ctx.today.year}",
            )
            out.append(year.alias(name))
        elif name in _AMOUNTS:
            reject(
                column.is_not_null() & ~column.str.contains(AMOUNT_PATTERN),
                f"{name}: is not an amount (digits, a point and at most 3 decimals)",
            )
            out.append(column)
        else:  # free text: the import's rule of characters
            written, refused = checked_text_column(frame, name, TextKind.TEXT)
            reject(
                refused,
                f"{name}: holds a character that is not allowed here "
                f"(allowed: {RULES[TextKind.TEXT].allowed})",
            )
            reject(written.str.len_chars() > _TEXT_MAX, f"{name}: is longer than {_TEXT_MAX}")
            out.append(written.alias(name))
    return frame.select(out), reasons


def _matching_input(good: pl.DataFrame, kind: str) -> pl.DataFrame:
    """The readable lines as matching input: `unique_id` is minus the line, national IDs as
    their blind index (of the national scheme's numbers only, as `linkage.extract` reads the
    registry's)."""
    own = list(LIST_COLUMNS[kind])
    columns = [*_NAMES, "sex", "birth_date", "birth_date_precision"]
    if good.height == 0:
        return pl.DataFrame(
            schema={
                "unique_id": pl.Int64,
                ROW: pl.Int64,
                **dict.fromkeys(columns, pl.String),
                "national_id_index": pl.String,
                **dict.fromkeys(own, pl.String),
            }
        ).with_columns(pl.col("birth_date").cast(pl.Date))
    national = good["national_id"].zip_with(
        (good["national_id_type"] == "national_id").fill_null(False),
        pl.Series([None] * good.height, dtype=pl.String),
    )
    index = current_keyring().blind_index_many(national.to_list())
    return good.select(
        (-pl.col(ROW)).cast(pl.Int64).alias("unique_id"),
        pl.col(ROW).cast(pl.Int64),
        *columns,
        pl.Series("national_id_index", index, dtype=pl.String),
        *own,
    )


def amount(text: str | None) -> Decimal | None:
    """A checked amount (`AMOUNT_PATTERN`) as the exact decimal it says."""
    if text is None:
        return None
    if not re.fullmatch(AMOUNT_PATTERN, text):
        raise ValueError("not a checked amount")
    return Decimal(text)
