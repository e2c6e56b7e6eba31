"""The feature view's inputs from exchange-format files (docs/data-format.md): a survey's
households and persons, read through the one table reader, checked as they are turned into
typed columns. A value that cannot be read stops the run with its file, line and column
(never the value: it may be personal data)."""

from pathlib import Path

import polars as pl

from sijill.core.errors import InvalidInput
from sijill.core.files import read_table
from sijill.registry.codes import LIVESTOCK
from sijill.targeting.features import WASHINGTON_GROUP, Inputs
from sijill.targeting.inputs import (
    FACT_SCHEMA,
    HOUSEHOLD_SCHEMA,
    PERSON_SCHEMA,
    PERSON_TEXT,
)
from sijill.targeting.registry_sql import DWELLING

_BATCH_ROWS = 100_000


def from_exchange(
    households_file: Path,
    persons_file: Path,
    areas: pl.DataFrame,
    *,
    keys: pl.Series | None = None,
) -> Inputs:
    """The inputs for the households of exchange-format files (docs/data-format.md), only
    those whose `household_key` is in `keys` when given. Household and person IDs are the
    files' own keys. A value that cannot be read stops with the file, line and column."""
    households = _read_all(households_file, ("household_key", "area_code"), keys)
    persons = _read_all(persons_file, ("person_key", "household_key", "relationship"), keys)
    livestock = _split(households_file, households, "livestock")
    house = households.select(
        pl.col("household_key").alias("household_id"),
        "area_code",
        *(_optional(households, name) for name in DWELLING),
        _integer(households_file, households, "dwelling_rooms"),
        _split(households_file, households, "assets"),
        _split(households_file, households, "income_sources"),
        *_livestock(households_file, households, livestock),
    ).cast(HOUSEHOLD_SCHEMA)
    people = persons.select(
        pl.col("household_key").alias("household_id"),
        pl.col("person_key").alias("person_id"),
        *(_optional(persons, name) for name in PERSON_TEXT),
        _date(persons_file, persons, "birth_date"),
        _date(persons_file, persons, "death_date"),
        *(_integer(persons_file, persons, f"wg_{d}") for d in WASHINGTON_GROUP),
        _boolean(persons_file, persons, "enrolled"),
        _integer(persons_file, persons, "school_grade"),
        _boolean(persons_file, persons, "contributory_pension"),
        _integer(persons_file, persons, "monthly_income"),
    ).cast(PERSON_SCHEMA)
    return Inputs(house, people, areas, pl.DataFrame(schema=FACT_SCHEMA))


def _read_all(path: Path, required: tuple[str, ...], keys: pl.Series | None) -> pl.DataFrame:
    frames = []
    for batch in read_table(path, _BATCH_ROWS):
        if batch.rejects.height:
            first = batch.rejects.row(0, named=True)
            raise InvalidInput(f"{path.name}: line {first['row']}: {first['message']}")
        rows = batch.rows
        # Kept batch by batch: a survey's households are a sliver of a national file.
        if keys is not None and "household_key" in rows.columns:
            rows = rows.filter(pl.col("household_key").is_in(keys.implode()))
        frames.append(rows)
    frame = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    for column in required:
        if column not in frame.columns:
            raise InvalidInput(f"{path.name}: the column '{column}' is missing")
    return frame


def _optional(frame: pl.DataFrame, name: str) -> pl.Expr:
    return pl.col(name) if name in frame.columns else pl.lit(None, pl.String).alias(name)


def _checked(path: Path, frame: pl.DataFrame, name: str, parsed: pl.Expr, what: str) -> pl.Expr:
    """`parsed`, after checking that every non-empty cell parsed (else the first bad line)."""
    if name not in frame.columns:
        return pl.lit(None).alias(name)
    given = pl.col(name).str.strip_chars().replace("", None).is_not_null()
    bad = frame.filter(given & parsed.is_null())
    if bad.height:
        raise InvalidInput(f"{path.name}: line {bad['_row'][0]}: column '{name}' is not {what}")
    return parsed.alias(name)


def _integer(path: Path, frame: pl.DataFrame, name: str) -> pl.Expr:
    parsed = pl.col(name).str.strip_chars().cast(pl.Int64, strict=False)
    return _checked(path, frame, name, parsed, "a whole number")


def _boolean(path: Path, frame: pl.DataFrame, name: str) -> pl.Expr:
    text = pl.col(name).str.strip_chars().str.to_lowercase()
    parsed = (
        pl.when(text.is_in(["true", "1", "yes"]))
        .then(True)
        .when(text.is_in(["false", "0", "no"]))
        .then(False)
        .otherwise(None)
    )
    return _checked(path, frame, name, parsed, "true or false")


def _date(path: Path, frame: pl.DataFrame, name: str) -> pl.Expr:
    """An ISO date; a year alone or a year and month stand for their first day, as the
    registry stores a date known only to the year."""
    text = pl.col(name).str.strip_chars()
    padded = (
        pl.when(text.str.len_chars() == 4)
        .then(text + "-01-01")
        .when(text.str.len_chars() == 7)
        .then(text + "-01")
        .otherwise(text)
    )
    parsed = padded.str.to_date("%Y-%m-%d", strict=False)
    return _checked(path, frame, name, parsed, "a date (YYYY-MM-DD, YYYY-MM or YYYY)")


def _split(path: Path, frame: pl.DataFrame, name: str) -> pl.Expr:
    if name not in frame.columns:
        return pl.lit([], pl.List(pl.String)).alias(name)
    return (
        pl.col(name)
        .fill_null("")
        .str.split(";")
        .list.eval(pl.element().str.strip_chars().filter(pl.element() != ""))
        .alias(name)
    )


def _livestock(path: Path, frame: pl.DataFrame, entries: pl.Expr) -> list[pl.Expr]:
    """`kind:count` entries as one count column per kind."""
    if "livestock" not in frame.columns:
        return [pl.lit(0, pl.Int64).alias(f"livestock_{kind}") for kind in LIVESTOCK]
    pairs = frame.select("_row", entries).explode("livestock").drop_nulls("livestock")
    pairs = pairs.with_columns(
        kind=pl.col("livestock").str.split(":").list.get(0, null_on_oob=True),
        count=pl.col("livestock")
        .str.split(":")
        .list.get(1, null_on_oob=True)
        .str.strip_chars()
        .cast(pl.Int64, strict=False),
    )
    bad = pairs.filter(~pl.col("kind").is_in(LIVESTOCK) | pl.col("count").is_null())
    if bad.height:
        raise InvalidInput(
            f"{path.name}: line {bad['_row'][0]}: column 'livestock' is not a list of "
            f"kind:count with kinds {', '.join(LIVESTOCK)}"
        )
    columns = []
    for kind in LIVESTOCK:
        entry = entries.list.eval(
            pl.element()
            .filter(pl.element().str.starts_with(f"{kind}:"))
            .str.split(":")
            .list.get(1)
            .str.strip_chars()
            .cast(pl.Int64)
        ).list.sum()
        columns.append(entry.alias(f"livestock_{kind}"))
    return columns
