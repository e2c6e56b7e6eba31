"""The checked expression language: what it accepts, what it refuses and why, and that what it
accepts runs the same in DuckDB and transpiles to PostgreSQL and Spark."""

import polars as pl
import pytest
import sqlglot

from sijill.core.errors import InvalidInput
from sijill.targeting.expressions import (
    ExpressionError,
    check,
    column_types,
    evaluate,
    to_sql,
)

COLUMNS = {
    "hh_size": "number",
    "dependency_ratio": "number",
    "has_severe_disability": "boolean",
    "urban": "boolean",
    "cooking_fuel": "text",
    "governorate_code": "text",
}
CODES = {"cooking_fuel": ("gas", "electricity", "kerosene", "wood", "charcoal", "dung")}


@pytest.mark.parametrize(
    "text",
    [
        "hh_size >= 6 AND NOT urban",
        "cooking_fuel IN ('wood', 'charcoal') OR cooking_fuel IS NULL",
        "cooking_fuel NOT IN ('gas')",
        "dependency_ratio BETWEEN 0.5 AND 2",
        "hh_size IS NOT NULL AND has_severe_disability = TRUE",
        "CASE WHEN urban THEN hh_size ELSE hh_size * 2 END > 10",
        "COALESCE(dependency_ratio, 0) + LEAST(hh_size, 5) - GREATEST(1, ABS(-hh_size)) >= 1",
        "ROUND(dependency_ratio, 1) <> FLOOR(dependency_ratio) OR CEIL(hh_size / 3) % 2 = 1",
        '"hh_size" > 2',
    ],
)
def test_accepted_expressions_transpile_to_every_dialect(text):
    expression = check(text, COLUMNS, expect="boolean", codes=CODES)
    assert expression.type == "boolean"
    for dialect in ("duckdb", "postgres", "spark"):
        sql = to_sql(expression, dialect)
        # What we write, the engine's own parser reads back.
        sqlglot.parse_one(sql, read=dialect)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hh_size > 1; DROP TABLE household", "';' is not allowed"),
        ("hh_size > 1 -- always", "comments are not allowed"),
        ("hh_size /* hi */ > 1", "comments are not allowed"),
        ("hh_size IN (SELECT 1)", "(SELECT 1): a subquery is not allowed"),
        ("hh_size > (SELECT MAX(hh_size) FROM household)", "a subquery is not allowed"),
        ("upper(cooking_fuel) = 'GAS'", "the function UPPER is not allowed"),
        ("my_udf(hh_size) > 1", "the function MY_UDF is not allowed"),
        ("CAST(urban AS INT) = 1", "a cast is not allowed"),
        ("cooking_fuel LIKE 'w%'", "LIKE is not allowed"),
        ("hh_size = ?", "PLACEHOLDER is not allowed"),
        ("IF(urban, 1, 0) = 1", "use CASE WHEN instead of IF"),
        ("urban IS TRUE", "only IS NULL and IS NOT NULL"),
        ("household.hh_size > 1", "name a column alone, without a table"),
        ("hh_sise > 4", "hh_sise: unknown column (did you mean hh_size?)"),
        ("income > 4", "income: unknown column"),
        ("cooking_fuel = 'wod'", "'wod' is not a code of cooking_fuel (did you mean 'wood'?)"),
        ("cooking_fuel > 3", "mixes a number and text"),
        ("urban + 1 > 1", "urban is a yes/no value, where a number is needed"),
        ("hh_size AND urban", "hh_size is a number, where a yes/no value is needed"),
        ("urban > FALSE", "a yes/no value cannot be ordered"),
        ("hh_size + 1", "gives a number, where a yes/no value is needed"),
        ("hh_size IN ()", "IN needs a value"),
        ("hh_size >", "not valid SQL"),
        ("", "empty"),
        ("hh_size > 1 OR " * 400 + "urban", "longer than"),
    ],
)
def test_refusals_name_the_part_and_the_reason(text, message):
    with pytest.raises(ExpressionError) as raised:
        check(text, COLUMNS, expect="boolean", codes=CODES)
    assert message in str(raised.value)
    # A ValueError for plain Python callers, an InvalidInput (422) for the API and the CLI.
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, InvalidInput)


def test_unknown_node_types_are_refused_not_just_the_known_bad_ones():
    # Window functions, string concatenation, JSON access: none on the allow-list.
    for text in (
        "ROW_NUMBER() OVER () > 1",
        "cooking_fuel || 'x' = 'gasx'",
        "governorate_code -> 'a' = 'b'",
        "EXISTS (SELECT 1)",
    ):
        with pytest.raises(ExpressionError, match="not allowed"):
            check(text, COLUMNS)


def test_evaluation_in_bulk_matches_a_hand_computation():
    frame = pl.DataFrame(
        {
            "household_id": ["a", "b", "c", "d"],
            "hh_size": [7, 2, None, 9],
            "urban": [False, False, True, None],
            "cooking_fuel": ["wood", "gas", "wood", None],
        },
        schema_overrides={"hh_size": pl.Int32},
    )
    types = column_types(frame)
    assert types == {
        "household_id": "text",
        "hh_size": "number",
        "urban": "boolean",
        "cooking_fuel": "text",
    }
    result = evaluate(
        frame,
        {
            "big_rural": check("hh_size >= 6 AND NOT urban", types),
            "solid_fuel": check("cooking_fuel IN ('wood', 'charcoal')", types),
            "half": check("hh_size / 2", types),
        },
        keep=("household_id",),
    )
    assert result["household_id"].to_list() == ["a", "b", "c", "d"]
    # SQL three-valued logic: NULL AND FALSE is FALSE, TRUE AND NULL is NULL.
    assert result["big_rural"].to_list() == [True, False, False, None]
    assert result["solid_fuel"].to_list() == [True, False, True, None]
    # Division is fractional in every dialect: 7 / 2 is 3.5, not 3.
    assert result["half"].to_list() == [3.5, 1.0, None, 4.5]
    assert "DOUBLE PRECISION" in to_sql(check("hh_size / 2", types), "postgres")


def test_bad_arguments():
    with pytest.raises(ValueError, match="not one of"):
        to_sql(check("urban", COLUMNS), "mysql")
    with pytest.raises(ValueError, match="has type 'date'"):
        check("urban", {"urban": "date"})
