"""Hybrid targeting designs: a proxy means test adjusted by deprivation or by category.

A design is configuration (YAML or a mapping) with a `name`, a `kind` and its parameters, run
over a frame of the feature view plus two scores: `pmt_score` (predicted log consumption per
person: lower is poorer) and `mpi_score` (the Alkire-Foster deprivation score c_i: higher is
poorer). Each design gives every household a `score`, a `rank` (1 is selected first) and,
when the design has a cut-off or a coverage, `selected`. Three kinds:

- `relaxed_cutoff` (cutoff, relaxed_cutoff, min_deprivation): selected when
  `pmt_score < cutoff OR (mpi_score >= min_deprivation AND pmt_score < relaxed_cutoff)`, as
  Palestine's cash transfer adjusts its PMT. The score is the PMT score lowered by
  `relaxed_cutoff - cutoff` for the deprived, so `score < cutoff` is exactly the rule and a
  ranking by score agrees with it. A household without an MPI score is not relaxed.
- `override` (where, optional cutoff): every household the `where` expression holds for
  (e.g. `has_severe_disability`) ranks before all others, by PMT among themselves; the others
  follow by PMT. With a cutoff, the overridden are selected whatever their PMT and the others
  below the cutoff. The score is the PMT.
- `rank_combination` (pmt_weight, optional coverage): score = w x rank of the PMT (poorest
  first) + (1 - w) x rank of the deprivation score (most deprived first), each rank divided
  by the number of households ranked (ties share their average rank); with a coverage, the
  first round(coverage x households ranked) are selected.

Ties in score break by `household_id` (ascending, as text), so a ranking never depends on
row order. A household without a score the design needs has no rank and is not selected
(an override still selects it). The design's kind and parameters travel with its result.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import polars as pl

from sijill.core.errors import FieldError, InvalidInput
from sijill.core.files import read_json, read_yaml
from sijill.targeting.expressions import Expression, ExpressionError, check, evaluate

ID = "household_id"
PMT = "pmt_score"
MPI = "mpi_score"
KINDS = {
    "relaxed_cutoff": ({"cutoff", "relaxed_cutoff", "min_deprivation"}, set()),
    "override": ({"where"}, {"cutoff"}),
    "rank_combination": ({"pmt_weight"}, {"coverage"}),
}
_COMMON = {"name", "kind", "labels", "description"}


class DesignError(InvalidInput):
    """A design that cannot be used; `errors` holds every problem found."""


@dataclass(frozen=True)
class Design:
    name: str
    kind: str
    parameters: dict[str, Any]  # as checked, JSON-ready: what the selection was decided from
    where: Expression | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "parameters": dict(self.parameters)}


@dataclass
class DesignResult:
    design: Design
    frame: pl.DataFrame = field(repr=False)  # household_id, score, rank, selected
    households: int
    ranked: int
    selected: int | None  # None when the design has no cut-off or coverage

    def describe(self) -> dict[str, Any]:
        return {
            **self.design.describe(),
            "households": self.households,
            "ranked": self.ranked,
            "selected": self.selected,
        }


def load_designs(path: Path, columns: Mapping[str, str]) -> list[Design]:
    """The designs of a YAML or JSON file: one design, or `designs:` with a list of them."""
    document = read_json(path) if path.suffix.lower() == ".json" else read_yaml(path)
    if isinstance(document, dict) and "designs" in document:
        items = document["designs"]
        if not isinstance(items, list) or not items or set(document) != {"designs"}:
            raise DesignError(f"{path.name}: designs: must be the only key, a non-empty list")
        designs = [
            parse_design(item, columns, source=path.name, at=f"designs[{n}]")
            for n, item in enumerate(items)
        ]
    else:
        designs = [parse_design(document, columns, source=path.name)]
    names = [d.name for d in designs]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise DesignError(f"{path.name}: two designs are named {duplicate}")
    return designs


def parse_design(
    document: Any, columns: Mapping[str, str], *, source: str = "design", at: str = ""
) -> Design:
    """Check one design; `columns` (name -> number|boolean|text) are what `where` may read."""
    prefix = f"{at}." if at else ""
    problems: list[FieldError] = []

    def problem(key: str, message: str) -> None:
        problems.append(FieldError(f"{prefix}{key}", message))

    if not isinstance(document, dict):
        raise DesignError(f"{source}: {at or 'design'}: must be a mapping")
    name = document.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        problem("name", "must be a name of at most 64 characters")
    kind = document.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        problem("kind", f"must be one of {', '.join(KINDS)}")
        _raise(source, problems)
    required, optional = KINDS[kind]
    for key in document:
        if key not in _COMMON | required | optional:
            known = ", ".join(sorted(_COMMON | required | optional))
            problem(key, f"unknown key for a {kind} design (known: {known})")
    for key in sorted(required - set(document)):
        problem(key, f"is required for a {kind} design")
    parameters: dict[str, Any] = {}
    for key in sorted((required | optional) & set(document) - {"where"}):
        value = document[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            problem(key, "must be a number")
        else:
            parameters[key] = value
    where = None
    if "where" in document:
        try:
            where = check(document["where"], columns, expect="boolean")
            parameters["where"] = document["where"]
        except ExpressionError as error:
            problem("where", str(error))
    _check_ranges(parameters, problem)
    labels = document.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        problem("labels", "must map a language to a label")
    _raise(source, problems)
    return Design(name.strip(), kind, parameters, where, dict(labels))


def _check_ranges(parameters: dict[str, Any], problem) -> None:
    def within(key: str, low: float, high: float, low_open: bool) -> None:
        value = parameters.get(key)
        if value is None:
            return
        if not ((low < value) if low_open else (low <= value)) or value > high:
            bracket = "(" if low_open else "["
            problem(key, f"must be in {bracket}{low}, {high}], not {value}")

    within("min_deprivation", 0, 1, True)
    within("pmt_weight", 0, 1, False)
    within("coverage", 0, 1, True)
    low, high = parameters.get("cutoff"), parameters.get("relaxed_cutoff")
    if low is not None and high is not None and high < low:
        problem("relaxed_cutoff", f"must be at least the cutoff {low}, not {high}")


def _raise(source: str, problems: list[FieldError]) -> None:
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DesignError(f"{source}: {first.field}: {first.message}{more}", problems)


def apply_design(frame: pl.DataFrame, design: Design) -> DesignResult:
    """Score, rank and (with a cut-off or coverage) select every household of `frame`."""
    needed = {ID, PMT} | ({MPI} if design.kind != "override" else set())
    needed |= design.where.columns if design.where else set()
    missing = sorted(needed - set(frame.columns))
    if missing:
        raise InvalidInput(f"design {design.name}: the frame has no column {', '.join(missing)}")
    if frame[ID].n_unique() != frame.height:
        raise InvalidInput(f"design {design.name}: a household appears twice in the frame")
    p = design.parameters
    pmt = pl.col(PMT).cast(pl.Float64)
    selected: pl.Expr | None = None
    if design.kind == "relaxed_cutoff":
        deprived = pl.col(MPI).cast(pl.Float64).fill_null(-1.0) >= p["min_deprivation"]
        relief = float(p["relaxed_cutoff"]) - float(p["cutoff"])
        work = frame.select(ID, score=pl.when(deprived).then(pmt - relief).otherwise(pmt))
        # Compared with the rule itself, not through `score`: subtracting can round across
        # the cut-off, and the rule is what the design promises.
        rule = (pmt < p["cutoff"]) | (deprived & (pmt < p["relaxed_cutoff"]))
        work = work.with_columns(_selected=frame.select(rule.fill_null(False)).to_series())
        order = [pl.col("score"), pl.col(ID)]
        descending = [False, False]
        selected = pl.col("_selected")
    elif design.kind == "override":
        forced = evaluate(frame, {"f": design.where})["f"].fill_null(False)
        work = frame.select(ID, score=pmt).with_columns(_forced=forced)
        # Overridden households without a score come last among them: an explicit key, as
        # Polars' nulls_last makes a sort several times slower.
        order = [pl.col("_forced"), pl.col("score").is_null(), pl.col("score"), pl.col(ID)]
        descending = [True, False, False, False]
        if "cutoff" in p:
            selected = pl.col("_forced") | (pl.col("score") < p["cutoff"]).fill_null(False)
    else:
        w = float(p["pmt_weight"])
        both = pl.col(PMT).is_not_null() & pl.col(MPI).is_not_null()
        n = both.sum()
        # Ranked among the households with both scores; a null ranks as null.
        rank_pmt = pl.when(both).then(pmt).rank("average") / n
        rank_mpi = (
            pl.when(both).then(pl.col(MPI).cast(pl.Float64)).rank("average", descending=True) / n
        )
        work = frame.select(ID, score=w * rank_pmt + (1 - w) * rank_mpi)
        order = [pl.col("score"), pl.col(ID)]
        descending = [False, False]
    rankable = pl.col("score").is_not_null()
    if design.kind == "override":
        rankable = rankable | pl.col("_forced")
    work = work.with_row_index("_row").with_columns(_rankable=rankable)
    ranked = (
        work.filter("_rankable")
        .sort(order, descending=descending)
        .with_row_index("rank", offset=1)
        .select("_row", "rank")
    )
    work = work.join(ranked, on="_row", how="left").sort("_row")
    n_ranked = ranked.height
    if design.kind == "rank_combination" and "coverage" in p:
        quota = int(Fraction(str(p["coverage"])) * n_ranked + Fraction(1, 2))
        selected = pl.col("rank").le(quota).fill_null(False)
    columns = [ID, "score", pl.col("rank").cast(pl.Int64)]
    if selected is not None:
        columns.append(selected.fill_null(False).alias("selected"))
    out = work.select(columns)
    count = int(out["selected"].sum()) if "selected" in out.columns else None
    return DesignResult(design, out, frame.height, n_ranked, count)
