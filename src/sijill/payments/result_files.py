"""The result CSV the file-based providers answer with (`reference,status,reason`), and the
sandbox's answer: what an operator, an issuer or the cash agents would send back for a batch.

Messages about a result file name its line, never its values, except an unknown status word.
"""

import csv
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl

from sijill.core.errors import InvalidInput
from sijill.core.files import ROW, read_table
from sijill.core.outgoing import for_terminal
from sijill.payments.batch_files import whole_file
from sijill.payments.providers import ReportHeader, ResultLine

RESULT_COLUMNS = ("reference", "status", "reason")
_RESULT_BATCH = 100_000
_SHOWN_STATUS = 24  # characters of an unknown status word quoted back


# --- reading --------------------------------------------------------------------------------------


def read_results(
    path: Path, statuses: dict[str, str | None]
) -> tuple[ReportHeader, Iterator[ResultLine]]:
    """A result CSV (`reference,status,reason`), refused as a whole, before any of its lines is
    used, when a column is missing, a line is malformed, a status unknown or a reference
    repeated. `statuses` maps each status word to its outcome (None: not final yet)."""
    references = []
    seen_rows = False
    for batch in read_table(path, _RESULT_BATCH):
        if batch.rejects.height:
            first = batch.rejects.row(0, named=True)
            raise InvalidInput(f"{path.name}: line {first['row']}: {first['message']}")
        missing = [c for c in RESULT_COLUMNS if c not in batch.rows.columns]
        if missing:
            raise InvalidInput(f"{path.name}: no column {', '.join(missing)}")
        if not batch.rows.height:
            continue
        seen_rows = True
        _check_statuses(path, batch.rows, statuses)
        references.append(batch.rows.select("reference", ROW))
    if not seen_rows:
        raise InvalidInput(f"{path.name}: the file has no result lines")
    _check_references(path, pl.concat(references))

    def lines() -> Iterator[ResultLine]:
        for batch in read_table(path, _RESULT_BATCH):
            for row in batch.rows.select("reference", "status", "reason", ROW).iter_rows():
                reference, status, reason, line = row
                status = (status or "").strip()
                if status.lower() not in statuses:
                    raise InvalidInput(f"{path.name}: the file changed while it was read")
                outcome = statuses[status.lower()]
                reason = reason.strip() if reason else None
                yield ResultLine(line, reference.strip(), outcome, status, reason or None)

    return ReportHeader(message_id=None), lines()


def _check_statuses(path: Path, rows: pl.DataFrame, statuses: dict[str, str | None]) -> None:
    words = pl.col("status").str.strip_chars().str.to_lowercase()
    wrong = rows.filter(words.is_null() | ~words.is_in(list(statuses)))
    if wrong.height:
        line, status = wrong.row(0, named=True)[ROW], wrong.row(0, named=True)["status"]
        said = for_terminal((status or "").strip()[:_SHOWN_STATUS])
        raise InvalidInput(
            f"{path.name}: line {line}: status '{said}' is not one of {', '.join(statuses)}"
        )


def _check_references(path: Path, references: pl.DataFrame) -> None:
    trimmed = references.with_columns(pl.col("reference").str.strip_chars())
    empty = trimmed.filter(pl.col("reference").is_null() | (pl.col("reference") == ""))
    if empty.height:
        raise InvalidInput(f"{path.name}: line {empty[ROW][0]}: no reference")
    repeated = trimmed.filter(~pl.col("reference").is_first_distinct())
    if repeated.height:
        raise InvalidInput(
            f"{path.name}: line {repeated[ROW].min()}: a reference already answered above"
        )


# --- the sandbox ----------------------------------------------------------------------------------


def write_answer(
    out: Path,
    references: Iterable[str],
    *,
    paid: str,
    unpaid: str,
    reasons: tuple[str, ...],
    fail_one_in: int,
    seed: int,
) -> Path:
    """A result CSV answering every reference `paid`, except one in each run of `fail_one_in`
    (its place in the run drawn from `seed`) answered `unpaid` with one of `reasons`: the count
    is exact, the choice repeatable, and nothing but the current run is held in memory."""
    if fail_one_in < 0:
        raise InvalidInput("fail_one_in: 0 (none fail) or more")
    path = out / "result.csv" if out.is_dir() else out
    chance = random.Random(seed)
    chosen = chance.randrange(fail_one_in) if fail_one_in else -1
    with whole_file(path) as handle:
        writer = csv.writer(handle)
        writer.writerow(RESULT_COLUMNS)
        for index, reference in enumerate(references):
            place = index % fail_one_in if fail_one_in else 0
            if fail_one_in and place == 0 and index:
                chosen = chance.randrange(fail_one_in)
            if place == chosen:
                writer.writerow([reference, unpaid, chance.choice(reasons)])
            else:
                writer.writerow([reference, paid, ""])
    return path


def references_of(rows: Iterator[tuple[int, dict[str, str]]]) -> Iterator[str]:
    return (values["reference"] for _line, values in rows)
