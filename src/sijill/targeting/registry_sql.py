"""The statements that read the registry for the feature view, as of a date.

The state "as of" a date is the state at the end of that day: the current rows for today,
and for an earlier date the row (current or kept in the history tables) valid at that moment.
Households that have not consented to `eligibility_assessment` are read with a flag, so a run
can count them; records merged into another one are left out (they are that record now), and
so are the members whose membership had not started or had ended on the date. Every value put
into a statement is a date, an integer or a constant of this module, never user text.
"""

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sijill.targeting.features import WASHINGTON_GROUP

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


def state(table: str, columns: str, as_of: date | None, dialect: str) -> str:
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


_PERSON_COLUMNS = (
    "sex", "birth_date", "death_date", "residency_status", "education_level", "enrolled",
    "employment_status", "employment_sector", "orphanhood", "school_grade",
    "contributory_pension", "monthly_income", *(f"wg_{d}" for d in WASHINGTON_GROUP),
)  # fmt: skip
_HOUSEHOLD_COLUMNS = (
    "area_id", *DWELLING, "dwelling_rooms", "assets", "income_sources", "livestock",
    "consent_given", "consent_purposes",
)  # fmt: skip
# Person IDs are twelve digits (core.ids): a national read of the persons is split in parts
# over that range, which random IDs fill about equally.
_FIRST_PERSON, _END_PERSON = 10**11, 10**12


@dataclass(frozen=True)
class Reads:
    households: str
    memberships: str
    persons: list[str]  # parts, read side by side
    facts: str


def queries(
    dialect: str,
    as_of: date | None,
    area_ids: list[int] | None,
    day: date,
    id_range: tuple[int, int] | None = None,
    person_parts: int = 1,
) -> Reads:
    """The statements of a read: households, their memberships on `day`, the persons (in
    `person_parts` parts when reading the whole registry) and their facts. The members are
    joined to their persons after reading: one plain scan of each table, where a join in the
    database hashed the whole person table (at 46 million persons, on one core)."""
    household_columns = ", ".join(_HOUSEHOLD_COLUMNS)
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
SELECT h.id, a.code, {", ".join(f"h.{c}" for c in DWELLING)}, h.dwelling_rooms,
  {as_text.format("assets")}, {as_text.format("income_sources")}, {as_text.format("livestock")},
  CASE WHEN h.consent_given AND {consented} THEN 1 ELSE 0 END
FROM {state("household", household_columns, as_of, dialect)} h
JOIN area a ON a.id = h.area_id
WHERE {scope} AND {household_part}"""
    iso = f"'{day.isoformat()}'"

    # Nationally, members are kept to the consenting households read above by a semi-join
    # after reading (joining the household table in the database would cost a third of the
    # read); in an area, the database keeps the area's members only.
    in_area = (
        ""
        if area_ids is None
        else f"JOIN {state('household', household_columns, as_of, dialect)} h "
        "ON h.id = m.household_id"
    )
    on_the_day = f"""FROM membership m
{in_area}
WHERE {scope} AND {member_part}
  AND (m.start_date IS NULL OR m.start_date <= {iso})
  AND (m.end_date IS NULL OR m.end_date > {iso})"""
    memberships = f"""
SELECT m.household_id AS household_id, m.person_id AS person_id, m.relationship AS relationship
{on_the_day}"""
    whole = area_ids is None and id_range is None

    def among_members(column: str) -> str:
        return "" if whole else f" AND {column} IN (SELECT m.person_id {on_the_day})"

    # A merged record is the same person as the one it was merged into: left out on every
    # date, so no one counts twice. Whether it was merged is on the current row only.
    if as_of is None:
        person_rows = "person p"
        unmerged = "p.merged_into_id IS NULL"
    else:
        person_rows = (
            f"{state('person', ', '.join(_PERSON_COLUMNS), as_of, dialect)} p\n"
            "JOIN person current_person ON current_person.id = p.id"
        )
        unmerged = "current_person.merged_into_id IS NULL"
    person_select = f"""
SELECT p.id AS person_id, p.sex AS sex, p.residency_status AS residency_status,
  p.education_level AS education_level, p.employment_status AS employment_status,
  p.employment_sector AS employment_sector, p.orphanhood AS orphanhood,
  p.birth_date AS birth_date, p.death_date AS death_date,
  {", ".join(f"p.wg_{d} AS wg_{d}" for d in WASHINGTON_GROUP)},
  {_as_number("p.enrolled")} AS enrolled, p.school_grade AS school_grade,
  {_as_number("p.contributory_pension")} AS contributory_pension,
  p.monthly_income AS monthly_income
FROM {person_rows}
WHERE {unmerged}{among_members("p.id")}"""
    if whole and person_parts > 1:
        bounds = [
            _FIRST_PERSON + (_END_PERSON - _FIRST_PERSON) * i // person_parts
            for i in range(person_parts + 1)
        ]
        bounds[0], bounds[-1] = 0, _END_PERSON
        persons = [
            f"{person_select} AND p.id >= {low} AND p.id < {high}"
            for low, high in itertools.pairwise(bounds)
        ]
    else:
        persons = [person_select]
    facts = f"""
SELECT pf.person_id AS person_id, pf.kind AS kind, pf.valid_from AS valid_from
FROM person_fact pf
WHERE pf.valid_from <= {iso}{among_members("pf.person_id")}"""
    return Reads(households, memberships, persons, facts)
