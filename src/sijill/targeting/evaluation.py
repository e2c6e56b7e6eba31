"""How wrong each targeting design is, and for whom: errors, coverage, leakage, the
Coady-Grosh-Hoddinott indicator, ROC/AUC and the poverty reduction a budget buys, overall and
split by group, several designs side by side.

Input: one row per household with `household_id`, `welfare` (reference per-capita
consumption: a survey's, or the synthetic country's truth), `weight` (sampling weight, 1.0 for
a census), `hh_size`, the group columns, and one column per design: a ranking key (lower =
poorer = selected first, e.g. predicted log consumption) or a Boolean selection.

Weights. A figure about people counts persons (`weight x hh_size`): poverty is a state of
persons, and a household-weighted error would count a poor family of nine like a poor person
living alone. A figure about households counts households (`weight`): coverage, which is how a
programme states its size. A figure about money counts the transfers paid (`weight x` the
household's transfer). `DEFINITIONS` says which for each figure, and the report prints it.

Reference poor: per-capita welfare below the poverty line when one is given; else the poorest
quintile of persons, and the line is then the lowest welfare outside it (so "below the line"
and "in the poorest quintile" are the same households and FGT has a line to measure gaps to).

Small cells: a group cell of fewer than `min_cell` households has every figure hidden. Within a
split, hidden cells are complemented by the next smallest cells until at least two are hidden
and together hold `min_cell` households (their sum follows from the total and the shown cells).
"""

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import polars as pl

from sijill.core.errors import InvalidInput
from sijill.targeting.roc import ranking_order, roc_by_cell
from sijill.targeting.selection import (
    CGH_SHARE,
    ID_ORDER,
    DesignColumn,
    Rule,
    select,
    size_band,
    with_reference,
)

GROUPS = (
    "governorate_code",
    "female_head",
    "has_refugee",
    "has_stateless",
    "has_disability",
    "hh_size_band",
)
ALL = "all"
MISSING = "(missing)"

_AUC = {"cell": pl.String, "auc": pl.Float64, "design": pl.String}
_ROC_SCHEMA = {
    "design": pl.String,
    "group": pl.String,
    "cell": pl.String,
    "step": pl.Int64,
    "fpr": pl.Float64,
    "tpr": pl.Float64,
}
_ROC = list(_ROC_SCHEMA)
MEASURES = (
    "selected_share",
    "inclusion_error",
    "exclusion_error",
    "coverage_poor",
    "coverage_poorest_quintile",
    "leakage",
    "cgh",
    "auc",
    "fgt0_before",
    "fgt0_after",
    "fgt0_reduction",
    "fgt1_before",
    "fgt1_after",
    "fgt1_reduction",
)
DEFINITIONS = {
    "households": "Households in the cell (records, unweighted): what small cells are judged by.",
    "selected_share": "Share of households selected (households, weight).",
    "inclusion_error": "Share of the persons in selected households who are not poor "
    "(persons, weight x household size).",
    "exclusion_error": "Share of poor persons whose household is not selected "
    "(persons, weight x household size).",
    "coverage_poor": "Share of poor persons whose household is selected: 1 - exclusion error "
    "(persons, weight x household size).",
    "coverage_poorest_quintile": "Share of the persons of the poorest fifth (of the whole "
    "population, by per-capita welfare) whose household is selected (persons, weight x "
    "household size).",
    "leakage": "Share of the money transferred that reaches households that are not poor "
    "(money, weight x the household's transfer).",
    "cgh": "Coady-Grosh-Hoddinott indicator: share of the money transferred that reaches the "
    "poorest 40% of persons, divided by 0.4; 1 is no better than a lottery, higher is better "
    "(money, weight x the household's transfer).",
    "auc": "Area under the ROC curve of a ranking against poor or not: the chance that a poor "
    "person is ranked before a person who is not poor, ties counting half; 1 perfect, 0.5 no "
    "better than chance, 0 reversed (persons, weight x household size).",
    "fgt0": "Headcount ratio: share of persons below the line, before and after adding the "
    "transfer to the selected households' per-capita welfare (persons, weight x household "
    "size).",
    "fgt1": "Poverty gap index: mean over persons of (line - welfare) / line for those below "
    "the line, 0 otherwise, before and after the transfer (persons, weight x household size).",
    "reduction": "Before minus after: the poverty reduction the transfers buy.",
}


@dataclass(frozen=True)
class Evaluation:
    measures: pl.DataFrame  # design, group, cell, suppressed, households, MEASURES
    roc: pl.DataFrame  # design, group, cell, fpr, tpr (ranking designs, shown cells)
    designs: pl.DataFrame  # design, kind, column, selected, spent, within_budget
    rule: Rule
    poverty_line: Decimal | None
    line: float  # the line FGT and "poor" used: the given one, or the poorest quintile's
    min_cell: int
    groups: tuple[str, ...]


def evaluate(
    frame: pl.DataFrame,
    designs: list[DesignColumn],
    rule: Rule,
    *,
    min_cell: int,
    poverty_line: Decimal | None = None,
    groups: tuple[str, ...] = GROUPS,
    roc_points: int = 200,
) -> Evaluation:
    """Every figure of every design, overall and by each group column (see the module)."""
    if min_cell < 1:
        raise InvalidInput(f"The minimum cell size must be at least 1, not {min_cell}")
    if not designs:
        raise InvalidInput("Name at least one design to evaluate")
    names = [design.name for design in designs]
    if len(set(names)) != len(names):
        raise InvalidInput("Two designs have the same name")
    base = _checked(frame, designs, groups)
    base, line = with_reference(base, poverty_line)
    long, summary = [], []
    for design in designs:
        selected = select(base, design, rule)
        long.append(_design_products(base, design, selected, rule, line))
        summary.append(_summary(base, design, selected, rule))
    # Designs and cells as small integers while millions of rows are grouped.
    per_design = pl.concat(long).with_columns(pl.col("design").cast(pl.Enum(names)))
    per_household = _household_products(base, line)
    keys = {d.name: _key(base, d).to_numpy() for d in designs if d.kind == "ranking"}
    rankings = {name: (key, ranking_order(key)) for name, key in keys.items()}
    poor = base.select(pl.when("poor").then("persons").otherwise(0.0)).to_series().to_numpy()
    other = base["persons"].to_numpy() - poor
    measures, roc = [], []
    for group in (ALL, *groups):
        cell = (pl.lit(ALL) if group == ALL else pl.col(group).cast(pl.String)).fill_null(MISSING)
        labels = base.select(cell.unique()).to_series().sort().to_list()
        numbers = range(len(labels))
        codes = base.with_columns(code=cell.replace_strict(labels, numbers, return_dtype=pl.UInt32))
        codes = codes["code"].to_numpy()
        figures = _figures(
            per_design.with_columns(cell=np.tile(codes, len(designs))),
            per_household.with_columns(cell=codes),
        ).with_columns(
            pl.col("design").cast(pl.String),
            pl.lit(group).alias("group"),
            pl.col("cell").replace_strict(numbers, labels, return_dtype=pl.String),
        )
        counts = figures.filter(pl.col("design") == names[0]).select("cell", "households")
        hidden = list(hidden_cells(dict(counts.iter_rows()), min_cell))
        areas, curves = [], []
        for name, (key, order) in rankings.items():
            area, curve = roc_by_cell(key, poor, other, codes, labels, roc_points, order)
            areas.append(area.with_columns(design=pl.lit(name)))
            curves.append(curve.with_columns(design=pl.lit(name), group=pl.lit(group)))
        auc = pl.concat(areas) if areas else pl.DataFrame(schema=_AUC)
        figures = figures.join(auc, on=["design", "cell"], how="left")
        measures.append(_suppress(figures, hidden))
        roc += [curve.filter(~pl.col("cell").is_in(hidden)) for curve in curves]
    design_order = pl.col("design").replace_strict({name: i for i, name in enumerate(names)})
    group_order = pl.col("group").replace_strict({g: i for i, g in enumerate((ALL, *groups))})
    return Evaluation(
        measures=pl.concat(measures).sort(design_order, group_order, pl.col("cell")),
        roc=pl.concat(roc, how="diagonal")
        .select(_ROC)
        .sort(design_order, group_order, pl.col("cell"), pl.col("step"))
        if roc
        else pl.DataFrame(schema=_ROC_SCHEMA),
        designs=pl.DataFrame(summary, schema_overrides={"within_budget": pl.Boolean}),
        rule=rule,
        poverty_line=poverty_line,
        line=line,
        min_cell=min_cell,
        groups=groups,
    )


def _checked(
    frame: pl.DataFrame, designs: list[DesignColumn], groups: tuple[str, ...]
) -> pl.DataFrame:
    """The columns the evaluation reads, typed, after the checks a wrong input fails."""
    if "hh_size_band" in groups and "hh_size_band" not in frame.columns and "hh_size" in frame:
        frame = frame.with_columns(size_band(pl.col("hh_size")).alias("hh_size_band"))
    needed = ["household_id", "welfare", "weight", "hh_size", *groups]
    needed += [design.column for design in designs]
    missing = [column for column in dict.fromkeys(needed) if column not in frame.columns]
    if missing:
        raise InvalidInput(f"The households frame lacks the column(s): {', '.join(missing)}")
    if frame.height == 0:
        raise InvalidInput("The households frame is empty")
    for design in designs:
        dtype = frame.schema[design.column]
        if design.kind == "selection" and dtype != pl.Boolean:
            raise InvalidInput(f"Design {design.name}: column {design.column} is not Boolean")
        if design.kind == "selection" and frame[design.column].null_count():
            raise InvalidInput(f"Design {design.name}: column {design.column} has empty values")
        if design.kind == "ranking" and not dtype.is_numeric():
            raise InvalidInput(f"Design {design.name}: column {design.column} is not a number")
    welfare, weight, size = pl.col("welfare"), pl.col("weight"), pl.col("hh_size")
    bad = frame.select(
        id_null=pl.col("household_id").null_count(),
        id_repeated=pl.len() - pl.col("household_id").n_unique(),
        welfare=(welfare.is_null() | ~welfare.cast(pl.Float64).is_finite()).sum(),
        weight=(weight.is_null() | ~(weight.cast(pl.Float64) > 0)).sum(),
        hh_size=(size.is_null() | ~(size >= 1)).sum(),
    ).row(0, named=True)
    reasons = {
        "id_null": "household_id is empty",
        "id_repeated": "household_id is repeated",
        "welfare": "welfare is empty or not a finite number",
        "weight": "weight is empty or not above 0",
        "hh_size": "hh_size is empty or below 1",
    }
    for key, count in bad.items():
        if count:
            raise InvalidInput(f"{count} household row(s): {reasons[key]}")
    base = ["household_id", "welfare", "weight", "hh_size", "persons", ID_ORDER]
    kept = [column for column in dict.fromkeys(needed[4:]) if column not in base]
    return frame.select(
        pl.col("household_id").cast(pl.String),
        welfare.cast(pl.Float64),
        weight.cast(pl.Float64),
        size.cast(pl.Float64),
        (weight * size).cast(pl.Float64).alias("persons"),
        pl.col("household_id").cast(pl.String).rank("ordinal").alias(ID_ORDER),
        *kept,
    )


def _transfer(rule: Rule) -> pl.Expr:
    """Each selected household's transfer. Floats from here on: the poverty simulation adds it
    to float welfare; amounts that are reported as money are summed as Decimal (`_summary`)."""
    amount = float(rule.transfer)
    return pl.col("hh_size") * amount if rule.per_person else pl.lit(amount)


def _key(frame: pl.DataFrame, design: DesignColumn) -> pl.Series:
    """A ranking's key as floats, NaN where unscored (null or NaN)."""
    return frame[design.column].cast(pl.Float64).fill_nan(None).fill_null(float("nan"))


def _gap(welfare: pl.Expr, line: float) -> pl.Expr:
    return ((line - welfare) / line).clip(lower_bound=0.0)


def _household_products(frame: pl.DataFrame, line: float) -> pl.DataFrame:
    """What the figures sum that no design changes, one row per household."""
    persons = pl.col("persons")
    return frame.select(
        w=pl.col("weight"),
        p=persons,
        p_poor=persons * pl.col("poor").cast(pl.Float64),
        p_q1=persons * pl.col("poorest_quintile").cast(pl.Float64),
        f0b=persons * (pl.col("welfare") < line).cast(pl.Float64),
        f1b=persons * _gap(pl.col("welfare"), line),
    )


def _design_products(
    frame: pl.DataFrame, design: DesignColumn, selected: pl.Series, rule: Rule, line: float
) -> pl.DataFrame:
    """What the figures sum for one design, one row per household: products of 0/1 flags,
    so a split is plain sums (one pass, faster than filtered sums)."""
    chosen, poor = selected.cast(pl.Float64), pl.col("poor").cast(pl.Float64)
    persons, paid = pl.col("persons") * chosen, pl.col("weight") * chosen * _transfer(rule)
    after = pl.col("welfare") + chosen * _transfer(rule) / pl.col("hh_size")
    return frame.select(
        pl.lit(design.name).alias("design"),
        w_sel=pl.col("weight") * chosen,
        p_sel=persons,
        p_sel_nonpoor=persons * (1 - poor),
        p_poor_sel=persons * poor,
        p_q1_sel=persons * pl.col("poorest_quintile").cast(pl.Float64),
        m=paid,
        m_nonpoor=paid * (1 - poor),
        m_b40=paid * pl.col("bottom_40").cast(pl.Float64),
        f0a=pl.col("persons") * (after < line).cast(pl.Float64),
        f1a=pl.col("persons") * _gap(after, line),
    )


def _summary(frame: pl.DataFrame, design: DesignColumn, selected: pl.Series, rule: Rule) -> dict:
    chosen = frame.filter(selected)
    units = chosen["persons" if rule.per_person else "weight"].sum()
    # The weighted number of transfers is a float (weights are); the amount is Decimal.
    spent = rule.transfer * Decimal(repr(float(units)))
    return {
        "design": design.name,
        "kind": design.kind,
        "column": design.column,
        "selected": chosen.height,
        "selected_households": float(chosen["weight"].sum()),
        "selected_persons": float(chosen["persons"].sum()),
        "spent": spent,
        "within_budget": None if rule.budget is None else bool(spent <= rule.budget),
    }


def _ratio(numerator: str, denominator: str) -> pl.Expr:
    return pl.when(pl.col(denominator) > 0).then(pl.col(numerator) / pl.col(denominator))


def _figures(per_design: pl.DataFrame, per_household: pl.DataFrame) -> pl.DataFrame:
    fixed = per_household.group_by("cell").agg(pl.len().alias("households"), pl.all().sum())
    sums = per_design.group_by("design", "cell").agg(pl.all().sum()).join(fixed, on="cell")
    return sums.select(
        "design",
        "cell",
        "households",
        selected_share=_ratio("w_sel", "w"),
        inclusion_error=_ratio("p_sel_nonpoor", "p_sel"),
        exclusion_error=1 - _ratio("p_poor_sel", "p_poor"),
        coverage_poor=_ratio("p_poor_sel", "p_poor"),
        coverage_poorest_quintile=_ratio("p_q1_sel", "p_q1"),
        leakage=_ratio("m_nonpoor", "m"),
        cgh=_ratio("m_b40", "m") / CGH_SHARE,
        fgt0_before=_ratio("f0b", "p"),
        fgt0_after=_ratio("f0a", "p"),
        fgt1_before=_ratio("f1b", "p"),
        fgt1_after=_ratio("f1a", "p"),
    ).with_columns(
        fgt0_reduction=pl.col("fgt0_before") - pl.col("fgt0_after"),
        fgt1_reduction=pl.col("fgt1_before") - pl.col("fgt1_after"),
    )


def hidden_cells(households: dict[str, int], min_cell: int) -> set[str]:
    """The cells of one split to hide: those under `min_cell` households, and the smallest
    others until at least two are hidden and together hold `min_cell` households, unless
    every cell is hidden."""
    hidden = {cell for cell, count in households.items() if count < min_cell}
    while (
        hidden
        and len(hidden) < len(households)
        and (len(hidden) == 1 or sum(households[cell] for cell in hidden) < min_cell)
    ):
        shown = [cell for cell in households if cell not in hidden]
        hidden.add(min(shown, key=lambda cell: (households[cell], cell)))
    return hidden


def _suppress(figures: pl.DataFrame, hidden: list[str]) -> pl.DataFrame:
    suppressed = pl.col("cell").is_in(hidden)
    return figures.select(
        "design",
        "group",
        "cell",
        suppressed.alias("suppressed"),
        *[
            pl.when(~suppressed).then(pl.col(column)).alias(column)
            for column in ("households", *MEASURES)
        ],
    )
