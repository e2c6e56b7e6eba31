"""A program's conditions (school attendance, health visits) and what compliance decides.

    conditions:
      - {name: school_attendance, reduce_by: 0.5, suspend_after: 3, reinstate_after: 1}

Per household, condition and cycle, from the compliance imported for that cycle:

- compliant: full pay;
- not compliant: the amount is reduced by `reduce_by` (a share of the full amount; the shares
  of several unmet conditions add up, to at most the whole amount);
- `suspend_after` consecutive non-compliant cycles: suspended (nothing paid) from the cycle
  that reaches it, and so on until the household has been compliant for `reinstate_after`
  consecutive cycles (default 1): that cycle it is reinstated and paid in full;
- no record for a household in a cycle: compliant, unless the condition says
  `missing: non_compliant` (a program that receives every household's record and treats a
  gap as a missed condition).

The streaks continue from the decisions of the cycle before (`compliance_decision`); a
household that had none there (new to the program, or that cycle not generated) starts afresh.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from sijill.programs.clauses import SpecError
from sijill.programs.entitlement_models import FULL, REDUCE, REINSTATED, SUSPEND

_FIELDS = {"name", "reduce_by", "suspend_after", "reinstate_after", "missing", "description"}
MICRO = 1_000_000  # shares are kept in millionths: exact integer arithmetic on money


@dataclass(frozen=True)
class Condition:
    name: str
    reduce_micro: int  # share of the amount withheld when not met, in millionths
    suspend_after: int | None
    reinstate_after: int
    missing_compliant: bool


def parse_conditions(document: dict[str, Any], where: str = "spec") -> tuple[Condition, ...]:
    """The conditions of a spec's document (`ProgramSpec.document`, or a stored version's)."""
    raw = document.get("conditions")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SpecError(f"{where}: conditions: a list of conditions")
    found: list[Condition] = []
    for index, item in enumerate(raw):
        place = f"{where}: conditions[{index}]"
        if not isinstance(item, dict) or "name" not in item:
            raise SpecError(f"{place}: a condition is {{name: ..., reduce_by: ..., ...}}")
        unknown = set(item) - _FIELDS
        if unknown:
            raise SpecError(f"{place}.{sorted(unknown)[0]}: not a field of a condition")
        name = item["name"]
        if not isinstance(name, str) or not name.replace("_", "").isalnum() or len(name) > 48:
            raise SpecError(f"{place}.name: '{name}' is not a name (a-z, 0-9, '_')")
        if name in {c.name for c in found}:
            raise SpecError(f"{place}.name: '{name}' is used twice")
        share = _share(item.get("reduce_by", 0), f"{place}.reduce_by")
        suspend = _count(item.get("suspend_after"), f"{place}.suspend_after", allow_none=True)
        reinstate = _count(item.get("reinstate_after", 1), f"{place}.reinstate_after")
        missing = item.get("missing", "compliant")
        if missing not in ("compliant", "non_compliant"):
            raise SpecError(f"{place}.missing: compliant or non_compliant")
        if not share and suspend is None:
            raise SpecError(f"{place}: a condition reduces the amount or suspends it, or both")
        found.append(Condition(name, share, suspend, reinstate, missing == "compliant"))
    return tuple(found)


def _share(value: Any, place: str) -> int:
    try:
        share = Decimal(str(value)) if not isinstance(value, bool) else None
    except ArithmeticError:
        share = None
    if share is None or not share.is_finite() or not 0 <= share <= 1:
        raise SpecError(f"{place}: a share between 0 and 1")
    micro = share * MICRO
    if micro != micro.to_integral_value():
        raise SpecError(f"{place}: at most six decimals")
    return int(micro)


def _count(value: Any, place: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{place}: a whole number of cycles, 1 or more")
    return value


DECISION_SCHEMA = {
    "household_id": pl.Int64,
    "condition": pl.String,
    "compliant": pl.Boolean,
    "recorded": pl.Boolean,
    "missed": pl.Int16,
    "kept": pl.Int16,
    "suspended": pl.Boolean,
    "outcome": pl.String,
}


def decide(
    conditions: tuple[Condition, ...],
    households: pl.DataFrame,
    records: pl.DataFrame,
    before: pl.DataFrame,
) -> pl.DataFrame:
    """One decision per household and condition (DECISION_SCHEMA), columnar.

    `households`: household_id; `records`: household_id, condition, compliant (this cycle's
    import); `before`: the previous cycle's decisions (household_id, condition, missed, kept,
    suspended)."""
    frames = []
    for condition in conditions:
        mine = records.filter(pl.col("condition") == condition.name).select(
            "household_id", "compliant"
        )
        prior = before.filter(pl.col("condition") == condition.name).select(
            "household_id",
            pl.col("missed").alias("missed_before"),
            pl.col("kept").alias("kept_before"),
            pl.col("suspended").alias("suspended_before"),
        )
        frame = (
            households.select("household_id")
            .join(mine, on="household_id", how="left")
            .join(prior, on="household_id", how="left")
            .with_columns(
                recorded=pl.col("compliant").is_not_null(),
                compliant=pl.col("compliant").fill_null(condition.missing_compliant),
                missed_before=pl.col("missed_before").fill_null(0).cast(pl.Int32),
                kept_before=pl.col("kept_before").fill_null(0).cast(pl.Int32),
                suspended_before=pl.col("suspended_before").fill_null(False),
            )
            .with_columns(
                missed=pl.when("compliant").then(0).otherwise(pl.col("missed_before") + 1),
                kept=pl.when("compliant").then(pl.col("kept_before") + 1).otherwise(0),
            )
        )
        suspend_now = (
            pl.lit(False)
            if condition.suspend_after is None
            else pl.col("missed") >= condition.suspend_after
        )
        reinstated = pl.col("suspended_before") & (pl.col("kept") >= condition.reinstate_after)
        frame = frame.with_columns(
            suspended=pl.when("suspended_before").then(~reinstated).otherwise(suspend_now),
            reinstated=reinstated,
        ).with_columns(
            outcome=pl.when("suspended")
            .then(pl.lit(SUSPEND))
            .when(~pl.col("compliant"))
            .then(pl.lit(REDUCE if condition.reduce_micro else FULL))
            .when("reinstated")
            .then(pl.lit(REINSTATED))
            .otherwise(pl.lit(FULL)),
            condition=pl.lit(condition.name),
        )
        # Streaks are capped where a SMALLINT holds them; beyond the rules' counts they
        # change nothing.
        frames.append(
            frame.with_columns(pl.col("missed", "kept").clip(0, 9999)).select(list(DECISION_SCHEMA))
        )
    if not frames:
        return pl.DataFrame(schema=DECISION_SCHEMA)
    return pl.concat(frames).cast(DECISION_SCHEMA)


def effects(conditions: tuple[Condition, ...], decisions: pl.DataFrame) -> pl.DataFrame:
    """Per household: keep_micro (the share of the amount still paid, in millionths; 0 when
    suspended), suspended, and the conditions behind it (reason text)."""
    share = {c.name: c.reduce_micro for c in conditions}
    rows = decisions.with_columns(
        cut=pl.when(pl.col("outcome") == REDUCE)
        .then(pl.col("condition").replace_strict(share, default=0, return_dtype=pl.Int64))
        .otherwise(0),
        note=pl.when(pl.col("outcome") == SUSPEND)
        .then(pl.lit("suspended:") + pl.col("condition"))
        .when(pl.col("outcome") == REDUCE)
        .then(pl.lit("condition:") + pl.col("condition")),
    )
    return (
        rows.group_by("household_id")
        .agg(
            keep_micro=(MICRO - pl.col("cut").sum().clip(0, MICRO)).cast(pl.Int64),
            suspended=pl.col("suspended").any(),
            conditions=pl.col("note").drop_nulls().sort().str.join(","),
        )
        .with_columns(
            keep_micro=pl.when("suspended").then(0).otherwise("keep_micro"),
        )
    )
