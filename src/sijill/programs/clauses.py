"""A spec's expressions: its clauses, its geographic scope, its ranking, and each with the
parameters of a day filled in. Every refusal starts with where in the file it is."""

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlglot import exp

from sijill.core.errors import InvalidInput
from sijill.core.parameters import Value
from sijill.registry.codes import HOUSEHOLD_CODES
from sijill.targeting import expressions
from sijill.targeting.expressions import Expression, ExpressionError

NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
AREA_CLAUSE = "area"
_AREA_COLUMNS = ("area_code", "district_code", "governorate_code")


class SpecError(InvalidInput):
    """A spec that is refused; the message starts with where in the file."""


@dataclass(frozen=True)
class Clause:
    name: str
    expression: Expression


def split_clauses(text: str, columns: dict[str, str]) -> list[dict[str, str]]:
    """`a AND b AND c` as three clauses, so a decision says which part failed."""
    try:
        tree = expressions.check(text, columns, expect=None)
    except ExpressionError:
        return [{"name": "rule", "where": text}]  # checked, with its message, as one clause
    parts: list[exp.Expression] = []

    def flatten(node: exp.Expression) -> None:
        node = node.this if isinstance(node, exp.Paren) and isinstance(node.this, exp.And) else node
        if isinstance(node, exp.And):
            flatten(node.this)
            flatten(node.expression)
        else:
            parts.append(node)

    flatten(tree.tree)
    return [{"name": f"rule_{i + 1}", "where": part.sql("duckdb")} for i, part in enumerate(parts)]


def name_ok(where: str, place: str, name: Any) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise SpecError(f"{where}: {place}: '{name}' is not a name (a-z, 0-9, '_')")
    return name


def parse_clause(where: str, key: str, index: int, body: Any, columns: dict[str, str]) -> Clause:
    place = f"{key}[{index}]"
    if not isinstance(body, dict) or "where" not in body:
        raise SpecError(f"{where}: {place}: a clause is {{name: ..., where: ...}}")
    name = name_ok(where, f"{place}.name", body.get("name", f"rule_{index + 1}"))
    if name == AREA_CLAUSE:
        raise SpecError(f"{where}: {place}.name: '{AREA_CLAUSE}' is kept for the spec's areas")
    try:
        expression = expressions.check(
            str(body["where"]), columns, expect="boolean", codes=_codes(columns)
        )
    except ExpressionError as error:
        raise SpecError(f"{where}: {place}.where: {error}") from None
    return Clause(name, expression)


def _codes(columns: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """The values a coded feature may take: a string outside them is a typo that would
    silently select nobody."""
    return {name: values for name, values in HOUSEHOLD_CODES.items() if name in columns}


def area_expression(areas: tuple[str, ...], columns: dict[str, str]) -> Expression:
    listed = ", ".join("'" + area.replace("'", "''") + "'" for area in areas)
    text = " OR ".join(f"{column} IN ({listed})" for column in _AREA_COLUMNS)
    return expressions.check(text, columns, expect="boolean")


def parse_ranking(
    where: str, body: dict, columns: dict[str, str]
) -> tuple[Expression | None, bool]:
    if not body:
        return None, True
    order = body.get("order", "ascending")
    if order not in ("ascending", "descending"):
        raise SpecError(f"{where}: ranking.order: ascending (lowest first) or descending")
    try:
        ranking = expressions.check(str(body.get("by", "")), columns, expect="number")
    except ExpressionError as error:
        raise SpecError(f"{where}: ranking.by: {error}") from None
    return ranking, order == "ascending"


def with_values(expression: Expression, values: dict[str, Value]) -> exp.Expression:
    """The expression with each parameter replaced by its value: what runs, and what the
    decision's rule text shows."""

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and node.name in values:
            value = values[node.name]
            if isinstance(value, bool):
                return exp.Boolean(this=value)
            if isinstance(value, int | Decimal):
                return exp.Literal.number(str(value))
            return exp.Literal.string(str(value))
        return node

    return expression.tree.copy().transform(replace)
