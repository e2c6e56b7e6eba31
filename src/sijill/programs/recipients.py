"""Who receives a household's entitlement: the spec's `recipient`, applied to the household's
members on a day (the cycle's last day, or today for a cycle not over yet).

- `head`: the member whose relationship is head.
- `female_caregiver` (as Egypt's Takaful pays the mother): the head if she is a woman; else
  the head's spouse if a woman (the oldest, if several); else the oldest woman aged 18 or
  more; else the head.

A household without a head (a gap in the record) falls back to its oldest member aged 18 or
more, then to its oldest member. Ties (same birth date, or none known) go to the lower person
ID, so the same record always gives the same recipient. A member is counted on the day when
their membership has started and not ended, they are not recorded dead by then and their
record has not been merged into another.
"""

from datetime import date
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

from sijill.core.pg_copy import read_query


def _adult_born_by(day: date) -> date:
    try:
        return day.replace(year=day.year - 18)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 18, day=28)


def members_on(
    engine: Engine, work_dir: Path, day: date, area_ids: list[int] | None
) -> pl.DataFrame:
    iso = f"'{day.isoformat()}'"
    in_area = ""
    if area_ids is not None:
        listed = ", ".join(str(int(a)) for a in area_ids) or "NULL"
        in_area = f"JOIN household h ON h.id = m.household_id AND h.area_id IN ({listed})"
    query = f"""
SELECT m.household_id, p.id, m.relationship, p.sex, p.birth_date
FROM membership m
{in_area}
JOIN person p ON p.id = m.person_id
WHERE p.merged_into_id IS NULL
  AND (m.start_date IS NULL OR m.start_date <= {iso})
  AND (m.end_date IS NULL OR m.end_date > {iso})
  AND (p.death_date IS NULL OR p.death_date > {iso})"""
    schema = {
        "household_id": pl.Int64,
        "person_id": pl.Int64,
        "relationship": pl.String,
        "sex": pl.String,
        "birth_date": pl.Date,
    }
    return read_query(engine, query, schema, work_dir)


def choose(members: pl.DataFrame, rule: str, day: date) -> pl.DataFrame:
    """household_id, person_id: one recipient per household that has members."""
    head = pl.col("relationship") == "head"
    woman = pl.col("sex") == "F"
    adult = (pl.col("birth_date") <= _adult_born_by(day)).fill_null(False)
    rank = pl.when(head).then(3).when(adult).then(4).otherwise(5)
    if rule == "female_caregiver":
        rank = (
            pl.when(head & woman)
            .then(0)
            .when((pl.col("relationship") == "spouse") & woman)
            .then(1)
            .when(woman & adult)
            .then(2)
            .otherwise(rank)
        )
    elif rule != "head":
        raise ValueError(f"recipient {rule!r}")
    return (
        members.with_columns(rank=rank)
        .sort(["household_id", "rank", "birth_date", "person_id"], nulls_last=True)
        .unique(subset="household_id", keep="first", maintain_order=True)
        .select("household_id", "person_id")
    )
