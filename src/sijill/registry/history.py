"""Registry history: a change never overwrites, it files the old state as a version.

`household` and `person` hold the current state; before a change, the state being replaced is
copied to `household_version` / `person_version` with the interval it was valid for
(`valid_from` .. `valid_to`), and the current row gets the next version number.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sijill.core.errors import NotFound
from sijill.registry.models import Household, HouseholdVersion, Membership, Person, PersonVersion
from sijill.registry.read import (
    CURRENT_HOUSEHOLD,
    HOUSEHOLD_STATE,
    PERSON_STATE,
    household_state_public,
    version_select,
)
from sijill.registry.schemas import HouseholdHistoryPublic


def new_household_version(household: Household, *, now: datetime, actor: str) -> None:
    """File the household's current state as a version; the row becomes the next version."""
    session = Session.object_session(household)
    state = {key: getattr(household, key) for key in HOUSEHOLD_STATE}
    session.add(HouseholdVersion(household_id=household.id, valid_to=now, **state))
    household.version += 1
    household.valid_from = now
    household.recorded_by = actor


def new_person_version(person: Person, *, now: datetime, actor: str) -> None:
    """File the person's current state as a version; the row becomes the next version."""
    session = Session.object_session(person)
    state = {key: getattr(person, key) for key in PERSON_STATE}
    session.add(PersonVersion(person_id=person.id, valid_to=now, **state))
    person.version += 1
    person.valid_from = now
    person.recorded_by = actor


def household_history(session: Session, household_id: int) -> HouseholdHistoryPublic:
    """Every version of the household, oldest first, and every membership it has had."""
    current = session.execute(CURRENT_HOUSEHOLD, {"household_id": household_id}).first()
    if current is None:
        raise NotFound(f"There is no household {household_id}")
    versions = session.execute(
        version_select()
        .where(HouseholdVersion.household_id == household_id)
        .order_by(HouseholdVersion.version)
    )
    states = [household_state_public(row._mapping) for row in versions]
    states.append(household_state_public(current._mapping))
    memberships = session.execute(
        select(Membership, Person.merged_into_id)
        .join(Person, Person.id == Membership.person_id)
        .where(Membership.household_id == household_id)
        .order_by(Membership.id)
    ).all()
    return HouseholdHistoryPublic.model_validate(
        {
            "household_id": str(household_id),
            "data": states,
            "count": len(states),
            "memberships": [
                {
                    "person_id": str(m.person_id),
                    "relationship": m.relationship,
                    "start_date": m.start_date,
                    "end_date": m.end_date,
                    "end_reason": m.end_reason,
                    "recorded_at": m.recorded_at,
                    "merged_into": None if merged_into is None else str(merged_into),
                }
                for m, merged_into in memberships
            ],
        }
    )
