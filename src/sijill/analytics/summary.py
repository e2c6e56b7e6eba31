"""Registry totals: households, persons, by governorate, refugees, persons with disability.

Aggregates are computed in the database (grouped by area, one query per table), never by
loading rows, then summed up the area tree. Every figure is taken over the households of
the user's areas only, so a user's totals never include an area they may not see. For users
who may not see personal data (analysts), small cells are suppressed with one pattern for
the whole country (`sijill.analytics.disclosure`): a hidden cell hides every measure, and no
difference between two answers, of one user or of two, gives it back.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from sijill.analytics.disclosure import (
    scope_roots,
    scoped_view,
    subtree_totals,
    suppression_pattern,
)
from sijill.analytics.kept import kept
from sijill.core import clock
from sijill.core.areas import Area
from sijill.registry.codes import WG_DOMAINS, wg_disability_threshold
from sijill.registry.models import Household, Membership, Person
from sijill.security.principal import Principal, Scope
from sijill.security.roles import Permission

# The measures of a cell, in this order.
MEASURES = ("households", "persons", "refugees", "persons_with_disability")
REFUGEE_STATUSES = ("refugee", "asylum_seeker")


@dataclass
class RegionRow:
    code: str
    name: str
    households: int | None  # None: suppressed (with every other measure of the row)
    persons: int | None


@dataclass
class RegistrySummary:
    households: int | None
    persons: int | None
    refugees: int | None
    persons_with_disability: int | None
    regions: list[RegionRow]
    min_cell: int | None = None  # the suppression threshold applied, if any
    computed_at: datetime | None = None  # when the figures were computed


@dataclass(frozen=True)
class AreaFacts:
    """What the summaries need of an area: a plain value, kept between requests."""

    id: int
    code: str
    level: str
    parent_id: int | None
    name_en: str | None
    name_ar: str | None


@dataclass(frozen=True)
class CountryCells:
    computed_at: datetime
    areas: dict[int, AreaFacts]
    cells: dict[int, tuple[int, ...]]  # every area's measures over its subtree
    hidden: frozenset[int]  # the cells the pattern hides

    @property
    def parent(self) -> dict[int, int | None]:
        return {area_id: area.parent_id for area_id, area in self.areas.items()}


def _disability():
    threshold = wg_disability_threshold().value_at(clock.utcnow().date())
    return case(*[(getattr(Person, domain) >= threshold, 1) for domain in WG_DOMAINS], else_=0)


def _per_area(session: Session) -> dict[int, tuple[int, int, int, int]]:
    """Each area's measures over the households held directly in it, for the whole country:
    the suppression pattern must not depend on who asks."""
    direct: dict[int, list[int]] = {}
    for area_id, households in session.execute(
        select(Household.area_id, func.count()).group_by(Household.area_id)
    ):
        direct[area_id] = [int(households), 0, 0, 0]
    refugee = case((Person.residency_status.in_(REFUGEE_STATUSES), 1), else_=0)
    for area_id, persons, refugees, disabled in session.execute(
        select(
            Household.area_id,
            func.count(),
            func.coalesce(func.sum(refugee), 0),
            func.coalesce(func.sum(_disability()), 0),
        )
        .select_from(Person)
        .join(Membership, Membership.person_id == Person.id)
        .join(Household, Household.id == Membership.household_id)
        .where(Membership.end_date.is_(None))
        .group_by(Household.area_id)
    ):
        direct[area_id][1:] = [int(persons), int(refugees), int(disabled)]
    return {area_id: tuple(row) for area_id, row in direct.items()}


def totals(
    session: Session, scope: Scope, min_cell: int | None = None, max_age: float = 0
) -> RegistrySummary:
    """Totals and governorates over the areas of `scope`, small cells suppressed if
    `min_cell` is given."""
    country = country_cells(session, min_cell, max_age)
    areas, cells, hidden, parent = country.areas, country.cells, country.hidden, country.parent
    width = len(MEASURES)
    roots = scope_tops(scope, parent)
    overall = scoped_view(roots, cells, hidden, width)
    regions = []
    for region, parts in sorted(_regions(roots, areas, cells).items(), key=lambda r: r[0].code):
        shown = scoped_view(parts, cells, hidden, width)
        regions.append(
            RegionRow(
                region.code,
                region.name_en or region.code,
                shown[0] if shown else None,
                shown[1] if shown else None,
            )
        )
    return RegistrySummary(
        *(overall or (None,) * width),
        regions=regions,
        min_cell=min_cell,
        computed_at=country.computed_at,
    )


def country_cells(session: Session, min_cell: int | None, max_age: float = 0) -> CountryCells:
    """The areas, every area's measures over its subtree, and the hidden cells: the one
    pattern every aggregate of the registry's measures is cut from. Computed at most once
    per `max_age` seconds in this process (`analytics.kept`)."""

    def compute() -> CountryCells:
        began = clock.utcnow()  # the figures are of this moment, or a little after
        columns = (Area.id, Area.code, Area.level, Area.parent_id, Area.name_en, Area.name_ar)
        areas = {row[0]: AreaFacts(*row) for row in session.execute(select(*columns))}
        parent = {area_id: area.parent_id for area_id, area in areas.items()}
        cells = subtree_totals(parent, _per_area(session))
        hidden = (
            suppression_pattern(parent, {a: cell[0] for a, cell in cells.items()}, min_cell)
            if min_cell
            else frozenset()
        )
        return CountryCells(began, areas, cells, hidden)

    return kept(session, "registry cells", max_age, compute, min_cell)[1]


def scope_tops(scope: Scope, parent: dict[int, int | None]) -> list[int]:
    """The topmost areas of a scope: every figure is a sum of their cells."""
    if scope.area_ids is None:
        return [area for area, up in parent.items() if up is None]
    return scope_roots(scope.area_ids, parent)


def _regions(roots: list[int], areas: dict[int, AreaFacts], cells) -> dict[AreaFacts, list[int]]:
    """Each governorate the roots reach, with the cells that make up its row: the
    governorate's own cell when the whole of it is in scope, else the roots inside it."""
    rows: dict[AreaFacts, list[int]] = {}
    for root in roots:
        if root not in cells:
            continue
        area = areas[root]
        if area.level == "country":
            for child in areas.values():
                if child.parent_id == root and child.id in cells:
                    rows.setdefault(child, []).append(child.id)
            continue
        while area.level not in ("governorate", "country") and area.parent_id is not None:
            area = areas[area.parent_id]
        rows.setdefault(area, []).append(root)
    return rows


def registry_summary(
    session: Session, principal: Principal, *, min_cell: int, max_age: float = 0
) -> RegistrySummary:
    """Totals by governorate over the principal's areas. Suppressed small cells for anyone
    who may not see households one by one (analysts)."""
    action = Permission.AGGREGATES
    principal.require(action)
    scope = principal.scope(session, action)
    suppress = None if principal.may(Permission.HOUSEHOLD_READ) else min_cell
    summary = totals(session, scope, suppress, max_age)
    principal.audit(action, "ok", "summary", None)
    return summary
