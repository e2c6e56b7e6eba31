"""Dates as clerks write them, read column-wise, never guessed.

Accepted: ISO `YYYY-MM-DD`, `YYYY-MM`, `YYYY`; and day/month/year with `/`, `.` or `-`
(`dd/mm/yyyy`, or `mm/dd/yyyy` when the mapping says so), `mm/yyyy`. A two-digit year, a
day/month order that cannot be told apart (`date_order: auto` with both parts ≤ 12), or a day
that does not exist is a reject with its reason.
"""

import datetime as dt

import polars as pl

_ISO = r"^(\d{4})-(\d{1,2})-(\d{1,2})$"
_ISO_MONTH = r"^(\d{4})-(\d{1,2})$"
_YEAR = r"^(\d{4})$"
_CLERK = r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$"
_CLERK_MONTH = r"^(\d{1,2})[/.\-](\d{4})$"
_TWO_DIGIT_YEAR = r"^\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2}$"
_ORDER_WORDS = {"dmy": "day/month/year", "mdy": "month/day/year", "auto": "day/month/year"}


def _part(column: pl.Expr, pattern: str, group: int) -> pl.Expr:
    return column.str.extract(pattern, group).cast(pl.Int32)


def parse_dates(
    frame: pl.DataFrame, name: str, date_order: str, allow_partial: bool, today: dt.date
) -> pl.DataFrame:
    """Columns `<name>__date`, `<name>__precision` and `<name>__error` (null when fine), a
    row for each row of `frame`. A batch holds far fewer distinct dates than rows: each is
    read once and the result joined back."""
    distinct = frame.select(pl.col(name)).unique()
    parsed = _parse(distinct, name, date_order, allow_partial, today)
    return (
        frame.select(name)
        .join(
            distinct.with_columns(parsed),
            on=name,
            how="left",
            nulls_equal=True,
            maintain_order="left",
        )
        .drop(name)
    )


def _parse(
    frame: pl.DataFrame, name: str, date_order: str, allow_partial: bool, today: dt.date
) -> pl.DataFrame:
    text = pl.col(name)
    iso = text.str.contains(_ISO)
    iso_month = text.str.contains(_ISO_MONTH)
    year_only = text.str.contains(_YEAR)
    clerk = text.str.contains(_CLERK)
    clerk_month = text.str.contains(_CLERK_MONTH)
    first, second = _part(text, _CLERK, 1), _part(text, _CLERK, 2)
    day_first = pl.lit(date_order != "mdy")
    year = (
        pl.when(iso | iso_month | year_only)
        .then(_part(text, r"^(\d{4})", 1))
        .when(clerk)
        .then(_part(text, _CLERK, 3))
        .when(clerk_month)
        .then(_part(text, _CLERK_MONTH, 2))
    )
    month = (
        pl.when(iso | iso_month)
        .then(_part(text, r"^\d{4}-(\d{1,2})", 1))
        .when(clerk)
        .then(pl.when(day_first).then(second).otherwise(first))
        .when(clerk_month)
        .then(_part(text, _CLERK_MONTH, 1))
        .when(year_only)
        .then(pl.lit(1, dtype=pl.Int32))
    )
    day = (
        pl.when(iso)
        .then(_part(text, _ISO, 3))
        .when(clerk)
        .then(pl.when(day_first).then(first).otherwise(second))
        .when(iso_month | clerk_month | year_only)
        .then(pl.lit(1, dtype=pl.Int32))
    )
    precision = (
        pl.when(iso | clerk)
        .then(pl.lit("day"))
        .when(iso_month | clerk_month)
        .then(pl.lit("month"))
        .when(year_only)
        .then(pl.lit("year"))
    )
    parts = frame.select(
        text.alias("text"),
        year.alias("y"),
        month.alias("m"),
        day.alias("d"),
        precision.alias("precision"),
        (clerk & (first <= 12) & (second <= 12) & (first != second)).alias("ambiguous"),
        text.str.contains(_TWO_DIGIT_YEAR).alias("two_digit_year"),
    )
    leap = ((pl.col("y") % 4 == 0) & (pl.col("y") % 100 != 0)) | (pl.col("y") % 400 == 0)
    days_in_month = (
        pl.when(pl.col("m") == 2)
        .then(pl.when(leap).then(29).otherwise(28))
        .when(pl.col("m").is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )
    exists = pl.col("m").is_between(1, 12) & pl.col("d").is_between(1, days_in_month)
    safe_date = pl.date(
        pl.when(exists).then(pl.col("y")).otherwise(2000),
        pl.when(exists).then(pl.col("m")).otherwise(1),
        pl.when(exists).then(pl.col("d")).otherwise(1),
    )
    parsed = pl.when(exists).then(safe_date)
    error = (
        pl.when(pl.col("text").is_null())
        .then(None)
        .when(pl.col("two_digit_year"))
        .then(pl.lit("two-digit year is ambiguous: write the year in full (e.g. 1987)"))
        .when(pl.col("precision").is_null())
        .then(pl.lit("is not a date (expected dd/mm/yyyy, yyyy-mm-dd or the year alone)"))
        .when(pl.lit(date_order == "auto") & pl.col("ambiguous"))
        .then(pl.lit("is ambiguous: day and month could be swapped; set date_order"))
        .when(~exists & pl.col("text").str.contains(_CLERK))
        .then(pl.lit(f"does not exist in the calendar (read as {_ORDER_WORDS[date_order]})"))
        .when(~exists)
        .then(pl.lit("does not exist in the calendar"))
        .when(pl.lit(not allow_partial) & (pl.col("precision") != "day"))
        .then(pl.lit("must be a full date (day, month and year)"))
        .when(parsed > pl.lit(today))
        .then(pl.lit("is in the future"))
        .when(pl.col("y") < 1900)
        .then(pl.lit("is before 1900"))
    )
    return parts.select(
        parsed.alias(f"{name}__date"),
        pl.col("precision").alias(f"{name}__precision"),
        error.alias(f"{name}__error"),
    )
