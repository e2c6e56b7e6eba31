"""The area a bulk run is limited to, inside the user's scope: one rule for every stage that
reads many households at once (dedup, feature snapshots, scoring, evaluations)."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from sijill.core.areas import Area
from sijill.core.errors import Forbidden, NotFound
from sijill.security.principal import Principal
from sijill.security.roles import Permission


def run_area(
    session: Session, principal: Principal, permission: Permission, area_code: str | None, *,
    whole_registry: str,
) -> int | None:  # fmt: skip
    """The area's ID (None: the whole registry, which needs a national scope; `whole_registry`
    says what was refused). An area outside the user's scope answers as one that does not
    exist."""
    scope = principal.scope(session, permission)
    if area_code is None:
        if not scope.national:
            raise Forbidden(
                f"{whole_registry} needs a scope over the whole country: name one of your "
                "areas with --area"
            )
        return None
    area_id = session.scalar(select(Area.id).where(Area.code == area_code))
    if area_id is None or not scope.allows(area_id):
        raise NotFound(f"There is no area {area_code} in your scope")
    return area_id


def run_areas(session: Session, principal: Principal, permission: Permission) -> list[Area]:
    """The areas a run may be limited to (what `run_area` accepts), by code: a form's
    choices. Nothing when the user has no grant of the permission."""
    if not principal.may(permission):
        return []
    scope = principal.scope(session, permission)
    query = select(Area).order_by(Area.code)
    if not scope.national:
        query = query.where(Area.id.in_(sorted(scope.area_ids or ())))
    return list(session.scalars(query))
