"""A program's benefit formula: the amount a household is entitled to per cycle.

    benefit:
      rounding: half_up          # half_up | half_even | down: to the minor unit, once, on the total
      components:
        - {name: base, amount: base_amount}         # a parameter, a number or an expression
        - {name: children, amount: per_child, per: "LEAST(n_children_0_17, 3)"}
        - {name: gap, amount: "GREATEST(line - EXP(pmt_score), 0) * hh_size / 12",
           share: 0.5, cap: gap_cap}
      maximum: household_cap     # optional, on the total
      minimum: 0                 # optional

Each component is amount × per (default 1) × share (default 1), capped at `cap`; the total is
the sum, held between `minimum` and `maximum`, then rounded once to the currency's minor unit
and kept as an integer: money is never a float. Amounts are in major units with exact decimals
(YAML's 12.5 is read as the decimal 12.5). A component computed from a score (a float, such as
a PMT's predicted log consumption) is fixed to six decimals before any amount arithmetic, so
the same inputs give the same minor units on every engine.
"""

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

from sqlglot import exp

from sijill.core.parameters import Value
from sijill.programs.clauses import SpecError, with_values
from sijill.programs.spec import ProgramSpec
from sijill.targeting import expressions
from sijill.targeting.expressions import Expression, ExpressionError

ROUNDING = ("half_up", "half_even", "down")
_EXACT = "DECIMAL(38, 6)"


@dataclass(frozen=True)
class Component:
    name: str
    amount: Expression
    per: Expression | None
    share: Decimal | None
    cap: Expression | None


@dataclass(frozen=True)
class Formula:
    rounding: str
    components: tuple[Component, ...]
    maximum: Expression | None
    minimum: Expression | None

    def columns(self) -> set[str]:
        used: set[str] = set()
        for part in self.parts():
            used |= part.columns
        return used

    def parts(self) -> list[Expression]:
        parts = [self.maximum, self.minimum]
        for component in self.components:
            parts += [component.amount, component.per, component.cap]
        return [part for part in parts if part is not None]


def parse_formula(spec: ProgramSpec, where: str = "spec") -> Formula | None:
    body = spec.benefit
    if body is None:
        return None
    if not isinstance(body, dict):
        raise SpecError(f"{where}: benefit: a mapping with components")
    unknown = set(body) - {"rounding", "components", "maximum", "minimum"}
    if unknown:
        raise SpecError(f"{where}: benefit.{sorted(unknown)[0]}: not a field of a benefit")
    rounding = body.get("rounding", "half_up")
    if rounding not in ROUNDING:
        raise SpecError(f"{where}: benefit.rounding: one of {', '.join(ROUNDING)}")
    raw = body.get("components")
    if not isinstance(raw, list) or not raw:
        raise SpecError(f"{where}: benefit.components: a list of at least one component")
    columns = spec.columns
    components = []
    names = set()
    for index, item in enumerate(raw):
        place = f"{where}: benefit.components[{index}]"
        if not isinstance(item, dict) or "amount" not in item or "name" not in item:
            raise SpecError(f"{place}: a component is {{name: ..., amount: ...}}")
        unknown = set(item) - {"name", "amount", "per", "share", "cap"}
        if unknown:
            raise SpecError(f"{place}.{sorted(unknown)[0]}: not a field of a component")
        if item["name"] in names:
            raise SpecError(f"{place}.name: '{item['name']}' is used twice")
        names.add(item["name"])
        share = None
        if "share" in item:
            share = _decimal(item["share"], f"{place}.share")
            if not 0 <= share <= 1:
                raise SpecError(f"{place}.share: a share is between 0 and 1")
        components.append(
            Component(
                name=str(item["name"]),
                amount=_number(item["amount"], columns, f"{place}.amount"),
                per=_number(item.get("per"), columns, f"{place}.per"),
                share=share,
                cap=_number(item.get("cap"), columns, f"{place}.cap"),
            )
        )
    return Formula(
        rounding=rounding,
        components=tuple(components),
        maximum=_number(body.get("maximum"), columns, f"{where}: benefit.maximum"),
        minimum=_number(body.get("minimum"), columns, f"{where}: benefit.minimum"),
    )


def _decimal(value: Any, place: str) -> Decimal:
    if isinstance(value, bool):
        raise SpecError(f"{place}: '{value}' is not a number")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise SpecError(f"{place}: '{value}' is not a number") from None
    if not number.is_finite():
        raise SpecError(f"{place}: '{value}' is not a number")
    return number


def _number(value: Any, columns: dict[str, str], place: str) -> Expression | None:
    if value is None:
        return None
    text = str(_decimal(value, place)) if isinstance(value, int | float) else str(value)
    try:
        return expressions.check(text, columns, expect="number")
    except ExpressionError as error:
        raise SpecError(f"{place}: {error}") from None


def _exact(expression: Expression, values: dict[str, Value]) -> str:
    sql = with_values(expression, values).sql(dialect="duckdb", identify=True)
    if _is_float(expression):
        return f"CAST(ROUND(CAST(({sql}) AS DOUBLE), 6) AS {_EXACT})"
    return f"CAST(({sql}) AS {_EXACT})"


def _is_float(expression: Expression) -> bool:
    # Division, EXP, LN and score columns leave exact decimals behind: six places first.
    return any(
        isinstance(node, exp.Div | exp.Exp | exp.Ln | exp.Column) for node in expression.tree.walk()
    )


def component_sql(component: Component, values: dict[str, Value]) -> str:
    """One component's amount in major units, exact to six decimals, never below zero."""
    amount = _exact(component.amount, values)
    if component.per is not None:
        amount = f"{amount} * {_exact(component.per, values)}"
    if component.share is not None:
        amount = f"{amount} * CAST({component.share} AS {_EXACT})"
    amount = f"GREATEST(COALESCE({amount}, 0), 0)"
    if component.cap is not None:
        amount = f"LEAST({amount}, {_exact(component.cap, values)})"
    return f"CAST({amount} AS {_EXACT})"


def amount_sql(formula: Formula, values: dict[str, Value], minor_units: int) -> str:
    """The household's amount per cycle in minor units (BIGINT), over the feature view and the
    named scores, the spec's parameters replaced by their values on the run's date."""
    total = " + ".join(component_sql(component, values) for component in formula.components)
    total = f"CAST(({total}) AS {_EXACT})"
    if formula.maximum is not None:
        total = f"LEAST({total}, {_exact(formula.maximum, values)})"
    if formula.minimum is not None:
        total = f"GREATEST({total}, {_exact(formula.minimum, values)})"
    scaled = f"CAST({total} AS {_EXACT}) * {10**minor_units}"
    rounded = {
        "half_up": f"ROUND({scaled}, 0)",  # positive amounts: half away from zero is half up
        "half_even": f"ROUND_EVEN({scaled}, 0)",
        "down": f"FLOOR({scaled})",
    }[formula.rounding]
    return f"CAST({rounded} AS BIGINT)"


def to_minor(amount: Decimal, minor_units: int, rounding: str = "half_up") -> int:
    """A decimal amount in minor units by the same rule, for Python-side figures."""
    mode = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN, "down": ROUND_DOWN}[rounding]
    return int((amount * 10**minor_units).quantize(Decimal(1), rounding=mode))
