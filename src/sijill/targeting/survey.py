"""A household budget survey, read and checked before a proxy means test is fitted on it.

The survey file (CSV, XLSX or Parquet, read by `core.files.read_table`) holds one row per
household: `household_key`, `consumption_pc` (consumption per person per year, local currency),
`weight` (the household's sampling weight) and `stratum`. Its keys point into the exchange-format
`households` and `persons` files of the same folder (docs/data-format.md), which say what the
feature view needs; `sijill synth` writes exactly this (`survey.parquet`).

Every problem is reported at once, each with the file, the column and the rows (never a value:
keys and amounts are personal data), because a survey with one bad row is not fitted at all: a
dropped row would silently change what the weights stand for.
"""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from sijill.core.errors import FieldError, InvalidInput
from sijill.core.files import ROW, TABLE_SUFFIXES, UnreadableFile, read_table
from sijill.identity.digits import ascii_number_column
from sijill.targeting import features
from sijill.targeting.exchange import from_exchange

KEY, CONSUMPTION, WEIGHT, STRATUM = "household_key", "consumption_pc", "weight", "stratum"
COLUMNS = (KEY, CONSUMPTION, WEIGHT, STRATUM)
_BATCH_ROWS = 100_000
_ROWS_SHOWN = 5


@dataclass(frozen=True)
class Survey:
    path: Path
    # household_id (the household_key), consumption_pc, weight, stratum, _row
    frame: pl.DataFrame
    households_file: Path
    persons_file: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def sum_of_weights(self) -> float:
        return float(self.frame[WEIGHT].sum())


def read_survey(path: Path) -> Survey:
    """The survey, checked: every column present, every number readable and in range, every key
    once and in the households file beside it. Raises `InvalidInput` listing every problem."""
    households_file = _beside(path, "households")
    persons_file = _beside(path, "persons")
    rows = _read(path)
    problems: list[FieldError] = []
    key = pl.col(KEY).str.strip_chars().replace("", None)
    stratum = pl.col(STRATUM).str.strip_chars().replace("", None)
    frame = rows.select(
        key.alias("household_id"),
        _number(CONSUMPTION).alias(CONSUMPTION),
        _number(WEIGHT).alias(WEIGHT),
        stratum.alias(STRATUM),
        ROW,
        key.is_null().alias("key_empty"),
        stratum.is_null().alias("stratum_empty"),
        *(_given(name).alias(f"{name}_given") for name in (CONSUMPTION, WEIGHT)),
    )
    checks = [
        (KEY, "is empty", pl.col("key_empty")),
        (CONSUMPTION, "is empty", ~pl.col(f"{CONSUMPTION}_given")),
        (CONSUMPTION, "is not a number", _unreadable(CONSUMPTION)),
        (CONSUMPTION, "is negative", pl.col(CONSUMPTION) < 0),
        (CONSUMPTION, "is zero (a model of its log needs it above zero)", pl.col(CONSUMPTION) == 0),
        (WEIGHT, "is empty", ~pl.col(f"{WEIGHT}_given")),
        (WEIGHT, "is not a number", _unreadable(WEIGHT)),
        (WEIGHT, "is not above zero", pl.col(WEIGHT) <= 0),
        (STRATUM, "is empty", pl.col("stratum_empty")),
    ]
    for column, problem, condition in checks:
        bad = frame.filter(condition.fill_null(False))[ROW]
        if bad.len():
            problems.append(_problem(column, problem, bad))
    repeated = frame.filter(~pl.col("key_empty") & pl.col("household_id").is_duplicated())[ROW]
    if repeated.len():
        problems.append(_problem(KEY, "holds a key another row also holds", repeated))
    known = _household_keys(households_file)
    missing = frame.filter(~pl.col("key_empty") & ~pl.col("household_id").is_in(known.implode()))
    if missing.height:
        problems.append(_problem(KEY, f"is not in {households_file.name}", missing[ROW]))
    if problems:
        _refuse(path, problems)
    survey = frame.select("household_id", CONSUMPTION, WEIGHT, STRATUM, ROW)
    return Survey(path, survey, households_file, persons_file)


def survey_features(survey: Survey, areas: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """The feature view of the survey's households as of `as_of`, from the exchange files beside
    it; `areas` is the flattened area list (`targeting.inputs.flat_areas`)."""
    keys = survey.frame["household_id"]
    inputs = from_exchange(survey.households_file, survey.persons_file, areas, keys=keys)
    return features.compute(inputs, as_of)


def too_few(survey: Survey, households: int, needed: int, what: str) -> InvalidInput:
    """The error for a survey too small for the model asked of it."""
    message = f"{households} households are too few to fit {what}: at least {needed} are needed"
    return InvalidInput(f"{survey.name}: {message}", [FieldError(KEY, message)])


def _beside(path: Path, stem: str) -> Path:
    for suffix in (path.suffix.lower(), *TABLE_SUFFIXES):
        candidate = path.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    raise UnreadableFile(
        path,
        f"no {stem} file beside it ({stem}.parquet, .csv or .xlsx): the survey's household_key "
        "points into the exchange-format households and persons files of its folder",
    )


def _read(path: Path) -> pl.DataFrame:
    frames = []
    for batch in read_table(path, _BATCH_ROWS):
        if batch.rejects.height:
            first = batch.rejects.row(0, named=True)
            raise UnreadableFile(path, f"row {first['row']}: {first['message']}")
        if not frames:
            missing = [name for name in COLUMNS if name not in batch.rows.columns]
            if missing:
                raise InvalidInput(
                    f"{path.name}: no column {', '.join(missing)} (a survey has "
                    f"{', '.join(COLUMNS)})",
                    [FieldError(name, "the column is missing") for name in missing],
                )
        frames.append(batch.rows.select(*COLUMNS, ROW))
    if not frames or sum(frame.height for frame in frames) == 0:
        raise UnreadableFile(path, "the file has no rows")
    return pl.concat(frames)


def _given(name: str) -> pl.Expr:
    return pl.col(name).str.strip_chars().replace("", None).is_not_null()


def _number(name: str) -> pl.Expr:
    """A decimal number as typed (local digits read as ASCII); null when it is not one. NaN and
    infinities are not numbers a survey records."""
    value = ascii_number_column(pl.col(name).str.strip_chars()).cast(pl.Float64, strict=False)
    return pl.when(value.is_finite()).then(value)


def _unreadable(name: str) -> pl.Expr:
    return pl.col(f"{name}_given") & pl.col(name).is_null()


def _problem(column: str, problem: str, rows: pl.Series) -> FieldError:
    numbers = rows.sort().to_list()
    shown = ", ".join(str(n) for n in numbers[:_ROWS_SHOWN])
    more = f" and {len(numbers) - _ROWS_SHOWN} more" if len(numbers) > _ROWS_SHOWN else ""
    where = f"row {shown}" if len(numbers) == 1 else f"rows {shown}{more}"
    return FieldError(column, f"{problem} on {where}", numbers[0])


def _refuse(path: Path, problems: list[FieldError]) -> None:
    said = "; ".join(f"{p.field} {p.message}" for p in problems)
    raise InvalidInput(f"{path.name}: {said}", problems)


def _household_keys(path: Path) -> pl.Series:
    keys = []
    for batch in read_table(path, _BATCH_ROWS):
        if KEY not in batch.rows.columns:
            raise UnreadableFile(path, f"no column {KEY}")
        keys.append(batch.rows[KEY].str.strip_chars())
    return pl.concat(keys) if keys else pl.Series(KEY, [], pl.String)
