"""Merging two records of one person without a review flag: a registrar who knows both
registry IDs (a family registered twice by two offices, say) merges them from a member's row
on the household page, as `POST /persons/{id}/merge` does. The service is the API's
(`registry.merges.service.merge_persons`): the same permission, scopes, checks and audit;
the merge is undone from its own page (pages_review)."""

from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from sijill.core.errors import Conflict, InvalidInput, NotFound
from sijill.core.i18n import N_, gettext
from sijill.core.ids import parse_id
from sijill.registry import service
from sijill.registry.merges.models import KEPT, LOST
from sijill.registry.merges.service import PERMISSION, merge_persons
from sijill.security.principal import Principal
from sijill.web.pages_registry import full_name
from sijill.web.pages_review import NO_HOUSEHOLD
from sijill.web.render import page
from sijill.web.routing import page_router
from sijill.web.session import PREFIX, check_csrf, page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
Csrf = Annotated[str, Form(max_length=128)]

NOT_AN_ID = N_("not a person's registry ID: 12 digits, the last a check digit")
NOBODY = N_("no person with this registry ID in your areas")
SAME_RECORD = N_("this is the record you are merging into: write the other one's ID")
ALREADY_MERGED = N_(
    "One of the two records was already merged into another person: merge into that person, "
    "or undo the earlier merge first."
)


def _ids(household_id: str, person_id: str) -> tuple[int, int]:
    try:
        return parse_id("household", household_id), parse_id("person", person_id)
    except InvalidInput:
        raise NotFound("There is no such person") from None


def _kept_member(session, principal: Principal, household_id: int, person_id: int) -> Any:
    """The person merged into, a current member of a household the user may read (the
    household's read is audited as on its page); anything else is a page that does not
    exist."""
    household = service.get_household(session, principal, household_id)
    for member in household.members:
        if member.person_id == str(person_id) and member.membership_end is None:
            return household, member
    raise NotFound("There is no such person")


def _form(
    request: Request,
    principal: Principal,
    household_id: int,
    person_id: int,
    status: int = 200,
    **shown: Any,
) -> Response:
    principal.require(PERMISSION, record_type="person", record_id=str(person_id))
    with transaction(request, principal) as session:
        household, member = _kept_member(session, principal, household_id, person_id)
    return page(
        request,
        "person_merge.html",
        status=status,
        household=household,
        member=member,
        names={script: full_name(member, script) for script in ("ar", "lat")},
        errors=shown.pop("errors", {}),
        lost=shown.pop("lost", ""),
        keep=shown.pop("keep", KEPT),
        **shown,
    )


@router.get("/households/{household_id}/members/{person_id}/merge", name="web_person_merge_form")
def merge_form(
    request: Request, principal: PrincipalDep, household_id: str, person_id: str
) -> Response:
    return _form(request, principal, *_ids(household_id, person_id))


@router.post("/households/{household_id}/members/{person_id}/merge", name="web_person_merge")
def merge(
    request: Request,
    principal: PrincipalDep,
    household_id: str,
    person_id: str,
    csrf: Csrf = "",
    lost: Annotated[str, Form(max_length=40)] = "",
    keep_membership_of: Annotated[str, Form(max_length=8)] = KEPT,
) -> Response:
    check_csrf(request, csrf)
    household_number, kept_id = _ids(household_id, person_id)
    principal.require(PERMISSION, record_type="person", record_id=str(kept_id))
    keep = keep_membership_of if keep_membership_of in (KEPT, LOST) else KEPT

    def again(status: int, **notes: Any) -> Response:
        # The form as sent, with what was wrong; nothing was merged.
        return _form(
            request, principal, household_number, kept_id, status, lost=lost, keep=keep, **notes
        )

    try:
        lost_id = parse_id("person", lost.strip())
    except InvalidInput:
        return again(422, errors={"lost": gettext(NOT_AN_ID)})
    if lost_id == kept_id:
        return again(422, errors={"lost": gettext(SAME_RECORD)})
    kept_found = False
    try:
        with transaction(request, principal) as session:
            # Checked first, so that a not-found below is about the other record only.
            _kept_member(session, principal, household_number, kept_id)
            kept_found = True
            merged = merge_persons(session, principal, kept_id, lost_id, keep_membership_of=keep)
    except NotFound:
        if not kept_found:
            raise
        return again(422, errors={"lost": gettext(NOBODY)})
    except Conflict:
        return again(409, refusal=gettext(ALREADY_MERGED))
    except InvalidInput:  # the chosen household's record belongs to none
        return again(422, errors={"keep_membership_of": gettext(NO_HOUSEHOLD)})
    # Post, redirect, get: reloading the merge's page does not merge again.
    return RedirectResponse(f"{PREFIX}/review/merges/{merged.merge_id}?merged=1", status_code=303)
