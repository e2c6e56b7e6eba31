"""The checked expression language: a small, whitelisted subset of SQL over the feature view.

A policy officer writes conditions ("deprived when", a hybrid design's override, later a
program's `where:`) as SQL expressions, and they run in bulk in DuckDB, PostgreSQL or Spark.
So each one is parsed with sqlglot and walked node by node against an allow-list: a node type
not on the list is refused, never the other way round, so a construct sqlglot learns tomorrow
is refused until someone decides it is safe. Allowed:

- columns of the feature catalogue, named alone (no table), and literals: numbers, strings,
  TRUE, FALSE, NULL;
- comparisons (= <> != < <= > >=), AND, OR, NOT, IN (a list of values), BETWEEN,
  IS [NOT] NULL;
- arithmetic (+ - * / %, unary minus), parentheses, CASE WHEN ... THEN ... ELSE ... END;
- the functions COALESCE, LEAST, GREATEST, ABS, ROUND, FLOOR, CEIL, EXP, LN.

Comments and `;` are refused before parsing: an expression is one expression. Types are
inferred bottom-up (number, boolean, text) and a mismatch sqlglot would pass on to the engine
(`cooking_fuel > 3`, `has_tv + 1`) is refused here with the part that is wrong. Division is
DuckDB's (always fractional); sqlglot keeps that meaning when it writes PostgreSQL (a cast)
and Spark.
"""

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import duckdb
import polars as pl
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from sijill.core.errors import InvalidInput
from sijill.targeting.features import FEATURES

TYPES = ("number", "boolean", "text")
DIALECTS = ("duckdb", "postgres", "spark")
FUNCTIONS = {
    exp.Coalesce: "COALESCE",
    exp.Least: "LEAST",
    exp.Greatest: "GREATEST",
    exp.Abs: "ABS",
    exp.Round: "ROUND",
    exp.Floor: "FLOOR",
    exp.Ceil: "CEIL",
    # A gap-based benefit reads consumption back from a PMT's predicted log.
    exp.Exp: "EXP",
    exp.Ln: "LN",
}
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)
# Every node type an expression may hold; anything else is refused.
ALLOWED = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.And,
    exp.Or,
    exp.Not,
    exp.In,
    exp.Between,
    exp.Is,
    exp.Neg,
    exp.Case,
    exp.If,
    *_COMPARISONS,
    *_ARITHMETIC,
    *FUNCTIONS,
)
# A condition is a line or a few, not a program; past this it is a mistake or an attack.
MAX_CHARS = 4000
MAX_NODES = 500
_NULL = "null"  # the type of NULL, compatible with every other
_SAID = {"number": "a number", "boolean": "a yes/no value", "text": "text", _NULL: "NULL"}


class ExpressionError(InvalidInput, ValueError):
    """An expression that is refused. The message names the offending part and the reason."""

    def __init__(self, message: str, part: str | None = None):
        super().__init__(message)
        self.part = part


@dataclass(frozen=True)
class Expression:
    text: str  # as the user wrote it
    tree: exp.Expression
    type: str  # number | boolean | text
    columns: frozenset[str]  # the feature columns it reads


def _shown(node: exp.Expression, limit: int = 60) -> str:
    text = node.sql(dialect="duckdb")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check(
    text: str,
    columns: Mapping[str, str],
    *,
    expect: str | None = None,
    codes: Mapping[str, Collection[str]] | None = None,
) -> Expression:
    """Parse and check an expression over `columns` (name -> number|boolean|text). `expect`
    is the type the result must have; `codes` the values a coded text column may take."""
    for name, kind in columns.items():
        if kind not in TYPES:
            raise ValueError(f"column {name} has type {kind!r}, not one of {', '.join(TYPES)}")
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the expression is empty")
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"the expression is longer than {MAX_CHARS} characters")
    try:
        tokens = sqlglot.Dialect.get_or_raise("duckdb").tokenize(text)
    except TokenError:
        raise ExpressionError("the expression cannot be read (an unclosed quote?)") from None
    for token in tokens:
        if token.comments:
            raise ExpressionError("comments are not allowed in an expression", "--")
        if token.token_type == sqlglot.TokenType.SEMICOLON:
            raise ExpressionError("';' is not allowed: an expression is one expression", ";")
    try:
        tree = sqlglot.parse_one(text, read="duckdb")
    except (ParseError, TokenError):
        raise ExpressionError("the expression is not valid SQL") from None
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply") from None
    nodes = list(tree.walk())
    if len(nodes) > MAX_NODES:
        raise ExpressionError(f"the expression has more than {MAX_NODES} parts")
    # Constructs first: a subquery is refused as a subquery, not for a column it names.
    for node in nodes:
        _allow(node)
    for column in tree.find_all(exp.Column):
        _known(column, columns)
    kind = _Typer(columns, codes or {}).type(tree)
    if expect is not None and kind not in (expect, _NULL):
        raise ExpressionError(
            f"the expression gives {_SAID[kind]}, where {_SAID[expect]} is needed"
        )
    used = frozenset(column.name for column in tree.find_all(exp.Column))
    return Expression(text=text, tree=tree, type=expect or kind, columns=used)


_NAMED = {exp.Subquery: "a subquery", exp.Select: "a query", exp.Cast: "a cast", exp.Star: "*"}


def _allow(node: exp.Expression) -> None:
    if type(node) in _NAMED:
        what = _NAMED[type(node)]
        raise ExpressionError(f"{_shown(node)}: {what} is not allowed here", _shown(node))
    if isinstance(node, exp.Func) and not isinstance(node, ALLOWED):
        name = node.name.upper() if isinstance(node, exp.Anonymous) else node.sql_name()
        allowed = ", ".join(sorted(FUNCTIONS.values()))
        raise ExpressionError(
            f"{_shown(node)}: the function {name} is not allowed (allowed: {allowed})", name
        )
    if not isinstance(node, ALLOWED):
        what = type(node).__name__.upper()
        raise ExpressionError(f"{_shown(node)}: {what} is not allowed here", _shown(node))
    if isinstance(node, exp.If) and not isinstance(node.parent, exp.Case):
        raise ExpressionError(f"{_shown(node)}: use CASE WHEN instead of IF", _shown(node))
    if isinstance(node, exp.Is) and not isinstance(node.expression, exp.Null):
        raise ExpressionError(f"{_shown(node)}: only IS NULL and IS NOT NULL", _shown(node))
    if isinstance(node, exp.Column) and (
        node.table or node.args.get("db") or node.args.get("catalog")
    ):
        raise ExpressionError(f"{_shown(node)}: name a column alone, without a table", _shown(node))


def _known(column: exp.Column, columns: Mapping[str, str]) -> None:
    if column.name not in columns:
        near = difflib.get_close_matches(column.name, list(columns), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ExpressionError(f"{column.name}: unknown column{hint}", column.name)


class _Typer:
    def __init__(self, columns: Mapping[str, str], codes: Mapping[str, Collection[str]]):
        self.columns = columns
        self.codes = codes

    def type(self, node: exp.Expression) -> str:
        if isinstance(node, exp.Paren):
            return self.type(node.this)
        if isinstance(node, exp.Column):
            return self.columns[node.name]
        if isinstance(node, exp.Literal):
            return "text" if node.is_string else "number"
        if isinstance(node, exp.Boolean):
            return "boolean"
        if isinstance(node, exp.Null):
            return _NULL
        if isinstance(node, exp.Neg | exp.Abs | exp.Floor | exp.Ceil | exp.Exp | exp.Ln):
            return self.need(node.this, "number", node)
        if isinstance(node, exp.Round):
            if node.args.get("decimals") is not None:
                self.need(node.args["decimals"], "number", node)
            return self.need(node.this, "number", node)
        if isinstance(node, _ARITHMETIC):
            self.need(node.this, "number", node)
            return self.need(node.expression, "number", node)
        if isinstance(node, exp.And | exp.Or):
            self.need(node.this, "boolean", node)
            self.need(node.expression, "boolean", node)
            return "boolean"
        if isinstance(node, exp.Not):
            return self.need(node.this, "boolean", node)
        if isinstance(node, exp.Is):
            self.type(node.this)
            return "boolean"
        if isinstance(node, _COMPARISONS):
            self.same([node.this, node.expression], node)
            if not isinstance(node, exp.EQ | exp.NEQ):
                for side in (node.this, node.expression):
                    if self.type(side) == "boolean":
                        raise ExpressionError(
                            f"{_shown(node)}: a yes/no value cannot be ordered", _shown(node)
                        )
            self.known_codes(node.this, [node.expression], node)
            self.known_codes(node.expression, [node.this], node)
            return "boolean"
        if isinstance(node, exp.In):
            if not node.expressions:
                raise ExpressionError(f"{_shown(node)}: IN needs a value", _shown(node))
            self.same([node.this, *node.expressions], node)
            self.known_codes(node.this, node.expressions, node)
            return "boolean"
        if isinstance(node, exp.Between):
            self.same([node.this, node.args["low"], node.args["high"]], node)
            return "boolean"
        if isinstance(node, exp.Case):
            for branch in node.args.get("ifs") or []:
                self.need(branch.this, "boolean", branch)
            results = [branch.args["true"] for branch in node.args.get("ifs") or []]
            if node.args.get("default") is not None:
                results.append(node.args["default"])
            return self.same(results, node)
        if isinstance(node, exp.Coalesce | exp.Least | exp.Greatest):
            return self.same([node.this, *node.expressions], node)
        raise ExpressionError(f"{_shown(node)}: not allowed here", _shown(node))

    def need(self, node: exp.Expression, kind: str, where: exp.Expression) -> str:
        found = self.type(node)
        if found not in (kind, _NULL):
            raise ExpressionError(
                f"{_shown(where)}: {_shown(node)} is {_SAID[found]}, where {_SAID[kind]} is needed",
                _shown(node),
            )
        return kind

    def same(self, nodes: list[exp.Expression], where: exp.Expression) -> str:
        kinds = {self.type(node) for node in nodes} - {_NULL}
        if len(kinds) > 1:
            raise ExpressionError(
                f"{_shown(where)}: mixes {' and '.join(_SAID[k] for k in sorted(kinds))}",
                _shown(where),
            )
        return kinds.pop() if kinds else _NULL

    def known_codes(
        self, column: exp.Expression, values: list[exp.Expression], where: exp.Expression
    ) -> None:
        """A coded column compared with a string that is not one of its codes never matches:
        a typo that would silently select nobody."""
        if not isinstance(column, exp.Column) or column.name not in self.codes:
            return
        allowed = self.codes[column.name]
        for value in values:
            if isinstance(value, exp.Literal) and value.is_string and value.this not in allowed:
                near = difflib.get_close_matches(value.this, list(allowed), n=1)
                hint = f" (did you mean '{near[0]}'?)" if near else ""
                raise ExpressionError(
                    f"{_shown(where)}: '{value.this}' is not a code of {column.name}{hint}",
                    value.this,
                )


def to_sql(expression: Expression, dialect: str) -> str:
    """The expression in one engine's SQL, every column quoted (a feature named like a keyword
    stays a column)."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect {dialect!r} is not one of {', '.join(DIALECTS)}")
    return expression.tree.sql(dialect=dialect, identify=True)


# The feature catalogue's types as the language sees them: counts and measures are numbers,
# codes are text.
CATALOGUE_TYPES = {"integer": "number", "number": "number", "boolean": "boolean", "code": "text"}


def feature_columns(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The columns an expression may read: the feature catalogue's, plus `extra` (scores)."""
    columns = {feature.name: CATALOGUE_TYPES[feature.type] for feature in FEATURES}
    columns.update(extra or {})
    return columns


def column_types(frame: pl.DataFrame | pl.Schema) -> dict[str, str]:
    """The expression types of a frame's columns (columns of other types are left out)."""
    schema = frame.schema if isinstance(frame, pl.DataFrame) else frame
    types: dict[str, str] = {}
    for name, dtype in schema.items():
        if dtype == pl.Boolean:
            types[name] = "boolean"
        elif dtype.is_numeric():
            types[name] = "number"
        elif dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
            types[name] = "text"
    return types


def evaluate(
    frame: pl.DataFrame, expressions: Mapping[str, Expression], keep: tuple[str, ...] = ()
) -> pl.DataFrame:
    """Every expression over every row at once, in DuckDB over the frame's Arrow buffers: the
    `keep` columns, then one column per expression, named by its key, in the frame's order."""
    if not expressions and not keep:
        return pl.DataFrame()
    select = [exp.column(name, quoted=True).sql(dialect="duckdb") for name in keep]
    select += [
        f"{to_sql(expression, 'duckdb')} AS {exp.to_identifier(alias, quoted=True).sql()}"
        for alias, expression in expressions.items()
    ]
    with duckdb.connect() as connection:
        # The result lines up with the frame row for row: no sort needed to join it back.
        connection.execute("SET preserve_insertion_order = true")
        connection.register("features", frame.to_arrow())
        return connection.sql(f"SELECT {', '.join(select)} FROM features").pl()
