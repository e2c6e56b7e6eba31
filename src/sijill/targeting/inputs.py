"""The feature view's four input tables, from the registry as of a date or from an
exchange-format folder (a survey's households and persons).

From the registry, in bulk: PostgreSQL hands each table over by `COPY ... TO STDOUT` into a
private temporary file that Polars reads (never row by row through Python); SQLite, the
embedded default, by one query per table. Households that have not consented to
`eligibility_assessment` are left out and counted: a run reports how many it did not assess.
Records merged into another one are left out (they are that record now), and so are the
members whose membership had not started or had ended on the date.

The state "as of" a date is the state at the end of that day: the current rows for today,
and for an earlier date the row (current or kept in the history tables) valid at that moment.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sijill.core.areas import Area, areas_within
from sijill.core.clock import utcnow
from sijill.core.errors import InvalidInput
from sijill.core.pg_copy import read_query, spool_query
from sijill.registry.codes import LIVESTOCK
from sijill.targeting.features import WASHINGTON_GROUP, Inputs

PURPOSE = "eligibility_assessment"

DWELLING = (
    "dwelling_tenure",
    "dwelling_walls",
    "dwelling_roof",
    "dwelling_floor",
    "water_source",
    "sanitation",
    "cooking_fuel",
    "electricity",
)
PERSON_TEXT = (
    "relationship",
    "sex",
    "residency_status",
    "education_level",
    "employment_status",
    "employment_sector",
    "orphanhood",
)
HOUSEHOLD_SCHEMA = {
    "household_id": pl.String,
    "area_code": pl.String,
    **dict.fromkeys(DWELLING, pl.String),
    "dwelling_rooms": pl.Int32,
    "assets": pl.List(pl.String),
    "income_sources": pl.List(pl.String),
    **{f"livestock_{kind}": pl.Int64 for kind in LIVESTOCK},
}
PERSON_SCHEMA = {
    "household_id": pl.String,
    "person_id": pl.String,
    **dict.fromkeys(PERSON_TEXT, pl.String),
    "birth_date": pl.Date,
    "death_date": pl.Date,
    **{f"wg_{domain}": pl.Int8 for domain in WASHINGTON_GROUP},
    "enrolled": pl.Boolean,
    "school_grade": pl.Int8,
    "contributory_pension": pl.Boolean,
    "monthly_income": pl.Int64,  # minor units
}
# Booleans are read as 1/0 (PostgreSQL's COPY writes t/f) and cast back.
_BOOLEANS = ("enrolled", "contributory_pension")
AREA_SCHEMA = {
    "code": pl.String,
    "district_code": pl.String,
    "governorate_code": pl.String,
    "urban": pl.Boolean,
}
FACT_SCHEMA = {
    "household_id": pl.String,
    "person_id": pl.String,
    "kind": pl.String,
    "valid_from": pl.Date,
}


@dataclass(frozen=True)
class RegistryInputs:
    inputs: Inputs
    households_without_consent: int


def flat_areas(areas: pl.DataFrame) -> pl.DataFrame:
    """Each area with the codes of its district and governorate (itself when it is one):
    from a frame of code, parent_code, level, urban."""
    parent = dict(zip(areas["code"], areas["parent_code"], strict=True))
    level = dict(zip(areas["code"], areas["level"], strict=True))

    def ancestor(code: str, wanted: str) -> str | None:
        seen = set()
        while code is not None and code not in seen:
            seen.add(code)
            if level.get(code) == wanted:
                return code
            code = parent.get(code)
        return None

    codes = areas["code"].to_list()
    return pl.DataFrame(
        {
            "code": codes,
            "district_code": [ancestor(c, "district") for c in codes],
            "governorate_code": [ancestor(c, "governorate") for c in codes],
            "urban": areas["urban"],
        },
        schema=AREA_SCHEMA,
    )


def registry_areas(session: Session) -> pl.DataFrame:
    rows = session.execute(select(Area.id, Area.code, Area.parent_id, Area.level, Area.urban))
    rows = rows.all()
    code_of = {row.id: row.code for row in rows}
    frame = pl.DataFrame(
        {
            "code": [row.code for row in rows],
            "parent_code": [code_of.get(row.parent_id) for row in rows],
            "level": [row.level for row in rows],
            "urban": [row.urban for row in rows],
        },
        schema={
            "code": pl.String,
            "parent_code": pl.String,
            "level": pl.String,
            "urban": pl.Boolean,
        },
    )
    return flat_areas(frame)


# --- the registry -----------------------------------------------------------------------------


def _state(table: str, columns: str, as_of: date | None, dialect: str) -> str:
    """A table's rows as of the end of `as_of` (current rows when None)."""
    if as_of is None:
        return f"(SELECT id, {columns} FROM {table})"
    end = _end_of(as_of)
    # SQLite compares the text it stores (naive UTC, a space between date and time, as the
    # SQLAlchemy dialect and the bulk writer write it): an ISO literal with its "T" would
    # sort after every moment of the next day and take that day's rows in.
    moment = (
        f"'{end.replace(tzinfo=None).strftime('%Y-%m-%d %H:%M:%S.%f')}'"
        if dialect == "sqlite"
        else f"'{end.isoformat()}'"
    )
    return (
        f"(SELECT id, {columns} FROM {table} WHERE valid_from < {moment} UNION ALL "
        f"SELECT {table}_id AS id, {columns} FROM {table}_version "
        f"WHERE valid_from < {moment} AND valid_to >= {moment})"
    )


def _as_number(column: str) -> str:
    return f"CASE WHEN {column} THEN 1 WHEN NOT {column} THEN 0 END"


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def _queries(
    dialect: str,
    as_of: date | None,
    area_ids: list[int] | None,
    day: date,
    id_range: tuple[int, int] | None = None,
):
    household_columns = ", ".join(
        ("area_id", *DWELLING, "dwelling_rooms", "assets", "income_sources", "livestock",
         "consent_given", "consent_purposes")
    )  # fmt: skip
    person_columns = ", ".join(
        ("sex", "birth_date", "death_date", "residency_status", "education_level", "enrolled",
         "employment_status", "employment_sector", "orphanhood", "school_grade",
         "contributory_pension", "monthly_income",
         *(f"wg_{d}" for d in WASHINGTON_GROUP))
    )  # fmt: skip
    # Area IDs are integers from the area table, never user text.
    scope = (
        "TRUE"
        if area_ids is None
        else f"h.area_id IN ({', '.join(str(int(a)) for a in area_ids) or 'NULL'})"
    )
    household_part = member_part = "TRUE"
    if id_range is not None:
        low, high = (int(bound) for bound in id_range)
        household_part = f"h.id >= {low} AND h.id < {high}"
        member_part = f"m.household_id >= {low} AND m.household_id < {high}"
    as_text = "CAST(h.{} AS TEXT)"
    consented = (
        f"h.consent_purposes ? '{PURPOSE}'"
        if dialect == "postgresql"
        else f"h.consent_purposes LIKE '%\"{PURPOSE}\"%'"
    )
    households = f"""
SELECT CAST(h.id AS TEXT), a.code, {", ".join(f"h.{c}" for c in DWELLING)}, h.dwelling_rooms,
  {as_text.format("assets")}, {as_text.format("income_sources")}, {as_text.format("livestock")},
  CASE WHEN h.consent_given AND {consented} THEN 1 ELSE 0 END
FROM {_state("household", household_columns, as_of, dialect)} h
JOIN area a ON a.id = h.area_id
WHERE {scope} AND {household_part}"""
    iso = f"'{day.isoformat()}'"

    # A merged record is the same person as the one it was merged into: left out on every
    # date, so no one counts twice. Whether it was merged is on the current row only.
    if as_of is None:
        person_join = (
            f"JOIN {_state('person', person_columns + ', merged_into_id', None, dialect)} p "
            "ON p.id = m.person_id"
        )
        unmerged = "p.merged_into_id IS NULL"
    else:
        person_join = (
            f"JOIN {_state('person', person_columns, as_of, dialect)} p ON p.id = m.person_id\n"
            "JOIN person current_person ON current_person.id = p.id"
        )
        unmerged = "current_person.merged_into_id IS NULL"

    # Nationally, members are kept to the consenting households read above by a semi-join
    # after reading (joining the household table in the database would cost a third of the
    # read); in an area, the database keeps the area's members only.
    in_area = (
        ""
        if area_ids is None
        else f"JOIN {_state('household', household_columns, as_of, dialect)} h "
        "ON h.id = m.household_id"
    )

    def members(source: str) -> str:
        return f"""
FROM {source}
{in_area}
{person_join}
WHERE {scope} AND {member_part} AND {unmerged}
  AND (m.start_date IS NULL OR m.start_date <= {iso})
  AND (m.end_date IS NULL OR m.end_date > {iso})"""

    persons = f"""
SELECT CAST(m.household_id AS TEXT), CAST(p.id AS TEXT), m.relationship, p.sex,
  p.residency_status, p.education_level, p.employment_status, p.employment_sector,
  p.orphanhood, p.birth_date, p.death_date, {", ".join(f"p.wg_{d}" for d in WASHINGTON_GROUP)},
  {_as_number("p.enrolled")}, p.school_grade, {_as_number("p.contributory_pension")},
  p.monthly_income
{members("membership m")}"""
    facts = f"""
SELECT CAST(m.household_id AS TEXT), CAST(p.id AS TEXT), pf.kind, pf.valid_from
{members("person_fact pf JOIN membership m ON m.person_id = pf.person_id")}
  AND pf.valid_from <= {iso}"""
    return households, persons, facts


@dataclass(frozen=True)
class MemberFiles:
    """Every household's members and their facts, read in one pass into private Parquet files.

    A snapshot read in partitions takes each partition's members from these: asked of the
    database once per partition, each read hashed the whole person table again (at 10 million
    households, 84 s in the database for each of six partitions, against 245 s for one read
    of all 46 million members)."""

    persons: Path
    facts: Path


def read_members(engine: Engine, as_of: date, folder: Path) -> MemberFiles:
    """The members of every household of the registry as of `as_of` (consenting or not: the
    partitions keep their consenting households' own), into `folder`."""
    _, persons_sql, facts_sql = _queries(engine.dialect.name, _state_date(as_of), None, as_of)
    files = MemberFiles(folder / "persons.parquet", folder / "facts.parquet")
    as_numbers = dict.fromkeys(_BOOLEANS, pl.Int8)
    spool_query(engine, persons_sql, {**PERSON_SCHEMA, **as_numbers}, files.persons, folder)
    spool_query(engine, facts_sql, FACT_SCHEMA, files.facts, folder)
    return files


def _state_date(as_of: date) -> date | None:
    """The date whose history a read takes (None: the current rows, for today)."""
    today = utcnow().date()
    if as_of > today:
        raise InvalidInput(f"as_of {as_of.isoformat()} is in the future (today is {today})")
    return None if as_of == today else as_of


def _members_within(path: Path, id_range: tuple[int, int] | None) -> pl.DataFrame:
    members = pl.scan_parquet(path)
    if id_range is not None:
        low, high = (int(bound) for bound in id_range)
        household = pl.col("household_id").cast(pl.Int64)
        members = members.filter(household.is_between(low, high, closed="left"))
    return members.collect()


def from_registry(
    engine: Engine,
    as_of: date,
    *,
    area_id: int | None = None,
    work_dir: Path | None = None,
    id_range: tuple[int, int] | None = None,
    members: MemberFiles | None = None,
) -> RegistryInputs:
    """The inputs for every consenting household of the registry (or of `area_id` and the
    areas below it) as of `as_of`; only the household IDs in [low, high) given `id_range`,
    their members taken from `members` when given (read by `read_members` on the same date)."""
    state_date = _state_date(as_of)
    with Session(engine) as session:
        areas = registry_areas(session)
        within = None if area_id is None else areas_within(session, [area_id])
    households_sql, persons_sql, facts_sql = _queries(
        engine.dialect.name, state_date, within, as_of, id_range
    )
    household_raw = {k: v for k, v in HOUSEHOLD_SCHEMA.items() if not k.startswith("livestock_")}
    household_raw.update(
        assets=pl.String, income_sources=pl.String, livestock=pl.String, consented=pl.Int8
    )
    raw = read_query(engine, households_sql, household_raw, work_dir)
    consented = raw.filter(pl.col("consented") == 1)
    households = _decode_household_json(consented)
    if members is None:
        as_numbers = dict.fromkeys(_BOOLEANS, pl.Int8)
        persons = read_query(engine, persons_sql, {**PERSON_SCHEMA, **as_numbers}, work_dir)
        facts = read_query(engine, facts_sql, FACT_SCHEMA, work_dir)
    else:
        persons = _members_within(members.persons, id_range)
        facts = _members_within(members.facts, id_range)
    kept = households.select("household_id")
    persons = persons.cast(dict.fromkeys(_BOOLEANS, pl.Boolean))
    persons = persons.join(kept, on="household_id", how="semi")
    facts = facts.join(kept, on="household_id", how="semi")
    return RegistryInputs(
        Inputs(households, persons, areas, facts),
        households_without_consent=raw.height - consented.height,
    )


def _decode_household_json(raw: pl.DataFrame) -> pl.DataFrame:
    livestock = pl.Struct({kind: pl.Int64 for kind in LIVESTOCK})
    return (
        raw.with_columns(
            pl.col("assets").str.json_decode(pl.List(pl.String)),
            pl.col("income_sources").str.json_decode(pl.List(pl.String)),
            pl.col("livestock")
            .str.json_decode(livestock)
            .struct.rename_fields([f"livestock_{kind}" for kind in LIVESTOCK]),
        )
        .unnest("livestock")
        .select(list(HOUSEHOLD_SCHEMA))
        .cast(HOUSEHOLD_SCHEMA)
    )
