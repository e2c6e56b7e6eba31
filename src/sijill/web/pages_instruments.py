"""Payment instrument changes the risk rule held: the list of those waiting in the user's
areas, and a second payment officer's approval or rejection, through
`payments.instruments.decide_instrument` as the API's routes do (four eyes: the service
refuses the change's author)."""

from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from sijill.core.errors import Conflict, Forbidden, NotFound
from sijill.core.i18n import N_, gettext
from sijill.payments.instruments import decide_instrument, pending_instruments
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.web.render import page
from sijill.web.routing import page_router
from sijill.web.session import PREFIX, check_csrf, page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
PENDING_PAGE = f"{PREFIX}/payments/instruments/pending"
OWN_CHANGE = N_(
    "Refused: you recorded this change. Another payment officer must approve or reject it "
    "(four eyes)."
)
NOT_PENDING = N_("Refused: this change is no longer waiting for a decision.")
DONE = {"approve": N_("Change approved."), "reject": N_("Change rejected.")}


def _instrument_id(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**63:
        raise NotFound("There is no such payment instrument")
    return int(text)


def _pending_page(request: Request, principal: Principal, status: int = 200, **notes) -> Response:
    with transaction(request, principal) as session:
        pending = pending_instruments(session, principal)
    return page(request, "instruments_pending.html", status=status, pending=pending, **notes)


@router.get("/payments/instruments/pending", name="web_pending_instruments")
def pending(request: Request, principal: PrincipalDep) -> Response:
    done = DONE.get(request.query_params.get("done", ""))
    return _pending_page(request, principal, notice=done and gettext(done))


def _decide(
    request: Request, principal: Principal, instrument_id: str, csrf: str, decision: str
) -> Response:
    check_csrf(request, csrf)
    number = _instrument_id(instrument_id)
    try:
        with transaction(request, principal) as session:
            decide_instrument(session, principal, number, approve=decision == "approve")
    except Forbidden:
        if not principal.may(Permission.INSTRUMENTS_APPROVE):
            raise  # no list to go back to: the error page says what the roles allow
        # The four-eyes refusal, in the page's language, above the list it was chosen from.
        refusal = gettext(OWN_CHANGE)
        return _pending_page(request, principal, 403, here=PENDING_PAGE, refusal=refusal)
    except Conflict:
        refusal = gettext(NOT_PENDING)
        return _pending_page(request, principal, 409, here=PENDING_PAGE, refusal=refusal)
    # Post, redirect, get: reloading the page does not send the decision again.
    return RedirectResponse(f"{PENDING_PAGE}?done={decision}", status_code=303)


@router.post("/payments/instruments/{instrument_id}/approve", name="web_approve_instrument")
def approve(
    request: Request,
    principal: PrincipalDep,
    instrument_id: str,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    return _decide(request, principal, instrument_id, csrf, "approve")


@router.post("/payments/instruments/{instrument_id}/reject", name="web_reject_instrument")
def reject(
    request: Request,
    principal: PrincipalDep,
    instrument_id: str,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    return _decide(request, principal, instrument_id, csrf, "reject")
