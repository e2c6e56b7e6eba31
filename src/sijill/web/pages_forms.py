"""Registering a household and changing one, in forms checked by the API's own rules: the
input is the API's (`registry.schemas`), sent to the services the API calls, and their errors
are shown next to the input they are about, in the user's language. Nothing is saved when any
input is wrong.

A registration form carries a one-time ID, stored as the household's `source_key`
("web-form:<ID>", the registry's key of a record in its source, unique in the table): sent
again (a double click, a reload after the answer was lost), the form registers nothing and
leads to the household it registered. The API has no idempotency key of its own to reuse, and
the registry's source key already is one for imports, with its unique constraint to settle a
race; a table of form IDs would only say it twice.

An update form carries the version it was read at, as the API's PUT does: a household changed
since is refused, and nothing is saved."""

import secrets
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import FormData

from sijill.core.errors import Conflict, InvalidInput, SijillError
from sijill.core.i18n import N_, current_locale, gettext
from sijill.registry import service
from sijill.registry.code_labels import choices
from sijill.registry.schemas import HouseholdCreate, HouseholdUpdate
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.web import forms
from sijill.web.pages_registry import _household_id
from sijill.web.render import page
from sijill.web.routing import page_router
from sijill.web.session import PREFIX, check_csrf, page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
STALE = N_(
    "This household was changed by someone else since you opened the form: reload it to see "
    "the changes, then make yours again. Nothing was saved."
)
NOT_SAVED = N_("Nothing was saved: correct the fields marked below.")
SOURCE = "web-form:"


INCOMPLETE = N_("The form is incomplete: open it again")


class FormIncomplete(SijillError):
    """A form without its hidden parts (member blocks, one-time ID, version): not one of ours."""

    def __init__(self) -> None:
        super().__init__(gettext(INCOMPLETE))


async def form_data(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(form_data)]


def _render(
    request: Request,
    *,
    action: str,
    values: dict[str, Any],
    blocks: list[dict[str, Any]],
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
    **extra: Any,
) -> Response:
    errors = errors or {}
    members = [
        {
            "index": index,
            "person_id": block.get("person_id"),
            "inputs": forms.member_widgets(index, block, values, errors),
            "errors": errors.get(f"members.{index}", []),
            "leaving": {
                "name": f"members.{index}.end_reason",
                "id": forms.input_id(f"members.{index}.end_reason"),
                "value": values.get(f"members.{index}.end_reason", ""),
                "errors": errors.get(f"members.{index}.end_reason", []),
            },
        }
        for index, block in enumerate(blocks)
    ]
    return page(
        request,
        "household_form.html",
        status=status,
        action=action,
        sections=forms.household_sections(values, errors),
        members=members,
        blocks=len(blocks),
        members_errors=errors.get("members", []),
        general=errors.get("", []),
        end_reasons=choices("end_reason", current_locale()),
        not_saved=gettext(NOT_SAVED) if errors else None,
        may_add=len(blocks) < forms.MAX_MEMBERS,
        **extra,
    )


def _blocks(form: FormData) -> list[dict[str, Any]]:
    try:
        count = int(str(form.get("blocks", "")))
    except ValueError:
        raise FormIncomplete from None
    if not 1 <= count <= forms.MAX_MEMBERS:
        raise FormIncomplete
    if form.get("add_member") and count < forms.MAX_MEMBERS:
        count += 1
    return [{} for _ in range(count)]


# --- register --------------------------------------------------------------------------------


@router.get("/households/new", name="web_household_new")
def new_household(request: Request, principal: PrincipalDep) -> Response:
    with transaction(request, principal):  # a refusal is audited
        principal.require(Permission.HOUSEHOLD_REGISTER)
    return _render(
        request,
        action=f"{PREFIX}/households/new",
        values={},
        blocks=[{}],
        form_id=secrets.token_urlsafe(24),
        registering=True,
    )


@router.post("/households/new", name="web_household_register")
def register(request: Request, principal: PrincipalDep, form: FormDep) -> Response:
    check_csrf(request, str(form.get("csrf", "")))
    with transaction(request, principal):
        principal.require(Permission.HOUSEHOLD_REGISTER)
    form_id = str(form.get("form_id", ""))
    if not forms.FORM_ID.match(form_id):
        raise FormIncomplete
    sent = forms.read_sent(form, _blocks(form))
    again = {"action": f"{PREFIX}/households/new", "form_id": form_id, "registering": True}
    if form.get("add_member"):
        return _render(request, values=sent.values, blocks=sent.blocks, **again)
    try:
        data = HouseholdCreate.model_validate(forms.api_input(sent, update=False))
    except ValidationError as error:
        errors = forms.pydantic_errors(error.errors(), sent)
        return _render(request, values=sent.values, blocks=sent.blocks, errors=errors,
                       status=422, **again)  # fmt: skip
    settings = request.app.state.settings
    # Two sends of one form racing: the second fails on the unique source key, and the next
    # attempt finds the household the first registered.
    for attempt in (1, 2):
        try:
            with transaction(request, principal) as session:
                household = service.register_household(
                    session, principal, data, settings=settings, source_key=SOURCE + form_id
                )
            break
        except InvalidInput as error:
            errors = forms.service_errors(error.errors, sent)
            return _render(request, values=sent.values, blocks=sent.blocks, errors=errors,
                           status=422, **again)  # fmt: skip
        except IntegrityError:
            if attempt == 2:
                raise
    return RedirectResponse(f"{PREFIX}/households/{household.household_id}", status_code=303)


# --- update ----------------------------------------------------------------------------------


@router.get("/households/{household_id}/edit", name="web_household_edit")
def edit_household(request: Request, principal: PrincipalDep, household_id: str) -> Response:
    number = _household_id(household_id)
    with transaction(request, principal) as session:
        principal.require(
            Permission.HOUSEHOLD_UPDATE, record_type="household", record_id=str(number)
        )
        found = service.get_household(session, principal, number)
    values, blocks = forms.values_of(found)
    return _render(
        request,
        action=f"{PREFIX}/households/{found.household_id}/edit",
        values=values,
        blocks=blocks,
        household_id=found.household_id,
        version=found.version,
    )


@router.post("/households/{household_id}/edit", name="web_household_update")
def update(request: Request, principal: PrincipalDep, household_id: str, form: FormDep) -> Response:
    check_csrf(request, str(form.get("csrf", "")))
    number = _household_id(household_id)
    shown_id = household_id.strip()
    try:
        version = int(str(form.get("version", "")))
    except ValueError:
        raise FormIncomplete from None
    blocks = _blocks(form)
    sent = forms.read_sent(form, blocks)
    again = {
        "action": f"{PREFIX}/households/{shown_id}/edit",
        "household_id": shown_id,
        "version": version,
    }
    if form.get("add_member"):
        with transaction(request, principal) as session:  # the household is still theirs
            principal.require(Permission.HOUSEHOLD_UPDATE)
            service.get_household(session, principal, number)
        return _render(request, values=sent.values, blocks=sent.blocks, **again)
    errors: dict[str, list[str]] = {}
    try:
        body = forms.api_input(sent, update=True)
        data = HouseholdUpdate.model_validate({**body, "version": version})
    except ValidationError as error:
        errors = forms.pydantic_errors(error.errors(), sent)
    try:
        with transaction(request, principal) as session:
            if errors:
                # The same refusals, scope and audit as a valid form's: only then its errors.
                principal.require(Permission.HOUSEHOLD_UPDATE)
                service.get_household(session, principal, number)
            else:
                settings = request.app.state.settings
                changed = service.update_household(
                    session, principal, number, data, settings=settings
                )
    except Conflict:
        return _render(request, values=sent.values, blocks=sent.blocks, status=409,
                       stale=gettext(STALE), **again)  # fmt: skip
    except InvalidInput as error:
        errors = forms.service_errors(error.errors, sent)
    if errors:
        return _render(request, values=sent.values, blocks=sent.blocks, errors=errors,
                       status=422, **again)  # fmt: skip
    return RedirectResponse(f"{PREFIX}/households/{changed.household_id}", status_code=303)
