"""Payment batches: the list of the user's areas and a batch's page, where a second payment
officer approves it (four eyes: `payments.batches.approve` refuses the preparer) and a payment
officer then releases it to its provider (`payments.batches.release`, which refuses files
that are not those approved)."""

from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from sijill.core.errors import Conflict, Forbidden, NotFound
from sijill.core.i18n import N_, gettext
from sijill.payments.batches import approve, get_batch, list_batches, parse_batch_id, release
from sijill.payments.models import APPROVED as BATCH_APPROVED
from sijill.payments.models import PREPARED
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.web.render import page, service_detail
from sijill.web.routing import page_router
from sijill.web.session import PREFIX, check_csrf, page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
OWN_BATCH = N_(
    "Refused: you prepared this batch. Another payment officer must approve it (four eyes)."
)
NOT_PREPARED = N_("Refused: this batch is no longer waiting for approval.")
APPROVED = N_("Batch approved.")
RELEASED = N_("Batch released to the provider: its files are in the provider's outbox.")
NOT_APPROVED = N_("Refused: only an approved batch is released, and only once.")


def _batch_id(text: str) -> int:
    try:
        return parse_batch_id(text)
    except Exception:
        raise NotFound("There is no such payment batch") from None


@router.get("/payments/batches", name="web_batches")
def batches(request: Request, principal: PrincipalDep) -> Response:
    with transaction(request, principal) as session:
        found = list_batches(session, principal)
    return page(request, "batches.html", batches=list(reversed(found)))


def _batch_page(
    request: Request, principal: Principal, batch_id: int, status: int = 200, **notes
) -> Response:
    with transaction(request, principal) as session:
        batch = get_batch(session, principal, batch_id)
    if "conflict" in notes:
        # Approved or released meanwhile, or its files need writing again.
        conflict = notes.pop("conflict")
        notes["refusal"] = gettext(NOT_PREPARED) if batch["status"] != PREPARED else conflict
    if "release_conflict" in notes:
        # Not approved (yet, or any more), or its files are no longer those approved.
        conflict = notes.pop("release_conflict")
        waiting = batch["status"] == BATCH_APPROVED
        notes["refusal"] = conflict if waiting else gettext(NOT_APPROVED)
    # The button is there for whoever sees a prepared batch: the service decides who may
    # approve it, and its refusal is shown.
    return page(request, "batch.html", status=status, batch=batch, **notes)


@router.get("/payments/batches/{batch_id}", name="web_batch")
def batch(request: Request, principal: PrincipalDep, batch_id: str) -> Response:
    done = {"approved": APPROVED, "released": RELEASED}.get(request.query_params.get("done", ""))
    return _batch_page(request, principal, _batch_id(batch_id), notice=done and gettext(done))


def _act_on_batch(
    request: Request,
    principal: Principal,
    batch_id: str,
    csrf: str,
    act,
    done: str,
    refusal_of,
    conflict: str,
) -> Response:
    """The shape of a batch's actions: the form's token checked, the service called in one
    transaction, its refusal (403) or conflict (409) shown on the batch's page, and then
    post, redirect, get: reloading the page does not send the action again."""
    check_csrf(request, csrf)
    number = _batch_id(batch_id)
    settings = request.app.state.settings
    try:
        with transaction(request, principal) as session:
            act(session.get_bind(), settings, principal=principal, batch_id=number)
    except Forbidden as error:
        return _batch_page(request, principal, number, status=403, refusal=refusal_of(error))
    except Conflict as error:
        return _batch_page(
            request, principal, number, status=409, **{conflict: service_detail(error)}
        )
    return RedirectResponse(f"{PREFIX}/payments/batches/{number}?done={done}", status_code=303)


@router.post("/payments/batches/{batch_id}/approve", name="web_approve_batch")
def approve_batch(
    request: Request,
    principal: PrincipalDep,
    batch_id: str,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    def refusal_of(error: Forbidden) -> str:
        # Said in the page's language when it is the four-eyes rule.
        return (
            gettext(OWN_BATCH)
            if principal.may(Permission.PAYMENTS_APPROVE)
            else service_detail(error)
        )

    return _act_on_batch(
        request, principal, batch_id, csrf, approve, "approved", refusal_of, "conflict"
    )


@router.post("/payments/batches/{batch_id}/release", name="web_release_batch")
def release_batch(
    request: Request,
    principal: PrincipalDep,
    batch_id: str,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    return _act_on_batch(
        request, principal, batch_id, csrf, release, "released",
        service_detail, "release_conflict",
    )  # fmt: skip
