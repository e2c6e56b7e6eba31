"""The terms of a proxy means test and the design matrix they make of a feature frame.

A term is one column of the model, as it stands in the artifact:

- `number`: the feature's value (integers and decimals as they are);
- `log`: the natural log of the value, at least 1 (household size enters as its log, as in
  most PMTs: consumption per person falls less than proportionally with size);
- `boolean`: 1 when true, 0 when false;
- `code`: 1 when the feature's code is the term's `level`, else 0. Each code feature has a
  reference level, the most common one (by weight) in the survey, that has no term; a level
  seen in fewer than `MIN_LEVEL_HOUSEHOLDS` survey households has none either, so it counts as
  the reference: its own coefficient would rest on a handful of households.

Missing values are handled the same way here and in the score SQL (`pmt_sql`): a missing
number or boolean counts as the survey's weighted mean of that feature (the term's `fill`), so
it moves the score neither up nor down against an average household; a missing code counts as
the reference level, and so does a code the survey never saw.
"""

import numpy as np
import polars as pl

from sijill.core.errors import InvalidInput

MIN_LEVEL_HOUSEHOLDS = 10
KINDS = ("number", "log", "boolean", "code")
# Features left out of the default candidates, and why:
_NOT_CANDIDATES = {
    # Too many levels for a survey of a thousand households; governorate_code stays.
    "area_code",
    "district_code",
    # Sums or functions of other candidates: they add nothing and make the fit collinear.
    "n_children_0_17",
    "n_assets",
    "has_electricity",
    "improved_water",
    "improved_sanitation",
    "clean_cooking_fuel",
    "adequate_floor",
    "adequate_roof",
    "adequate_walls",
    "head_education",  # head_schooling_years carries the same levels as years
    # Receiving assistance is the outcome of targeting, not a proxy for need.
    "has_social_assistance",
    # A survey's households are not linked to payrolls: the fact is 0 there, not elsewhere.
    "n_formal_employment_facts",
    # Declared income is what a proxy means test stands in for (unverifiable, under-declared
    # where work is informal); a hybrid means test names it on purpose.
    "household_income_monthly",
    "income_per_capita_monthly",
}
LOGGED = frozenset({"hh_size"})


def default_candidates(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c != "household_id" and c not in _NOT_CANDIDATES]


def kind_of(frame: pl.DataFrame, feature: str) -> str:
    dtype = frame.schema[feature]
    if dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum):
        return "code"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "log" if feature in LOGGED else "number"
    raise InvalidInput(f"feature {feature} is neither a number, a boolean nor a code")


def candidate_terms(
    frame: pl.DataFrame, weight: np.ndarray, candidates: list[str]
) -> tuple[list[dict], dict[str, str]]:
    """Every term the candidates make on these rows (`frame` holds the survey's households),
    and the reference level of each code feature."""
    missing = [name for name in candidates if name not in frame.columns]
    if missing:
        raise InvalidInput(f"no feature named {', '.join(missing)}")
    terms, references = [], {}
    w = pl.Series("w", weight)
    for feature in candidates:
        kind = kind_of(frame, feature)
        column = frame[feature]
        if kind != "code":
            values = column.cast(pl.Float64)
            known = values.is_not_null()
            fill = float((values.filter(known) * w.filter(known)).sum() / w.filter(known).sum())
            terms.append(_term(feature, None, kind, fill if known.any() else 0.0))
            continue
        totals = (
            pl.DataFrame({"level": column, "w": w})
            .drop_nulls("level")
            .group_by("level")
            .agg(pl.col("w").sum(), pl.len().alias("n"))
            .sort(["w", "level"], descending=[True, False])
        )
        if totals.height == 0:
            continue
        references[feature] = totals["level"][0]
        for level, n in totals.slice(1).sort("level").select("level", "n").iter_rows():
            if n >= MIN_LEVEL_HOUSEHOLDS:
                terms.append(_term(feature, level, "code", None))
    return terms, references


def _term(feature: str, level: str | None, kind: str, fill: float | None) -> dict:
    return {"feature": feature, "level": level, "kind": kind, "fill": fill}


def column(term: dict) -> pl.Expr:
    """The term's column of the design matrix, as a Polars expression over the feature frame."""
    value = pl.col(term["feature"])
    kind = term["kind"]
    if kind == "code":
        return (value == term["level"]).fill_null(False).cast(pl.Float64)
    filled = value.cast(pl.Float64).fill_null(term["fill"])
    if kind == "log":
        return filled.clip(lower_bound=1.0).log()
    return filled


def design(frame: pl.DataFrame, terms: list[dict]) -> np.ndarray:
    """The design matrix (households x terms, no intercept column)."""
    if not terms:
        return np.zeros((frame.height, 0))
    exprs = [column(term).alias(f"t{i}") for i, term in enumerate(terms)]
    return frame.select(exprs).to_numpy().astype(np.float64)


def linear_predict(model: dict, frame: pl.DataFrame) -> np.ndarray:
    """The model's prediction (intercept + coefficients x design) for each household."""
    return model["intercept"] + design(frame, model["terms"]) @ np.array(
        [t["coefficient"] for t in model["terms"]], dtype=np.float64
    ).reshape(-1)


def predict(artifact: dict, frame: pl.DataFrame) -> np.ndarray:
    """Predicted log consumption per person: the region's model where there is one."""
    predicted = linear_predict(artifact, frame)
    regions = artifact.get("regions")
    if regions:
        codes = frame[regions["column"]]
        for model in regions["models"]:
            rows = (codes == model["code"]).fill_null(False).to_numpy()
            if rows.any():
                predicted[rows] = linear_predict(model, frame.filter(rows))
    return predicted


def independent(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Which columns of `x` (after an intercept) are not linear combinations of the columns
    before them, on these weighted rows: a constant or redundant column cannot be estimated."""
    if x.shape[1] == 0:
        return np.zeros(0, dtype=bool)
    full = np.column_stack([np.ones(len(x)), x]) * np.sqrt(weight)[:, None]
    diagonal = np.abs(np.diag(np.linalg.qr(full, mode="r")))
    norms = np.linalg.norm(full, axis=0)[: len(diagonal)]
    keep = np.zeros(full.shape[1], dtype=bool)  # beyond the rows' count: nothing left to add
    keep[: len(diagonal)] = diagonal > 1e-7 * np.where(norms > 0, norms, 1.0)
    return keep[1:]
