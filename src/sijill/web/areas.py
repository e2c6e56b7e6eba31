"""The areas a run form offers: what `security.area_scope.run_areas` allows, named in the
page's language."""

from sqlalchemy.orm import Session

from sijill.core.i18n import current_locale
from sijill.security.area_scope import run_areas
from sijill.security.principal import Principal
from sijill.security.roles import Permission


def run_area_choices(
    session: Session, principal: Principal, permission: Permission
) -> tuple[bool, list[tuple[str, str]]]:
    """Whether the whole registry may be chosen (a national scope), and the areas of the
    user's scope as (code, name) in the page's language."""
    arabic = current_locale() == "ar"
    national = principal.scope(session, permission).national
    areas = [
        (area.code, (area.name_ar if arabic else area.name_en) or "")
        for area in run_areas(session, principal, permission)
    ]
    return national, areas
