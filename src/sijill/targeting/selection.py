"""Which households a targeting design selects, and who the reference poor are.

A design is a ranking (lower = poorer = selected first: a PMT's predicted log consumption, an
MPI's deprivation score negated, a hybrid's combined rank) or a Boolean selection already made
(a categorical rule, a list). A rule says how many a ranking selects: a coverage (a share of
households, weighted) or a budget (a total and a transfer per household or per person, both
`Decimal`). Ties are broken by household_id so two runs select the same households.

The reference poor are persons (`weight x hh_size`) by per-capita welfare: below a poverty
line when one is given, else the poorest quintile; see `with_reference`.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import polars as pl

from sijill.core.errors import InvalidInput

# Transfers reaching the poorest 40% of persons, over 0.4 (Coady, Grosh & Hoddinott 2004).
CGH_SHARE = 0.4
# A cumulative float sum that should equal a limit may land a few ulps off it.
TOLERANCE = 1e-9
# The rank of each household_id as text, when the caller keeps it (see `select`).
ID_ORDER = "id_order"


@dataclass(frozen=True)
class DesignColumn:
    """One targeting design: `column` holds a ranking key (`kind="ranking"`, lower is poorer
    and selected first) or a Boolean selection (`kind="selection"`)."""

    name: str
    column: str
    kind: Literal["ranking", "selection"] = "ranking"


@dataclass(frozen=True)
class Rule:
    """How many households a ranking selects, and what each selected household receives.

    Exactly one of `coverage` (a share of households, weighted) or `budget` (a total, in the
    currency and period of `welfare`). `transfer` is paid per household, or per person when
    `per_person`. Rankings select the poorest-ranked households while the coverage or the
    budget lasts, ties broken by household_id; a Boolean design selects what it says and the
    run reports what it spends."""

    transfer: Decimal
    coverage: float | None = None
    budget: Decimal | None = None
    per_person: bool = False

    def __post_init__(self) -> None:
        if (self.coverage is None) == (self.budget is None):
            raise InvalidInput("A selection rule needs either a coverage or a budget, not both")
        for name in ("transfer", "budget"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, Decimal) and value.is_finite() and value > 0
            ):
                raise InvalidInput(f"The {name} must be a positive Decimal amount, not {value!r}")
        if self.coverage is not None and not 0 < self.coverage <= 1:
            raise InvalidInput(f"The coverage must be a share in (0, 1], not {self.coverage}")


def size_band(hh_size: pl.Expr) -> pl.Expr:
    """Household size in bands wide enough to keep cells large: 1-2, 3-4, 5-6, 7-8, 9+."""
    return (
        pl.when(hh_size <= 2)
        .then(pl.lit("1-2"))
        .when(hh_size <= 4)
        .then(pl.lit("3-4"))
        .when(hh_size <= 6)
        .then(pl.lit("5-6"))
        .when(hh_size <= 8)
        .then(pl.lit("7-8"))
        .otherwise(pl.lit("9+"))
    )


def _quantile_welfare(frame: pl.DataFrame, share: float) -> float:
    """The lowest welfare at which the persons at or below it reach `share` of all persons."""
    ordered = frame.select("welfare", "persons").sort("welfare")
    total = ordered["persons"].sum()
    reached = ordered.filter(pl.col("persons").cum_sum() >= share * total * (1 - TOLERANCE))
    return reached["welfare"][0]


def with_reference(frame: pl.DataFrame, poverty_line: Decimal | None) -> tuple[pl.DataFrame, float]:
    """`frame` with `poor`, `poorest_quintile` and `bottom_40` (persons by per-capita welfare,
    whole households: those at or below the share's welfare), and the poverty line used."""
    q1 = _quantile_welfare(frame, 0.2)
    b40 = _quantile_welfare(frame, CGH_SHARE)
    if poverty_line is not None:
        if not (
            isinstance(poverty_line, Decimal) and poverty_line.is_finite() and poverty_line > 0
        ):
            raise InvalidInput(f"The poverty line must be a positive Decimal, not {poverty_line!r}")
        # Welfare is a survey's float; the line is only compared with it, never summed as money.
        line = float(poverty_line)
    else:
        above = frame.filter(pl.col("welfare") > q1)["welfare"]
        if above.is_empty():
            raise InvalidInput("Every household has the same welfare: nobody is poorest")
        line = above.min()
    return frame.with_columns(
        (pl.col("welfare") < line).alias("poor"),
        (pl.col("welfare") <= q1).alias("poorest_quintile"),
        (pl.col("welfare") <= b40).alias("bottom_40"),
    ), line


def select(frame: pl.DataFrame, design: DesignColumn, rule: Rule) -> pl.Series:
    """Which households a design selects under `rule`, in `frame`'s order."""
    if design.kind == "selection":
        return frame[design.column].alias("selected")
    key = pl.col(design.column).cast(pl.Float64).fill_nan(None)
    if rule.coverage is not None:
        units = pl.col("weight")
        limit = rule.coverage * frame["weight"].sum()
    else:
        units = pl.col("persons") if rule.per_person else pl.col("weight")
        # How many transfers the budget buys: a count, compared with summed sampling weights.
        limit = float(rule.budget / rule.transfer)
    # Ties break by household_id: its order is computed once by the caller (`ID_ORDER`) when
    # several designs are ranked, since sorting millions of strings is the slow part.
    tie = pl.col(ID_ORDER) if ID_ORDER in frame.columns else pl.col("household_id").rank("ordinal")
    # Unscored last: as infinity, which sorts much faster than nulls_last on two columns.
    last = key.fill_null(float("inf"))
    order = frame.select(pl.arg_sort_by([last, tie]).alias("order"))["order"]
    units_in_order = frame.select(units.gather(order).cum_sum().alias("cum"))["cum"]
    scored = frame.select(key.is_not_null().gather(order).alias("scored"))["scored"]
    chosen = scored & (units_in_order <= limit * (1 + TOLERANCE))
    # Back to the frame's order: scatter the choice to the positions it was taken from.
    return pl.repeat(False, frame.height, eager=True).alias("selected").scatter(order, chosen)
