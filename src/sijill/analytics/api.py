"""Analytics routes: aggregates over the registry within the user's areas."""

from typing import Literal

from fastapi import APIRouter

from sijill.analytics import by_area, summary
from sijill.analytics.schemas import AreaSummaryPublic, RegistrySummaryPublic
from sijill.security.deps import PrincipalDep, SessionDep, SettingsDep

# Under /registry: the route predates this stage, and clients already call it there.
router = APIRouter(prefix="/registry", tags=["registry"])


@router.get(
    "/summary",
    operation_id="registry_summary",
    summary="Households and persons by governorate, within the user's areas",
)
def registry_summary(
    session: SessionDep, principal: PrincipalDep, settings: SettingsDep
) -> RegistrySummaryPublic:
    totals = summary.registry_summary(
        session, principal, min_cell=settings.min_cell_size, max_age=settings.aggregates_max_age
    )
    return RegistrySummaryPublic.model_validate(totals, from_attributes=True)


@router.get(
    "/summary/areas",
    operation_id="registry_summary_by_area",
    summary="Households, persons and program coverage by area, within the user's areas",
)
def registry_summary_by_area(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    level: Literal["governorate", "district", "locality"] | None = None,
) -> AreaSummaryPublic:
    rows = by_area.area_summary(
        session,
        principal,
        min_cell=settings.min_cell_size,
        level=level,
        max_age=settings.aggregates_max_age,
    )
    return AreaSummaryPublic.model_validate(rows, from_attributes=True)
