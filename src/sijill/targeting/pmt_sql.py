"""A PMT model as one SQL expression over the feature view's columns: predicted log consumption
per person, for DuckDB over the whole registry (and, transpiled by sqlglot, Spark or
PostgreSQL, since it is plain SQL).

    intercept
      + coef * COALESCE(CAST(feature AS DOUBLE), fill)                     -- a number
      + coef * LN(GREATEST(COALESCE(CAST(feature AS DOUBLE), fill), 1))     -- a logged number
      + coef * CASE WHEN feature IS NULL THEN fill WHEN feature THEN 1 ELSE 0 END   -- a boolean
      + CASE WHEN feature = 'level' THEN coef ELSE 0 END                     -- a code's level

With region models, `CASE WHEN governorate_code = 'SJ01' THEN (its model) ... ELSE (the
national model) END`. Missing values follow `pmt_design`: a missing number or boolean counts as
the survey's weighted mean (`fill`), a missing or unseen code as the reference level, a missing
governorate as the national model; so no household's score is NULL.

Numbers are written in exponent form with 17 significant digits: DuckDB and Spark read that as
a double (a plain decimal would be a DECIMAL there), and it is the float the artifact holds.
"""

import re

import sqlglot
from sqlglot import exp

from sijill.core.errors import InvalidInput
from sijill.targeting.pmt_design import KINDS

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def score_sql(artifact: dict, dialect: str = "duckdb") -> str:
    """The model's score as one SQL expression in `dialect` (a sqlglot dialect name)."""
    national = _linear(artifact)
    regions = artifact.get("regions")
    if regions and regions["models"]:
        column = _column(regions["column"])
        whens = " ".join(
            f"WHEN {column} = {_text(model['code'])} THEN ({_linear(model)})"
            for model in regions["models"]
        )
        text = f"CASE {whens} ELSE ({national}) END"
    else:
        text = national
    return sqlglot.parse_one(text, read="duckdb").sql(dialect=dialect)


def _linear(model: dict) -> str:
    parts = [_number(model["intercept"])]
    parts += [_term(term) for term in model["terms"]]
    return " + ".join(parts)


def _term(term: dict) -> str:
    kind, column = term.get("kind"), _column(term.get("feature"))
    if kind not in KINDS:
        raise InvalidInput(f"a PMT term's kind is one of {', '.join(KINDS)}: got {kind!r}")
    coefficient = _number(term["coefficient"])
    if kind == "code":
        return f"CASE WHEN {column} = {_text(term['level'])} THEN {coefficient} ELSE 0 END"
    fill = _number(term["fill"])
    if kind == "boolean":
        value = f"CASE WHEN {column} IS NULL THEN {fill} WHEN {column} THEN 1 ELSE 0 END"
        return f"{coefficient} * {value}"
    value = f"COALESCE(CAST({column} AS DOUBLE), {fill})"
    if kind == "log":
        value = f"LN(GREATEST({value}, 1))"
    return f"{coefficient} * {value}"


def _column(name) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput("a PMT term names a feature that is not a column name")
    return name


def _number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput("a PMT model's coefficient or fill is not a number")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise InvalidInput("a PMT model's coefficient or fill is not finite")
    return f"({number:.16e})"


def _text(value) -> str:
    if not isinstance(value, str):
        raise InvalidInput("a PMT model's code level is not text")
    return exp.Literal.string(value).sql(dialect="duckdb")
