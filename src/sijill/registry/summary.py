"""Registry totals: households, persons, by governorate, refugees, persons with disability.

Aggregates are computed in the database (one query each), never by loading rows.
"""

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from sijill.registry.codes import WG_DISABILITY_THRESHOLD, WG_DOMAINS
from sijill.registry.models import Area, Household, Membership, Person


@dataclass
class RegionRow:
    code: str
    name: str
    households: int
    persons: int


@dataclass
class RegistrySummary:
    households: int
    persons: int
    refugees: int
    persons_with_disability: int
    regions: list[RegionRow]


def _disability():
    return or_(*[getattr(Person, d) >= WG_DISABILITY_THRESHOLD for d in WG_DOMAINS])


def registry_summary(session: Session) -> RegistrySummary:
    current = Membership.end_date.is_(None)
    households = session.scalar(select(func.count()).select_from(Household)) or 0
    members = select(Person).join(Membership, Membership.person_id == Person.id).where(current)
    persons = session.scalar(select(func.count()).select_from(members.subquery())) or 0
    refugees = session.scalar(
        select(func.count())
        .select_from(Person)
        .join(Membership, Membership.person_id == Person.id)
        .where(current, Person.residency_status.in_(("refugee", "asylum_seeker")))
    )
    disabled = session.scalar(
        select(func.count())
        .select_from(Person)
        .join(Membership, Membership.person_id == Person.id)
        .where(current, _disability())
    )
    return RegistrySummary(
        households=households,
        persons=persons,
        refugees=refugees or 0,
        persons_with_disability=disabled or 0,
        regions=_by_governorate(session),
    )


def _by_governorate(session: Session) -> list[RegionRow]:
    """Households and persons per governorate: counted per area in the database, then rolled
    up the hierarchy (areas number in the thousands, households in the millions)."""
    areas = {a.id: a for a in session.scalars(select(Area))}
    members = (
        select(Membership.household_id, func.count().label("persons"))
        .where(Membership.end_date.is_(None))
        .group_by(Membership.household_id)
        .subquery()
    )
    per_area = session.execute(
        select(
            Household.area_id,
            func.count(Household.id),
            func.coalesce(func.sum(members.c.persons), 0),
        )
        .outerjoin(members, members.c.household_id == Household.id)
        .group_by(Household.area_id)
    )
    totals: dict[int, list[int]] = {}
    for area_id, households, persons in per_area:
        region = _governorate_of(areas, area_id)
        row = totals.setdefault(region, [0, 0])
        row[0] += int(households)
        row[1] += int(persons)
    rows = [
        RegionRow(areas[r].code, areas[r].name_en or areas[r].code, h, p)
        for r, (h, p) in totals.items()
    ]
    return sorted(rows, key=lambda row: row.code)


def _governorate_of(areas: dict[int, Area], area_id: int) -> int:
    area = areas[area_id]
    while area.level not in ("governorate", "country") and area.parent_id is not None:
        area = areas[area.parent_id]
    return area.id
