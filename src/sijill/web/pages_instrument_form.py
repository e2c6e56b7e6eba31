"""Recording how a household is paid, in a form checked by the API's own rules: the input is
the API's (`InstrumentCreate`), sent to `payments.instruments.record_instrument` as the API's
route sends it, so the permission, the scope, the risk rule holding a change for a second
officer and the audit are the same. An error is shown next to its input, in the user's
language, and nothing is saved.

Each kind's details have their own fieldset; the server reads only the chosen kind's, so the
form works without JavaScript. After saving, the household's page shows the instrument masked:
no page ever shows an account number back once it is saved."""

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from sijill.core.errors import Conflict, InvalidInput
from sijill.core.i18n import N_, current_locale, gettext
from sijill.payments.instrument_api import InstrumentCreate
from sijill.payments.instrument_details import FIELDS, OPTIONAL
from sijill.payments.instruments import list_instruments, record_instrument
from sijill.payments.models import ACTIVE, INSTRUMENT_KINDS, PENDING
from sijill.registry import service
from sijill.security.keys.keyring import current_keyring
from sijill.security.principal import Principal
from sijill.web import forms
from sijill.web.pages_forms import NOT_SAVED
from sijill.web.pages_registry import _household_id, full_name
from sijill.web.render import page
from sijill.web.routing import page_router
from sijill.web.session import PREFIX, check_csrf, page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
RECIPIENT = "person_id"
KINDS = {
    "bank": N_("Bank account"),
    "wallet": N_("Mobile wallet"),
    "cash": N_("Cash at a pick-up point"),
    "card": N_("Card"),
}
LABELS = {
    "holder": N_("Account holder"),
    "iban": N_("IBAN"),
    "bic": N_("BIC"),
    "phone": N_("Mobile phone number"),
    "operator": N_("Wallet operator"),
    "point": N_("Pick-up point code"),
    "card_number": N_("Card number"),
}
HINTS = {
    "iban": N_("e.g. JO94CBJO0010000000000131000302"),
    "phone": forms.HINTS["phone"],
    "point": N_("the agent's or post office's code: 2 to 20 letters A-Z, digits or dashes"),
    "card_number": N_("12 to 19 digits"),
}
# What the service says about a detail names the detail first ("iban is not a valid IBAN
# (...)"): said in French or Arabic by the detail's own wording, since the English message
# holds the library's reason, which no catalog has.
WORDING = {
    "holder": forms.BY_KIND[forms.Kind.NAME],
    "iban": N_("not a valid IBAN: check the country code, the length and the check digits"),
    "bic": N_("not a valid BIC: 8 or 11 letters and digits"),
    "phone": N_("not a mobile phone number: write it with + and the country code"),
    "operator": N_("at most 40 characters"),
    "point": HINTS["point"],
    "card_number": N_("not a card number: 12 to 19 digits, and the last one must match"),
}
NOT_MEMBER = N_("choose one of the household's current members")
PENDING_FIRST = N_(
    "This household's change of instrument is waiting for a second officer: it must be "
    "approved or rejected before another is recorded. Nothing was saved."
)


def _action(household_id: str) -> str:
    return f"{PREFIX}/households/{household_id}/instruments/new"


def _read(form: FormData) -> tuple[str, dict[str, str], str]:
    """The chosen kind, its details as typed (the other kinds' inputs are not read), and the
    collecting member."""
    kind = str(form.get("kind", ""))
    names = FIELDS.get(kind, ())
    details = {name: str(form.get(f"{kind}.{name}", "")) for name in names}
    return kind, details, str(form.get(RECIPIENT, ""))


def _api_details(details: dict[str, str]) -> dict[str, str]:
    # A blank optional input is a detail not given, as a JSON body would leave it out.
    return {name: value for name, value in details.items() if value.strip()}


def _said(message: str, name: str) -> str:
    if " is required for a " in message:
        return gettext(forms.BY_TYPE["missing"])
    if current_locale() == "en":
        return message
    return gettext(WORDING.get(name, forms.BY_KIND[forms.Kind.TEXT]))


def _service_error(kind: str, message: str) -> tuple[str, str]:
    """The input a service's one-line message is about, and what to say there."""
    if "recipient" in message or "person registry ID" in message:
        return RECIPIENT, gettext(NOT_MEMBER)
    if message.startswith("kind "):
        return "kind", gettext(forms.BY_TYPE["literal_error"])
    name = next((n for n in FIELDS.get(kind, ()) if message.startswith(n + " ")), "")
    return (f"{kind}.{name}" if name else "", _said(message, name))


def _pydantic_errors(kind: str, errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for error in errors:
        loc = [str(part) for part in error["loc"]]
        where = f"{kind}.{loc[1]}" if loc[0] == "details" and len(loc) > 1 else loc[0]
        wording = forms.BY_TYPE.get(error["type"], forms.BY_TYPE["literal_error"])
        ctx = {key: str(value) for key, value in (error.get("ctx") or {}).items()}
        found.setdefault(where, []).append(gettext(wording).format(**ctx))
    return found


def _inputs(kind: str, values: dict[str, str], errors: dict[str, list[str]]) -> list[dict]:
    """Each kind's fieldset and its inputs, as the template draws them."""
    return [
        {
            "kind": each,
            "label": gettext(KINDS[each]),
            "inputs": [
                {
                    "name": f"{each}.{name}",
                    "id": forms.input_id(f"{each}.{name}"),
                    "label": gettext(LABELS[name]),
                    "optional": name in OPTIONAL[each],
                    "hint": gettext(HINTS[name]) if name in HINTS else None,
                    "value": values.get(name, "") if each == kind else "",
                    "errors": errors.get(f"{each}.{name}", []),
                    "dir": "auto" if name == "holder" else "ltr",
                }
                for name in FIELDS[each]
            ],
        }
        for each in INSTRUMENT_KINDS
    ]


def _render(
    request: Request,
    principal: Principal,
    number: int,
    *,
    kind: str = "",
    values: dict[str, str] | None = None,
    recipient: str = "",
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
    refusal: str | None = None,
) -> Response:
    errors = errors or {}
    with transaction(request, principal) as session:
        # The instruments' own scope first: a household outside it is one that does not exist.
        shown = [
            row
            for row in list_instruments(session, principal, number)
            if row.status in (ACTIVE, PENDING)
        ]
        found = service.get_household(session, principal, number)
    members = [
        {"id": m.person_id, "ar": full_name(m, "ar"), "lat": full_name(m, "lat")}
        for m in found.members
        if m.membership_end is None
    ]
    return page(
        request,
        "instrument_form.html",
        status=status,
        household_id=found.household_id,
        action=_action(found.household_id),
        kinds=[(each, gettext(KINDS[each])) for each in INSTRUMENT_KINDS],
        kind=kind,
        kind_errors=errors.get("kind", []),
        fieldsets=_inputs(kind, values or {}, errors),
        members=members,
        recipient=recipient,
        recipient_errors=errors.get(RECIPIENT, []),
        general=errors.get("", []),
        instruments=shown,
        not_saved=gettext(NOT_SAVED) if errors else None,
        refusal=refusal,
    )


@router.get("/households/{household_id}/instruments/new", name="web_instrument_new")
def new_instrument(request: Request, principal: PrincipalDep, household_id: str) -> Response:
    return _render(request, principal, _household_id(household_id))


async def _form(request: Request) -> FormData:
    return await request.form()


@router.post("/households/{household_id}/instruments/new", name="web_instrument_record")
def record(
    request: Request,
    principal: PrincipalDep,
    household_id: str,
    form: Annotated[FormData, Depends(_form)],
) -> Response:
    check_csrf(request, str(form.get("csrf", "")))
    number = _household_id(household_id)
    kind, details, recipient = _read(form)
    again = {"kind": kind, "values": details, "recipient": recipient}
    try:
        body = InstrumentCreate.model_validate(
            {"kind": kind, "details": _api_details(details), "person_id": recipient or None}
        )
    except ValidationError as error:
        errors = _pydantic_errors(kind, error.errors())
        return _render(request, principal, number, errors=errors, status=422, **again)
    settings = request.app.state.settings
    try:
        with transaction(request, principal) as session:
            saved = record_instrument(
                session, principal, current_keyring(), settings,
                household=number, kind=body.kind, details=body.details, recipient=body.person_id,
            )  # fmt: skip
    except InvalidInput as error:
        where, message = _service_error(kind, error.detail)
        errors = {where: [message]}
        return _render(request, principal, number, errors=errors, status=422, **again)
    except Conflict:
        refusal = gettext(PENDING_FIRST)
        return _render(request, principal, number, status=409, refusal=refusal, **again)
    # Post, redirect, get: the household's page says whether it is in use or waiting.
    done = "instrument-active" if saved.status == ACTIVE else "instrument-pending"
    return RedirectResponse(
        f"{PREFIX}/households/{saved.household_id}?done={done}", status_code=303
    )
