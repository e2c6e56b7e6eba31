"""The registry's pages: search, a household (roster, dwelling and assets, program decisions
explained, entitlements, payments) and its history. Each reads through the services the API
calls, with the signed-in user's `Principal`."""

from contextlib import suppress
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from sijill.core.errors import InvalidInput, NotFound
from sijill.core.i18n import N_, current_locale, gettext
from sijill.core.ids import parse_id
from sijill.payments.instruments import list_instruments
from sijill.payments.models import ACTIVE, PENDING
from sijill.payments.reports import household_history as payments_of
from sijill.programs.household import (
    household_decisions,
    household_enrollments,
    household_entitlements,
)
from sijill.registry import fields, service
from sijill.registry.code_labels import code_label
from sijill.registry.merges.service import household_merges
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.web.render import page
from sijill.web.routing import page_router
from sijill.web.session import page_principal, read_only, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
Criterion = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")]
PAGE_SIZE = 25

DWELLING = (
    "dwelling_tenure", "dwelling_walls", "dwelling_roof", "dwelling_floor", "dwelling_rooms",
    "water_source", "sanitation", "cooking_fuel", "electricity",
)  # fmt: skip
ASSETS = ("assets", "livestock", "income_sources")
PLACE = ("area_code", "address", "registration_date", "registration_source")
NAME_PARTS = ("given_name", "father_name", "grandfather_name", "family_name")
# What a form that sends back to this page reports (`?done=`): post, redirect, get.
DONE = {
    "enrolled": N_("Recorded: the household enrolled in the program."),
    "declined": N_("Recorded: the household declined the program."),
    "instrument-active": N_("Recorded: the household is paid this way from now on."),
    "instrument-pending": N_(
        "Recorded: the change waits for a second payment officer; the current instrument stays "
        "in use until then."
    ),
}
ENROLLMENT_STATUS = {
    "notified": N_("notified, waiting for the household's answer"),
    "enrolled": N_("enrolled"),
    "declined": N_("declined"),
    "exited": N_("left the program"),
}


def label(name: str, catalogue: fields.Catalogue = fields.HOUSEHOLD) -> str:
    return getattr(catalogue[name].labels, current_locale())


def code(code_list: str, value: Any) -> Any:
    """A coded value as people call it, in the page's language."""
    return code_label(code_list, value, current_locale()) if isinstance(value, str) else value


def _shown(name: str, value: Any) -> Any:
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, dict):
        return ", ".join(f"{code(name, key)}: {count}" for key, count in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(str(code(name, item)) for item in value)
    return code(name, value)


def labelled(record: Any, names: tuple[str, ...]) -> list[tuple[str, Any]]:
    return [(label(name), _shown(name, getattr(record, name))) for name in names]


def full_name(member: Any, script: str) -> str:
    return " ".join(
        part for name in NAME_PARTS if (part := getattr(member, f"{name}_{script}", None))
    )


def _household_id(text: str) -> int:
    try:
        return parse_id("household", text)
    except InvalidInput:
        # A malformed ID gets the page of a household that does not exist.
        raise NotFound("There is no such household") from None


@router.get("/households", name="web_households")
async def search(
    request: Request,
    principal: PrincipalDep,
    registry_id: Criterion = None,
    national_id: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00]*$")] = None,
    name: Criterion = None,
    area_code: Annotated[str | None, Query(max_length=32, pattern=r"^[^\x00]*$")] = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    criteria = {
        "registry_id": (registry_id or "").strip() or None,
        "national_id": (national_id or "").strip() or None,
        "name": (name or "").strip() or None,
        "area_code": (area_code or "").strip() or None,
    }
    rows, count = [], None
    if any(criteria.values()):
        rows, count = await read_only(
            request,
            principal,
            lambda session: service.search_households(
                session, principal, page=page_number, page_size=PAGE_SIZE, **criteria
            ),
        )
    results = [
        {
            "id": row.household_id,
            "area": row.area_code,
            "head": next((m for m in row.members if m.relationship == "head"), None),
            "members": sum(1 for m in row.members if m.membership_end is None),
        }
        for row in rows
    ]
    return page(
        request,
        "search.html",
        criteria=criteria,
        results=results,
        count=count,
        page_number=page_number,
        pages=max(1, -(-(count or 0) // PAGE_SIZE)),
        page_link=lambda number: (
            "/web/households?"
            + urlencode({**{k: v for k, v in criteria.items() if v}, "page": number})
        ),
        full_name=full_name,
    )


@router.get("/households/{household_id}", name="web_household")
async def household(request: Request, principal: PrincipalDep, household_id: str) -> Response:
    number = _household_id(household_id)
    done = DONE.get(request.query_params.get("done", ""))
    found = await read_only(
        request, principal, lambda session: _household_reads(request, session, principal, number)
    )
    return _household_answer(request, principal, found, notice=done and gettext(done))


def _enrollments(session, principal: Principal, number: int) -> list | None:
    if not (principal.may(Permission.PROGRAMS_READ) or principal.may(Permission.PROGRAMS_ENROLL)):
        return None
    try:
        found = household_enrollments(session, principal, number)
    except NotFound:  # readable in one of the user's areas, not in their programs'
        return None
    for row in found:
        row["label"] = gettext(ENROLLMENT_STATUS.get(row["status"], row["status"]))
    return found


def _instruments(session, principal: Principal, number: int) -> list | None:
    """The active instrument and a change waiting, masked, for those the API shows them to."""
    if not principal.may(Permission.INSTRUMENTS_WRITE):
        return None
    try:
        found = list_instruments(session, principal, number)
    except NotFound:
        return None
    return [row for row in found if row.status in (ACTIVE, PENDING)]


def household_page(
    request: Request, principal: Principal, number: int, status: int = 200, **notes: Any
) -> Response:
    """The household's page for a form sent here; `notes` (notice, refusal) say what it did."""
    with transaction(request, principal) as session:
        found = _household_reads(request, session, principal, number)
    return _household_answer(request, principal, found, status, **notes)


def _household_reads(
    request: Request, session: Session, principal: Principal, number: int
) -> dict[str, Any]:
    """What the household's page shows, each part through the service the API reads it with
    (and none the user may not read)."""
    found: dict[str, Any] = {"decisions": None, "entitlements": None, "payments": None}
    found["household"] = service.get_household(session, principal, number)
    if principal.may(Permission.PROGRAMS_READ):
        try:
            settings = request.app.state.settings
            found["decisions"] = household_decisions(
                session, settings, principal, number, current_locale()
            )
            found["entitlements"] = household_entitlements(session, principal, number)
        except NotFound:  # readable in one of the user's areas, not in their programs'
            found["decisions"] = found["entitlements"] = None
    if principal.may(Permission.PAYMENTS_READ):
        with suppress(NotFound):  # readable in the user's areas, not in their payments'
            found["payments"] = payments_of(session, principal, found["household"].household_id)
    # Its members' merges that this user could undo (none without the merge permission).
    found["merges"] = household_merges(session, principal, number)
    found["enrollments"] = _enrollments(session, principal, number)
    found["instruments"] = _instruments(session, principal, number)
    return found


def _household_answer(
    request: Request, principal: Principal, found: dict[str, Any], status: int = 200, **notes: Any
) -> Response:
    household = found["household"]
    return page(
        request,
        "household.html",
        status=status,
        members=[m for m in household.members if m.membership_end is None],
        place=labelled(household, PLACE),
        dwelling=labelled(household, DWELLING),
        assets=labelled(household, ASSETS),
        **found,
        **notes,
        may_history=principal.may(Permission.HOUSEHOLD_HISTORY),
        # A past version's members cannot be merged: only the current household offers it.
        may_merge=principal.may(Permission.MERGE) and household.valid_to is None,
        full_name=full_name,
        code=code,
        person_label=lambda name: label(name, fields.PERSON),
    )


@router.get("/households/{household_id}/history", name="web_household_history")
async def history(request: Request, principal: PrincipalDep, household_id: str) -> Response:
    number = _household_id(household_id)
    found = await read_only(
        request, principal, lambda session: service.household_history(session, principal, number)
    )
    return page(request, "history.html", history=found, versions=list(reversed(found.data)))
