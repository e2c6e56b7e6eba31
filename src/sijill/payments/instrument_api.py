"""How households are paid: record an instrument, list them (masked), and approve or reject
a change the risk rule held. A household outside your areas answers as one that does not
exist."""

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Path, status
from pydantic import BaseModel, Field

from sijill.core.problems import problem_responses
from sijill.payments.instruments import (
    InstrumentView,
    decide_instrument,
    list_instruments,
    record_instrument,
)
from sijill.payments.models import INSTRUMENT_KINDS
from sijill.registry.api import HouseholdId
from sijill.security.deps import PrincipalDep, SessionDep, SettingsDep
from sijill.security.keys.keyring import current_keyring

router = APIRouter(tags=["payments"])
InstrumentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a payment instrument's ID")]
Kind = Literal[INSTRUMENT_KINDS]  # type: ignore[valid-type]


class InstrumentCreate(BaseModel):
    kind: Kind = Field(..., description="bank, wallet, cash or card")
    details: dict[str, Annotated[str, Field(max_length=200)]] = Field(
        ...,
        max_length=8,
        description="bank: iban, bic (optional), holder; wallet: phone, operator (optional), "
        "holder; cash: point, holder; card: card_number, holder",
        examples=[{"iban": "TR330006100519786457841326", "holder": "Ahmad Ali"}],
    )
    person_id: str | None = Field(
        None, max_length=20, description="the member who collects (a person registry ID)"
    )


@router.post(
    "/households/{household_id}/instruments",
    status_code=status.HTTP_201_CREATED,
    operation_id="record_payment_instrument",
    responses=problem_responses(404, 409),
    summary="Record how a household is paid (a change may wait for a second officer)",
)
def record(
    household_id: HouseholdId,
    body: Annotated[InstrumentCreate, Body()],
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> InstrumentView:
    """The first instrument is active at once. A change is active at once, replacing the old
    one, unless the risk rule (`instrument_change_review`) holds it: then it is pending and
    the old one stays active until another officer approves it."""
    return record_instrument(
        session, principal, current_keyring(), settings,
        household=household_id, kind=body.kind, details=body.details, recipient=body.person_id,
    )  # fmt: skip


@router.get(
    "/households/{household_id}/instruments",
    operation_id="list_payment_instruments",
    responses=problem_responses(404),
    summary="Every instrument a household has had, newest first, masked",
)
def read(
    household_id: HouseholdId, session: SessionDep, principal: PrincipalDep
) -> list[InstrumentView]:
    return list_instruments(session, principal, household_id)


@router.post(
    "/payments/instruments/{instrument_id}/approve",
    operation_id="approve_payment_instrument",
    responses=problem_responses(404, 409),
    summary="Approve a pending change: not by the officer who recorded it",
)
def approve(
    instrument_id: InstrumentId, session: SessionDep, principal: PrincipalDep
) -> InstrumentView:
    return decide_instrument(session, principal, instrument_id, approve=True)


@router.post(
    "/payments/instruments/{instrument_id}/reject",
    operation_id="reject_payment_instrument",
    responses=problem_responses(404, 409),
    summary="Reject a pending change: the household keeps its active instrument",
)
def reject(
    instrument_id: InstrumentId, session: SessionDep, principal: PrincipalDep
) -> InstrumentView:
    return decide_instrument(session, principal, instrument_id, approve=False)
