"""Multidimensional poverty by the Alkire-Foster method, over the household feature view.

Identification: each indicator's `deprived_when` is evaluated for every household at once
(DuckDB over the frame's Arrow buffers); a household's deprivation score c_i is the sum of
the weights of the indicators it is deprived in, and it is poor when c_i >= k. The sum is
taken in whole units of the weights' common denominator, so a household at exactly k (two of
six thirds) is poor whatever floating point would say.

Aggregation: every household stands for its members (`hh_size`) times its sampling weight
when there is one (a survey), since the global MPI counts people, not households:

- H, the headcount ratio: the share of people who are poor;
- A, the intensity: the average score among the poor;
- M0 = H x A, the adjusted headcount ratio: the weighted sum of the censored headcounts;
- per indicator, the uncensored headcount (deprived, poor or not), the censored headcount
  (deprived and poor) and its share of M0 in percent (weight x censored / M0);
- per group of a column (area, sex of head, ...): its population share, H, A, M0, and its
  contribution to the national M0 (share x M0 of the group / M0), which add up to 100.

Small groups: a group of fewer than `min_households` households has every figure hidden; then
more groups are hidden, smallest first, until at least two are hidden and they hold at least
`min_households` together (the registry's own rule, `analytics.disclosure`), so the national
figure minus the shown groups gives back neither a hidden group nor a small sum of them.

A household with a null in an indicator marked `if_null: exclude` has no score and counts in
none of the measures; the result says how many.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from sijill.core.errors import InvalidInput
from sijill.targeting.expressions import evaluate
from sijill.targeting.mpi_config import MpiConfig

ID = "household_id"
SIZE = "hh_size"
SCORE = "mpi_score"
POOR = "mpi_poor"
_W = "_people"  # members x sampling weight


def deprived(indicator: str) -> str:
    return f"deprived_{indicator}"


@dataclass(frozen=True)
class Measures:
    households: int | None
    population: float | None  # people the households stand for (weighted)
    # H, A and M0 (as in JSON): the headcount ratio, the intensity, the adjusted headcount.
    h: float | None
    a: float | None
    m0: float | None


@dataclass(frozen=True)
class IndicatorMeasures:
    name: str
    dimension: str
    weight: float
    uncensored: float | None
    censored: float | None
    contribution: float | None  # percent of M0


@dataclass(frozen=True)
class GroupMeasures:
    value: Any
    hidden: bool
    households: int | None
    population_share: float | None
    h: float | None
    a: float | None
    m0: float | None
    contribution: float | None  # percent of the national M0


@dataclass
class MpiResult:
    config: MpiConfig
    national: Measures
    indicators: list[IndicatorMeasures]
    decompositions: dict[str, list[GroupMeasures]]
    excluded: int  # households left out for a null in an `if_null: exclude` indicator
    min_households: int
    households: pl.DataFrame = field(repr=False)  # household_id, deprived_*, score, poor

    def to_dict(self) -> dict[str, Any]:
        """Every aggregate, JSON-ready (the per-household frame is left to the caller)."""
        return {
            "config": self.config.describe(),
            "config_digest": self.config.digest,
            "min_households": self.min_households,
            "excluded_households": self.excluded,
            "national": _named(self.national),
            "indicators": [asdict(i) for i in self.indicators],
            "decompositions": {
                column: [_named(g) for g in groups]
                for column, groups in self.decompositions.items()
            },
        }


def _named(measures: Measures | GroupMeasures) -> dict[str, Any]:
    """The measures under the names the literature gives them."""
    names = {"h": "H", "a": "A", "m0": "M0"}
    return {names.get(key, key): value for key, value in asdict(measures).items()}


def household_scores(features: pl.DataFrame, config: MpiConfig) -> pl.DataFrame:
    """Per household: `household_id`, `deprived_<indicator>` for each indicator that counts
    (a null filled by the indicator's `if_null`, kept null when it excludes), `mpi_score`
    (c_i) and `mpi_poor` (c_i >= k), both null for an excluded household."""
    needed = {ID} | {c for i in config.indicators for c in i.deprived_when.columns}
    _require(features, needed)
    indicators = config.indicators
    raw = evaluate(features, {deprived(i.name): i.deprived_when for i in indicators}, keep=(ID,))
    unit = config.denominator
    filled = []
    excluded = pl.lit(False)
    units = []
    for indicator in indicators:
        column = pl.col(deprived(indicator.name))
        if indicator.if_null == "exclude":
            excluded = excluded | column.is_null()
        else:
            column = column.fill_null(indicator.if_null == "deprived")
        filled.append(column.alias(deprived(indicator.name)))
        whole = int(indicator.weight * unit)  # exact: unit is a multiple of its denominator
        units.append(pl.when(column).then(pl.lit(whole, pl.Int64)).otherwise(0))
    threshold = int(config.k * unit)
    scored = raw.with_columns(
        _units=pl.when(excluded).then(None).otherwise(pl.sum_horizontal(units))
    )
    # Numpy divides correctly rounded; Polars multiplies by the reciprocal (7 / 10 would give
    # 0.7000000000000001, and a hybrid design's "mpi_score >= 0.7" would pass it).
    score = scored["_units"].cast(pl.Float64).to_numpy() / unit
    return scored.select(
        ID,
        *filled,
        pl.Series(SCORE, score, nan_to_null=True),
        (pl.col("_units") >= threshold).alias(POOR),
    )


def compute(
    features: pl.DataFrame,
    config: MpiConfig,
    *,
    min_households: int,
    by: Sequence[str] = (),
    sampling_weight: str | None = None,
) -> MpiResult:
    """Scores every household and aggregates: national H, A, M0, each indicator's headcounts
    and contribution, and a decomposition by each column of `by`."""
    _require(features, {SIZE, *by, *([sampling_weight] if sampling_weight else [])})
    scores = household_scores(features, config)
    people = features[SIZE].cast(pl.Float64).fill_null(0)
    if sampling_weight:
        sampling = features[sampling_weight].cast(pl.Float64)
        if sampling.null_count() or (sampling < 0).any():
            raise InvalidInput(f"the sampling weight {sampling_weight} is missing or negative")
        people = people * sampling
    frame = scores.with_columns(people.alias(_W), *(features[g] for g in by))
    frame = frame.filter(pl.col(SCORE).is_not_null())
    excluded = scores.height - frame.height
    totals = frame.select(*_sums(), n=pl.len()).row(0, named=True)
    national_hidden = totals["n"] < min_households
    national = _measures(totals, national_hidden)
    indicators = _indicator_measures(frame, config, totals, national_hidden)
    decompositions = {
        column: _decompose(frame, column, totals, national, min_households) for column in by
    }
    return MpiResult(config, national, indicators, decompositions, excluded, min_households, scores)


def _sums() -> list[pl.Expr]:
    w = pl.col(_W)
    poor = pl.col(POOR).cast(pl.Float64)
    return [
        w.sum().alias("people"),
        (w * poor).sum().alias("poor"),
        (w * poor * pl.col(SCORE)).sum().alias("intensity"),
    ]


def _measures(sums: dict[str, Any], hidden: bool) -> Measures:
    if hidden:
        return Measures(None, None, None, None, None)
    people, poor, intensity = sums["people"], sums["poor"], sums["intensity"]
    return Measures(
        households=sums["n"],
        population=people,
        h=poor / people if people else None,
        a=intensity / poor if poor else None,
        m0=intensity / people if people else None,
    )


def _indicator_measures(
    frame: pl.DataFrame, config: MpiConfig, totals: dict[str, Any], hidden: bool
) -> list[IndicatorMeasures]:
    indicators = config.indicators
    w = pl.col(_W)
    poor = pl.col(POOR).cast(pl.Float64)
    sums = frame.select(
        *[
            (w * pl.col(deprived(i.name)).cast(pl.Float64)).sum().alias(f"u{n}")
            for n, i in enumerate(indicators)
        ],
        *[
            (w * poor * pl.col(deprived(i.name)).cast(pl.Float64)).sum().alias(f"c{n}")
            for n, i in enumerate(indicators)
        ],
    ).row(0, named=True)
    people = totals["people"]
    m0 = totals["intensity"] / people if people else None
    result = []
    for n, indicator in enumerate(indicators):
        censored = sums[f"c{n}"] / people if people else None
        shown = not hidden and people > 0
        result.append(
            IndicatorMeasures(
                name=indicator.name,
                dimension=indicator.dimension,
                weight=float(indicator.weight),
                uncensored=sums[f"u{n}"] / people if shown else None,
                censored=censored if shown else None,
                contribution=(
                    100 * float(indicator.weight) * censored / m0 if shown and m0 else None
                ),
            )
        )
    return result


def _decompose(
    frame: pl.DataFrame,
    column: str,
    totals: dict[str, Any],
    national: Measures,
    min_households: int,
) -> list[GroupMeasures]:
    groups = frame.group_by(column).agg(*_sums(), n=pl.len()).sort(column, nulls_last=True)
    rows = groups.rows(named=True)
    hidden = hidden_groups([row["n"] for row in rows], min_households)
    result = []
    for index, row in enumerate(rows):
        if index in hidden:
            result.append(GroupMeasures(row[column], True, None, None, None, None, None, None))
            continue
        measures = _measures(row, False)
        share = row["people"] / totals["people"] if totals["people"] else None
        contribution = None
        if national.m0 and measures.m0 is not None and share is not None:
            contribution = 100 * share * measures.m0 / national.m0
        result.append(
            GroupMeasures(
                value=row[column],
                hidden=False,
                households=row["n"],
                population_share=share,
                h=measures.h,
                a=measures.a,
                m0=measures.m0,
                contribution=contribution,
            )
        )
    return result


def hidden_groups(households: Sequence[int], min_households: int) -> set[int]:
    """The positions of the groups to hide: those under `min_households`, then the smallest
    others until at least two are hidden holding `min_households` or more together (the
    national figure minus the shown groups then gives back neither one group nor a small
    sum); ties go to the earlier group."""
    if min_households <= 1:
        return set()
    hidden = {i for i, n in enumerate(households) if n < min_households}
    order = sorted(range(len(households)), key=lambda i: (households[i], i))
    while hidden and (len(hidden) < 2 or sum(households[i] for i in hidden) < min_households):
        shown = [i for i in order if i not in hidden]
        if not shown:
            break
        hidden.add(shown[0])
    return hidden


def _require(features: pl.DataFrame, columns: set[str]) -> None:
    missing = sorted(columns - set(features.columns))
    if missing:
        raise InvalidInput(f"the features have no column {', '.join(missing)}")
