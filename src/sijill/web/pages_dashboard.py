"""The dashboard: households, persons and each program's coverage by area, a choropleth map of
one indicator, and bar charts. Every figure comes from `analytics.by_area.area_summary`, the
service of `GET /registry/summary/areas`, with the same user and the same `min_cell`: a cell
the API suppresses for this user is suppressed here, in the tables, the map and the charts."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from sijill.analytics.by_area import AreaRow, area_summary
from sijill.core.i18n import N_, current_locale, gettext
from sijill.core.i18n.formats import format_number, format_percent
from sijill.security.principal import Principal
from sijill.web import choropleth
from sijill.web.render import page
from sijill.web.routing import page_router
from sijill.web.session import page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
Choice = Annotated[str | None, Query(max_length=80, pattern=r"^[A-Za-z0-9_:.-]*$")]

SUPPRESSED = N_("suppressed")
NO_HOUSEHOLDS = N_("no households")
LEVELS = {
    "governorate": N_("Governorates"),
    "district": N_("Districts"),
    "locality": N_("Localities"),
}


@dataclass
class Figure:
    """One area's value of an indicator: a number, or why there is none."""

    value: int | Decimal | None
    suppressed: bool = False

    @property
    def empty(self) -> bool:
        return self.value is None and not self.suppressed


def _share(part: int | None, whole: int | None) -> Figure:
    if part is None or whole is None:
        return Figure(None, suppressed=True)
    return Figure(Decimal(part) / Decimal(whole) if whole else None)


def figure(row: AreaRow, indicator: str) -> Figure:
    if indicator in ("households", "persons"):
        value = getattr(row, indicator)
        return Figure(value, suppressed=value is None)
    measure, _, program = indicator.partition(":")
    cell = next(c for c in row.programs if c.program == program)
    return _share(getattr(cell, measure), row.households if cell.enrolled is not None else None)


def indicators(programs: list[str]) -> list[tuple[str, str]]:
    choices = [("households", gettext("Households")), ("persons", gettext("Persons"))]
    for program in programs:
        choices.append(
            (
                f"enrolled:{program}",
                gettext("Enrolled in %(program)s, share of households") % {"program": program},
            )
        )
        choices.append(
            (
                f"selected:{program}",
                gettext("Selected by %(program)s, share of households") % {"program": program},
            )
        )
    return choices


def _written(value: int | Decimal, share: bool, digits: str) -> str:
    if share:
        return format_percent(value, numbering_system=digits)
    return format_number(value, numbering_system=digits)


@router.get("/dashboard", name="web_dashboard")
def dashboard(
    request: Request, principal: PrincipalDep, level: Choice = None, indicator: Choice = None
) -> Response:
    settings = request.app.state.settings
    with transaction(request, principal) as session:
        summary = area_summary(
            session,
            principal,
            min_cell=settings.min_cell_size,
            level=level or None,
            shapes=True,
            max_age=settings.aggregates_max_age,
        )
    choices = indicators(summary.programs)
    if indicator not in dict(choices):
        indicator = "households"  # the form offers only known ones: an old link falls back
    share = indicator not in ("households", "persons")
    language = current_locale()
    digits = settings.arabic_digits if language == "ar" else "latn"
    figures = {row.code: figure(row, indicator) for row in summary.areas}
    bands, band_of = choropleth.classes(f.value for f in figures.values() if f.value is not None)
    drawn = choropleth.project((row.code, row.geometry) for row in summary.areas if row.geometry)
    names = {
        row.code: (row.name_ar or row.name) if language == "ar" else row.name
        for row in summary.areas
    }
    shapes = []
    for shape in drawn.shapes:
        found = figures[shape.key]
        if found.suppressed:
            fill, text = "url(#suppressed)", gettext(SUPPRESSED)
        elif found.value is None:
            fill, text = "#fff", gettext(NO_HOUSEHOLDS)
        else:
            fill = choropleth.PALETTE[band_of[found.value]]
            text = _written(found.value, share, digits)
        shapes.append((shape, fill, f"{names[shape.key]}: {text}"))
    most = max((row.households or 0 for row in summary.areas), default=0)
    return page(
        request,
        "dashboard.html",
        summary=summary,
        names=names,
        levels=[(code, gettext(LEVELS[code])) for code in summary.levels],
        indicator=indicator,
        indicator_label=dict(choices)[indicator],
        choices=choices,
        share=share,
        figures=figures,
        bands=bands,
        legend=[
            (b, _written(b.low, share, digits), _written(b.high, share, digits))
            for b in bands
            if b.low is not None
        ],
        any_suppressed=any(f.suppressed for f in figures.values()),
        any_empty=any(f.empty for f in figures.values()),
        map=drawn,
        shapes=shapes,
        most=most,
        coverage=[
            (
                cell,
                _share(cell.enrolled, summary.total.households),
                _share(cell.selected, summary.total.households),
            )
            for cell in summary.total.programs
        ],
        share_of=_share,
    )
