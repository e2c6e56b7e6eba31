"""Households, persons and each program's coverage by area, within the user's areas.

Each row is one area of one level (governorates, districts or localities) that lies wholly in
the user's areas, with the measures of its whole subtree: a cell of the country's suppression
pattern (`summary.country_cells`, the pattern the registry summary uses), hidden with every
measure when the pattern hides it. A program's counts are a second table over the same cells,
so they get a pattern of their own (`disclosure.joint_pattern`) that keeps every cell the
registry's hides and protects the program's selected and enrolled households, and the
households of the area that are neither, the same way.

A household is selected by a program when its enrollment is notified or enrolled (a run
selected it and it has not declined or left); enrolled when it accepted.
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from sijill.analytics.disclosure import joint_pattern, scoped_view, subtree_totals
from sijill.analytics.kept import kept
from sijill.analytics.summary import MEASURES, AreaFacts, country_cells, scope_tops
from sijill.core.areas import AREA_LEVELS, Area
from sijill.core.errors import InvalidInput
from sijill.programs.models import ENROLLED, NOTIFIED, Enrollment, ProgramVersion
from sijill.registry.models import Household
from sijill.security.principal import Principal
from sijill.security.roles import Permission

SELECTED = (NOTIFIED, ENROLLED)


@dataclass
class ProgramCell:
    program: str
    selected: int | None  # None: suppressed, with `enrolled`
    enrolled: int | None


@dataclass
class AreaRow:
    code: str
    name: str
    name_ar: str | None
    households: int | None  # None: suppressed, with every measure of the row
    persons: int | None
    programs: list[ProgramCell] = field(default_factory=list)
    geometry: dict | None = None  # GeoJSON, when asked for (the map)


@dataclass
class AreaSummary:
    level: str
    levels: list[str]  # the levels this user may ask for, from the top
    total: AreaRow  # the user's areas together
    areas: list[AreaRow]
    programs: list[str]
    min_cell: int | None
    computed_at: datetime  # when the figures were computed (they are kept a while)


def _programs(session: Session) -> dict[str, dict[int, tuple[int, int]]]:
    """Each program's selected and enrolled households held directly in each area."""
    selected = func.sum(case((Enrollment.status.in_(SELECTED), 1), else_=0))
    enrolled = func.sum(case((Enrollment.status == ENROLLED, 1), else_=0))
    found: dict[str, dict[int, tuple[int, int]]] = {
        name: {} for name in session.scalars(select(ProgramVersion.program).distinct())
    }
    rows = session.execute(
        select(Enrollment.program, Household.area_id, selected, enrolled)
        .join(Household, Household.id == Enrollment.household_id)
        .group_by(Enrollment.program, Household.area_id)
    )
    for program, area_id, chosen, accepted in rows:
        found.setdefault(program, {})[area_id] = (int(chosen or 0), int(accepted or 0))
    return found


def _program_cells(parent, households, direct, hidden, min_cell):
    """A program's counts over each subtree, and its pattern."""
    cells = subtree_totals(parent, direct)
    if not min_cell:
        return cells, frozenset()

    def count(i):
        return {area: cell[i] for area, cell in cells.items()}

    chosen, accepted = count(0), count(1)
    rest = [
        {area: total - chosen.get(area, 0) for area, total in households.items()},
        {area: total - accepted.get(area, 0) for area, total in households.items()},
    ]
    table = [area for area, total in households.items() if total > 0]
    return cells, joint_pattern(
        parent, [chosen, accepted, *rest], min_cell, cells=table, hidden=hidden
    )


def area_summary(
    session: Session,
    principal: Principal,
    *,
    min_cell: int,
    level: str | None = None,
    shapes: bool = False,
    max_age: float = 0,
) -> AreaSummary:
    """The principal's areas of one level (by default the level below their topmost areas),
    suppressed as the registry summary is. `shapes` adds each area's polygons. The country's
    figures are computed at most once per `max_age` seconds in this process."""
    action = Permission.AGGREGATES
    principal.require(action)
    scope = principal.scope(session, action)
    suppress = None if principal.may(Permission.HOUSEHOLD_READ) else min_cell
    country = country_cells(session, suppress, max_age)
    areas, cells, hidden, parent = country.areas, country.cells, country.hidden, country.parent
    roots = scope_tops(scope, parent)
    top = min((AREA_LEVELS.index(areas[r].level) for r in roots), default=len(AREA_LEVELS) - 1)
    levels = list(AREA_LEVELS[min(top + 1, len(AREA_LEVELS) - 1) :])
    level = level or levels[0]
    if level not in levels:
        raise InvalidInput(f"level must be one of {', '.join(levels)}")
    shown = sorted(
        (a for a in areas.values() if a.level == level and scope.allows(a.id)),
        key=lambda a: a.code,
    )
    households = {area: cell[0] for area, cell in cells.items()}

    def compute_programs():
        return {
            name: _program_cells(parent, households, direct, hidden, suppress)
            for name, direct in sorted(_programs(session).items())
        }

    # Keyed by the registry cells' time: a program's pattern is always cut beside the very
    # cells it keeps hidden.
    programs = kept(
        session, "program cells", max_age, compute_programs, suppress, country.computed_at
    )[1]
    geometry = (
        dict(
            session.execute(
                select(Area.id, Area.geometry).where(Area.id.in_([a.id for a in shown]))
            ).all()
        )
        if shapes
        else {}
    )

    def row(area_ids: list[int], area: AreaFacts | None) -> AreaRow:
        registry = scoped_view(area_ids, cells, hidden, len(MEASURES))
        result = AreaRow(
            area.code if area else "",
            (area.name_en or area.code) if area else "",
            area.name_ar if area else None,
            registry[0] if registry else None,
            registry[1] if registry else None,
            geometry=geometry.get(area.id) if area else None,
        )
        for name, (program_cells, program_hidden) in programs.items():
            counts = scoped_view(area_ids, program_cells, program_hidden, 2)
            result.programs.append(ProgramCell(name, *(counts or (None, None))))
        return result

    summary = AreaSummary(
        level=level,
        levels=levels,
        total=row(roots, None),
        areas=[row([area.id], area) for area in shown],
        programs=list(programs),
        min_cell=suppress,
        computed_at=country.computed_at,
    )
    principal.audit(action, "ok", "summary", None)
    return summary
