"""Registry totals: households, persons, by governorate, refugees, persons with disability.

Aggregates are computed in the database (one query each), never by loading rows. Every
count, the grouped ones included, is taken over the households of one scope only, so a
user's totals never include an area they may not see. For users who may not see personal
data (analysts), a count below `min_cell` households is suppressed: a cell of two or three
households can identify them.
"""

from dataclasses import dataclass

from sqlalchemy import func, or_, select, true
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.areas import Area
from sijill.registry.codes import WG_DOMAINS, wg_disability_threshold
from sijill.registry.models import Household, Membership, Person
from sijill.security.principal import Principal
from sijill.security.roles import Permission


@dataclass
class RegionRow:
    code: str
    name: str
    households: int | None  # None: suppressed, fewer than min_cell households
    persons: int | None


@dataclass
class RegistrySummary:
    households: int | None
    persons: int | None
    refugees: int | None
    persons_with_disability: int | None
    regions: list[RegionRow]
    min_cell: int | None = None  # the suppression threshold applied, if any


def _disability():
    threshold = wg_disability_threshold().value_at(clock.utcnow().date())
    return or_(*[getattr(Person, d) >= threshold for d in WG_DOMAINS])


def totals(session: Session, in_scope=None, min_cell: int | None = None) -> RegistrySummary:
    """Totals over the households for which `in_scope(Household.area_id)` holds (all if None)."""
    scoped = in_scope(Household.area_id) if in_scope is not None else true()
    current = Membership.end_date.is_(None)
    households = session.scalar(select(func.count()).select_from(Household).where(scoped)) or 0

    def count_members(*conditions) -> int:
        return (
            session.scalar(
                select(func.count())
                .select_from(Person)
                .join(Membership, Membership.person_id == Person.id)
                .join(Household, Household.id == Membership.household_id)
                .where(current, scoped, *conditions)
            )
            or 0
        )

    def shown(value: int | None) -> int | None:
        return None if min_cell and value is not None and 0 < value < min_cell else value

    regions = _by_governorate(session, scoped)
    if min_cell:
        _suppress(regions, min_cell)
    return RegistrySummary(
        households=shown(households),
        persons=shown(count_members()),
        refugees=shown(count_members(Person.residency_status.in_(("refugee", "asylum_seeker")))),
        persons_with_disability=shown(count_members(_disability())),
        regions=regions,
        min_cell=min_cell,
    )


def _suppress(regions: list[RegionRow], min_cell: int) -> None:
    """Blank the regions of fewer than `min_cell` households. A region blanked alone could be
    recovered by subtracting the others from the total: then the smallest other is blanked
    too (complementary suppression), so only the sum of two is known."""
    small = [row for row in regions if row.households is not None and row.households < min_cell]
    if len(small) == 1:
        others = [row for row in regions if row is not small[0]]
        if others:
            small.append(min(others, key=lambda row: row.households or 0))
    for row in small:
        row.households = row.persons = None


def _by_governorate(session: Session, scoped) -> list[RegionRow]:
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
        .where(scoped)
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


def registry_summary(session: Session, principal: Principal, *, min_cell: int):
    """Totals by governorate over the principal's areas. Suppressed small cells for anyone
    who may not see households one by one (analysts)."""
    action = Permission.AGGREGATES
    principal.require(action)
    scope = principal.scope(session, action)
    suppress = None if principal.may(Permission.HOUSEHOLD_READ) else min_cell
    summary = totals(session, scope.condition, suppress)
    principal.audit(action, "ok", "summary", None)
    return summary
