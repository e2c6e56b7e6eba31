"""A household's area, read once per transaction.

A page about one household calls several services (its record, program decisions,
entitlements, payments, merges), and each checks the household against the user's areas:
each would read the same area. The first read is kept in the session for the rest of the
transaction, and forgotten at every write through the session (a flush, an UPDATE: either may
move a household) and at the transaction's end."""

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import ORMExecuteState, Session

from sijill.core.db import execute_read
from sijill.registry.models import Household

_KEY = "sijill_household_area"
_MISSING = object()
_AREA = select(Household.area_id).where(Household.id == bindparam("household"))


def household_area_id(session: Session, household_id: int) -> int | None:
    """The area the household is registered in now, or None if there is no such household."""
    known = session.info.setdefault(_KEY, {})
    area_id = known.get(household_id, _MISSING)
    if area_id is _MISSING:
        area_id = execute_read(session, _AREA, {"household": household_id}).scalar()
        known[household_id] = area_id
    return area_id


def remember_household_area(session: Session, household_id: int, area_id: int) -> None:
    """What a read of the household's current row found, kept for the transaction."""
    session.info.setdefault(_KEY, {})[household_id] = area_id


@event.listens_for(Session, "after_flush")
@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, *_args) -> None:
    session.info.pop(_KEY, None)


@event.listens_for(Session, "do_orm_execute")
def _forget_on_write(state: ORMExecuteState) -> None:
    if not state.is_select:
        state.session.info.pop(_KEY, None)
