"""A household's roster: who is in it, from when to when, in what relationship to the head.

An update lists the members the household should now have; the roster compares that with the
open memberships, checks that every member left out has a reason to leave, and then closes
and opens memberships. A person keeps one identity throughout: moving into this household
closes their membership elsewhere (reason `moved`), and a new relationship to the head is a
new membership, so an earlier day still shows the earlier one.
"""

from collections.abc import Callable, Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sijill.core.errors import ErrorCollector
from sijill.identity.names import search_name
from sijill.registry import fields, identifiers
from sijill.registry.history import new_household_version, new_person_version
from sijill.registry.identifiers import Identifiers
from sijill.registry.models import Household, Membership, Person
from sijill.registry.schemas import Departure, HouseholdUpdate, PersonCreate, column_values

# A membership closed because the member's relationship to the head changed; the member
# continues in the same household under a new membership.
RELATIONSHIP_CHANGED = "relationship_changed"


class Roster:
    """Who is in the household, who the update lists, and who leaves: checked, then applied."""

    def __init__(self, session: Session, household_id: int):
        self.session = session
        self.household_id = household_id
        self.open_here: dict[int, Membership] = {}
        self.persons: dict[int, Person] = {}
        self.listed: dict[int, int] = {}
        self.departures: dict[int, Departure] = {}

    @classmethod
    def load(
        cls,
        session: Session,
        household_id: int,
        data: HouseholdUpdate,
        errors: ErrorCollector,
        visible: Callable[[set[int]], set[int]] = set,
    ) -> "Roster":
        """`visible` tells which persons from elsewhere the caller may name: the others
        answer as persons that do not exist."""
        roster = cls(session, household_id)
        roster.open_here = {
            m.person_id: m
            for m in session.scalars(
                select(Membership).where(
                    Membership.household_id == household_id, Membership.end_date.is_(None)
                )
            )
        }
        for index, member in enumerate(data.members):
            person_id = listed_id(member)
            if person_id is None:
                continue
            if person_id in roster.listed:
                errors.add(
                    f"members.{index}.person_id",
                    f"person {person_id} is listed twice, "
                    f"also as members.{roster.listed[person_id]}",
                )
            roster.listed.setdefault(person_id, index)
        arriving = set(roster.listed) - set(roster.open_here)
        wanted = (set(roster.listed) - (arriving - visible(arriving))) | set(roster.open_here)
        if wanted:
            roster.persons = {
                p.id: p
                for p in session.scalars(
                    select(Person).where(Person.id.in_(wanted)).with_for_update()
                )
            }
        for person_id, index in roster.listed.items():
            if person_id not in roster.persons:
                errors.add(f"members.{index}.person_id", f"there is no person {person_id}")
            elif (merged_into := roster.persons[person_id].merged_into_id) is not None:
                errors.add(
                    f"members.{index}.person_id",
                    f"person {person_id} was merged into person {merged_into}: list that "
                    "person instead",
                )
        roster._check_departures(data, errors)
        return roster

    def _check_departures(self, data: HouseholdUpdate, errors: ErrorCollector) -> None:
        for index, departure in enumerate(data.departures):
            person_id = int(departure.person_id)
            field = f"departures.{index}.person_id"
            if person_id in self.departures:
                errors.add(field, f"person {person_id} is listed twice in departures")
            elif person_id in self.listed:
                errors.add(field, f"person {person_id} is in members, so cannot also leave")
            elif person_id not in self.open_here:
                errors.add(
                    field, f"person {person_id} is not a member of household {self.household_id}"
                )
            else:
                self.departures[person_id] = departure
        for person_id in self.open_here:
            if person_id not in self.listed and person_id not in self.departures:
                errors.add(
                    "departures",
                    f"person {person_id} is a member of this household but is not in members: "
                    "list them in members, or in departures with the reason they left",
                )

    def apply(
        self,
        data: HouseholdUpdate,
        values: Sequence[Identifiers],
        *,
        now: datetime,
        actor: str,
    ) -> bool:
        """Close and open memberships and update listed persons; True if anything changed."""
        today = now.date()
        changed = False
        for person_id, departure in self.departures.items():
            close_membership(self.open_here[person_id], today, departure.end_reason)
            person = self.persons[person_id]
            if departure.death_date and person.death_date != departure.death_date:
                new_person_version(person, now=now, actor=actor)
                person.death_date = departure.death_date
            changed = True
        changed |= self._move_in(now=now, actor=actor)
        to_open: list[tuple[int, str]] = []
        for member, identity in zip(data.members, values, strict=True):
            person_id = listed_id(member)
            if person_id is None:
                continue
            changed |= update_person(self.persons[person_id], member, identity, now, actor)
            membership = self.open_here.get(person_id)
            if membership is None:
                to_open.append((person_id, member.relationship))
            elif membership.relationship != member.relationship:
                if membership.start_date == today:
                    # Opened today: no earlier day can show the other relationship.
                    membership.relationship = member.relationship
                else:
                    close_membership(membership, today, RELATIONSHIP_CHANGED)
                    to_open.append((person_id, member.relationship))
            else:
                continue
            changed = True
        # Closed memberships must reach the database before new ones open: one open each.
        self.session.flush()
        for person_id, relationship in to_open:
            self.session.add(open_membership(self.household_id, person_id, relationship, now))
        return changed

    def _move_in(self, *, now: datetime, actor: str) -> bool:
        """Close the open memberships elsewhere of listed persons: they moved here."""
        arriving = [pid for pid in self.listed if pid not in self.open_here]
        if not arriving:
            return False
        elsewhere = list(
            self.session.scalars(
                select(Membership).where(
                    Membership.person_id.in_(arriving), Membership.end_date.is_(None)
                )
            )
        )
        if not elsewhere:
            return False
        others = self.session.scalars(
            select(Household)
            .where(Household.id.in_({m.household_id for m in elsewhere}))
            .with_for_update()
        )
        for other in others:
            # The household they left has a new roster, hence a new version.
            new_household_version(other, now=now, actor=actor)
        for membership in elsewhere:
            close_membership(membership, now.date(), "moved")
        return True


def listed_id(member: PersonCreate) -> int | None:
    person_id = getattr(member, "person_id", None)
    return int(person_id) if person_id else None


def close_membership(membership: Membership, day: date, reason: str) -> None:
    membership.end_date = day
    membership.end_reason = reason


def open_membership(
    household_id: int, person_id: int, relationship: str, now: datetime
) -> Membership:
    return Membership(
        household_id=household_id,
        person_id=person_id,
        relationship=relationship,
        start_date=now.date(),
        recorded_at=now,
    )


def update_person(
    person: Person, member: PersonCreate, identity: Identifiers, now: datetime, actor: str
) -> bool:
    values = person_values(member)
    differs = identifiers.read(person) != identity or any(
        getattr(person, key) != value for key, value in values.items()
    )
    if differs:
        new_person_version(person, now=now, actor=actor)
        for key, value in values.items():
            setattr(person, key, value)
        identifiers.write(person, identity)
    return differs


def person_values(member: PersonCreate) -> dict:
    """A person's recorded state as columns, but for the identifiers (see `identifiers`)."""
    values = column_values(member, fields.PERSON)
    values["search_name"] = search_name(values)
    return values
