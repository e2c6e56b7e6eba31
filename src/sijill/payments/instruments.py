"""How a household is paid: record an instrument, change it under the risk rule with a second
officer's approval, list them masked, and read the details back only to write payment files.

A household's first instrument is active at once. A change is where money is diverted, so
under the risk rule (`settings.instrument_change_review`) the new instrument waits, pending,
for a second officer while the old one stays active: `always`; `never`; or `before_payment`
(the default), when the household has an approved payable entitlement not yet instructed,
i.e. a payment is on its way. Otherwise the new one is active and the old one replaced in the
same transaction. The author of a change can neither approve nor reject it (four eyes).

Every step is audited under the instrument's ID, never with a detail. A household outside the
user's areas answers exactly as one that does not exist.
"""

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.db import execute_read
from sijill.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from sijill.core.ids import format_id, parse_id
from sijill.core.settings import Settings
from sijill.payments.instrument_details import (
    BLIND_INDEX_FIELD,
    Details,
    parse_details,
    phone_region,
)
from sijill.payments.models import (
    ACTIVE,
    LIVE,
    PENDING,
    REJECTED,
    REPLACED,
    PaymentInstruction,
    PaymentInstrument,
)
from sijill.programs.entitlement_models import APPROVED, PAYABLE, Entitlement, EntitlementCycle
from sijill.registry.lookup import household_area_id
from sijill.registry.models import Household, Membership
from sijill.security.keys.keyring import Keyring
from sijill.security.principal import Principal
from sijill.security.roles import Permission

RECORD = "payments.instrument.record"
APPROVE = "payments.instrument.approve"
REJECT = "payments.instrument.reject"
READ = "payments.instrument.read"
IMPORT = "payments.instrument.import"
RECORD_TYPE = "payment_instrument"
DETAILS_FIELD = "payment_instrument"  # the keyring's column name for the encrypted document
ALWAYS_REASON = "every change of instrument needs a second officer (instrument_change_review)"


class InstrumentView(BaseModel):
    """An instrument as shown: masked, never its details."""

    id: int
    household_id: str
    person_id: str | None
    kind: str
    masked: str
    status: str
    reason: str | None
    created_by: str
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    replaced_at: datetime | None


def view(row: Any) -> InstrumentView:
    """`row`: a PaymentInstrument, or a row of `_SHOWN`'s columns."""
    return InstrumentView(
        id=row.id,
        household_id=format_id(row.household_id),
        person_id=None if row.person_id is None else format_id(row.person_id),
        kind=row.kind,
        masked=row.masked,
        status=row.status,
        reason=row.reason,
        created_by=row.created_by,
        created_at=row.created_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        replaced_at=row.replaced_at,
    )


def _missing(household_id: int | str) -> NotFound:
    # Worded as the registry's, so an instrument route says nothing a household read would not.
    return NotFound(f"There is no household {household_id}")


def _household(
    session: Session, principal: Principal, action: Permission, household_id: int, audit: str
) -> Household:
    """The household, locked for the change, if it exists and lies in the user's areas."""
    household = session.scalars(
        select(Household).where(Household.id == household_id).with_for_update()
    ).first()
    if household is None or not principal.scope(session, action).allows(household.area_id):
        principal.audit(audit, "not_found", "household", str(household_id), permission=action)
        raise _missing(household_id)
    return household


def review_reason(session: Session, rule: str, household_id: int) -> str | None:
    """Why a change of this household's instrument waits for a second officer, or None."""
    if rule == "never":
        return None
    if rule == "always":
        return ALWAYS_REASON
    found = session.execute(payment_due(household_ids=[household_id]).limit(1)).first()
    if found is None:
        return None
    return f"a payment of {found.program} for cycle {found.cycle} is approved and not yet sent"


def payment_due(household_ids: Sequence[int]):
    """Approved, payable entitlements of these households that no live instruction pays yet:
    (household_id, program, cycle)."""
    instructed = exists().where(
        PaymentInstruction.program == Entitlement.program,
        PaymentInstruction.cycle == Entitlement.cycle,
        PaymentInstruction.household_id == Entitlement.household_id,
        PaymentInstruction.status.in_(LIVE),
    )
    return (
        select(Entitlement.household_id, Entitlement.program, Entitlement.cycle)
        .join(EntitlementCycle, EntitlementCycle.id == Entitlement.batch_id)
        .where(
            Entitlement.household_id.in_(list(household_ids)),
            Entitlement.status.in_(PAYABLE),
            EntitlementCycle.status == APPROVED,
            ~instructed,
        )
        .order_by(Entitlement.program, Entitlement.cycle)
    )


def _recipient(session: Session, household_id: int, person: str | None) -> int | None:
    if person is None or not str(person).strip():
        return None
    person_id = parse_id("person", person, "person_id")
    member = session.scalar(
        select(Membership.id).where(
            Membership.household_id == household_id,
            Membership.person_id == person_id,
            Membership.end_date.is_(None),
        )
    )
    if member is None:
        raise InvalidInput("the recipient is not a current member of this household")
    return person_id


def record_instrument(
    session: Session,
    principal: Principal,
    keyring: Keyring,
    settings: Settings,
    *,
    household: str | int,
    kind: str,
    details: dict,
    recipient: str | None = None,
) -> InstrumentView:
    """Record how a household is paid: active if it is the first, or if the risk rule lets the
    change through (the old one replaced); else pending, for a second officer."""
    action = Permission.INSTRUMENTS_WRITE
    principal.require(action, record_type="household", record_id=str(household))
    household_id = parse_id("household", household, "household_id")
    _household(session, principal, action, household_id, RECORD)
    try:
        parsed = parse_details(kind, details, phone_region(settings.national_id_scheme))
        person_id = _recipient(session, household_id, recipient)
    except InvalidInput:
        principal.audit(RECORD, "invalid", "household", str(household_id), permission=action)
        raise
    current = _instruments(session, household_id, (ACTIVE, PENDING), lock=True)
    if any(row.status == PENDING for row in current):
        principal.audit(RECORD, "conflict", "household", str(household_id), permission=action)
        raise Conflict(
            "This household's instrument change is waiting for a second officer: approve or "
            "reject it first"
        )
    now = clock.utcnow()
    reason = review_reason(session, settings.instrument_change_review, household_id)
    held = bool(current) and reason is not None
    if current and not held:
        _replace(session, current[0], now)
    row = new_row(keyring, parsed, household_id, person_id, principal.username, now)
    row.status, row.reason = (PENDING, reason) if held else (ACTIVE, None)
    session.add(row)
    session.flush()
    principal.audit(RECORD, "ok", RECORD_TYPE, str(row.id), permission=action)
    return view(row)


def new_row(
    keyring: Keyring,
    parsed: Details,
    household_id: int,
    person_id: int | None,
    actor: str,
    now: datetime,
) -> PaymentInstrument:
    fingerprint = (
        None
        if parsed.account is None
        else keyring.blind_index(parsed.account, field=BLIND_INDEX_FIELD)
    )
    return PaymentInstrument(
        household_id=household_id,
        person_id=person_id,
        kind=parsed.kind,
        details=keyring.encrypt(DETAILS_FIELD, parsed.document()),
        fingerprint=fingerprint,
        masked=parsed.masked,
        created_by=actor,
        created_at=now,
    )


def _replace(session: Session, old: PaymentInstrument, now: datetime) -> None:
    old.status, old.replaced_at = REPLACED, now
    # Out before the new one comes in: one active instrument per household (a unique index).
    session.flush()


def _instruments(
    session: Session, household_id: int, statuses: Iterable[str], *, lock: bool = False
) -> list[PaymentInstrument]:
    query = (
        select(PaymentInstrument)
        .where(
            PaymentInstrument.household_id == household_id,
            PaymentInstrument.status.in_(list(statuses)),
        )
        .order_by(PaymentInstrument.id)
    )
    return list(session.scalars(query.with_for_update() if lock else query))


def decide_instrument(
    session: Session, principal: Principal, instrument_id: int, approve: bool
) -> InstrumentView:
    """Approve (the instrument becomes active, the old one replaced) or reject a pending
    change; never by the officer who recorded it."""
    action = Permission.INSTRUMENTS_APPROVE
    audit = APPROVE if approve else REJECT
    principal.require(action, record_type=RECORD_TYPE, record_id=str(instrument_id))
    row = session.scalars(
        select(PaymentInstrument).where(PaymentInstrument.id == instrument_id).with_for_update()
    ).first()
    area_id = None if row is None else session.get(Household, row.household_id).area_id
    if row is None or not principal.scope(session, action).allows(area_id):
        principal.audit(audit, "not_found", RECORD_TYPE, str(instrument_id), permission=action)
        raise NotFound(f"There is no payment instrument {instrument_id}")
    if row.status != PENDING:
        principal.audit(audit, "conflict", RECORD_TYPE, str(instrument_id), permission=action)
        raise Conflict(
            f"Payment instrument {instrument_id} is {row.status}: only a pending change is "
            "approved or rejected"
        )
    if row.created_by == principal.username:
        principal.audit(audit, "denied", RECORD_TYPE, str(instrument_id), permission=action)
        raise Forbidden(
            f"You recorded payment instrument {instrument_id}: another officer must approve or "
            "reject it (four eyes)"
        )
    now = clock.utcnow()
    if approve:
        for old in _instruments(session, row.household_id, (ACTIVE,), lock=True):
            _replace(session, old, now)
    row.status = ACTIVE if approve else REJECTED
    row.decided_by, row.decided_at = principal.username, now
    session.flush()
    principal.audit(audit, "ok", RECORD_TYPE, str(instrument_id), permission=action)
    return view(row)


PENDING_SHOWN = 200  # the oldest first: a list of changes waiting, not a search


def pending_instruments(session: Session, principal: Principal) -> list[InstrumentView]:
    """The changes waiting for a second officer in the user's areas, oldest first, masked:
    what an approving officer works through (the author's own are listed, and refused)."""
    action = Permission.INSTRUMENTS_APPROVE
    scope = principal.scope(session, action)
    rows = session.scalars(
        select(PaymentInstrument)
        .join(Household, Household.id == PaymentInstrument.household_id)
        .where(PaymentInstrument.status == PENDING, scope.condition(Household.area_id))
        .order_by(PaymentInstrument.id)
        .limit(PENDING_SHOWN)
    ).all()
    principal.audit(READ, "ok", RECORD_TYPE, None, permission=action)
    return [view(row) for row in rows]


# What `view` shows, and never the details: a read of them is a decryption's business.
_SHOWN = [getattr(PaymentInstrument, name) for name in InstrumentView.model_fields]
# Made once: a household's page lists them for every view.
_INSTRUMENTS_OF_HOUSEHOLD = (
    select(*_SHOWN)
    .where(PaymentInstrument.household_id == bindparam("household"))
    .order_by(PaymentInstrument.id.desc())
)


def list_instruments(
    session: Session, principal: Principal, household: str | int
) -> list[InstrumentView]:
    """Every instrument the household has had, newest first, masked."""
    action = Permission.INSTRUMENTS_WRITE
    principal.require(action, record_type="household", record_id=str(household))
    household_id = parse_id("household", household, "household_id")
    area_id = household_area_id(session, household_id)
    if area_id is None or not principal.scope(session, action).allows(area_id):
        principal.audit(READ, "not_found", "household", str(household_id), permission=action)
        raise _missing(household_id)
    rows = execute_read(session, _INSTRUMENTS_OF_HOUSEHOLD, {"household": household_id})
    principal.audit(READ, "ok", "household", str(household_id), permission=action)
    return [view(row) for row in rows]


def read_details(keyring: Keyring, rows: Iterable[str]) -> list[dict[str, str | None]]:
    """The decrypted details of many instruments (their `details` column), for the files a
    provider is sent: call it only while writing them, and keep the result nowhere else."""
    return [json.loads(text) for text in keyring.decrypt_many(DETAILS_FIELD, rows)]
