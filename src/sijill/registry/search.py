"""Finding households: by registry ID, national ID, name or area, a page at a time.

Criteria combine (all must hold). Name search looks in `person.search_name`, the normalised
Arabic and Latin forms of every name part, so "احمد" finds "أحمد", "Mohamed" finds "MOHAMED"
and "عبد الرحمن" finds "عبدالرحمن" (the fold joins compound names, `identity.names`): every
word of the query must begin a word of one current member's names.
"""

import json

from sqlalchemy import ColumnElement, and_, cast, column, exists, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from sijill.core.areas import Area, areas_within
from sijill.core.errors import FieldError, InvalidInput
from sijill.core.ids import PAYLOAD_DIGITS, parse_id
from sijill.identity.names import normalise_name
from sijill.registry import identifiers
from sijill.registry.models import Household, Membership, Person
from sijill.registry.read import households_public
from sijill.registry.schemas import HouseholdPublic
from sijill.security.principal import Scope

NATIONAL = Scope(None)


def search_households(
    session: Session,
    *,
    scope: Scope = NATIONAL,
    consent_purpose: str | None = None,
    registry_id: str | None = None,
    national_id: str | None = None,
    name: str | None = None,
    area_code: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[HouseholdPublic], int]:
    """One page of the matching households (current state) and how many match in all.

    `registry_id` is a household's ID, or a person's ID (their current household);
    `area_code` includes every area below it in the hierarchy. Only households in `scope`,
    and whose consent covers `consent_purpose` if one is given, are found or counted.
    """
    conditions = _conditions(session, registry_id, national_id, name, area_code)
    if not scope.national:
        conditions.append(scope.condition(Household.area_id))
    if consent_purpose:
        conditions.append(consent_covers(session, consent_purpose))
    total = session.scalar(select(func.count()).select_from(Household).where(*conditions))
    ids = list(
        session.scalars(
            select(Household.id)
            .where(*conditions)
            .order_by(Household.id)
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
    )
    return households_public(session, ids), total or 0


def _conditions(
    session: Session,
    registry_id: str | None,
    national_id: str | None,
    name: str | None,
    area_code: str | None,
) -> list[ColumnElement[bool]]:
    problems: list[FieldError] = []
    conditions: list[ColumnElement[bool]] = []
    if registry_id:
        try:
            conditions.append(_registry_id_condition(registry_id))
        except InvalidInput as error:
            problems.append(FieldError("registry_id", error.detail))
    if national_id:
        conditions.append(_has_current_member(identifiers.national_id_matches(national_id)))
    if name:
        words = normalise_name(name).split()
        if words:
            conditions.append(_has_current_member(_name_condition(words)))
        else:
            problems.append(FieldError("name", "the name has no letters or digits to search for"))
    if area_code:
        area_id = session.scalar(select(Area.id).where(Area.code == area_code))
        if area_id is None:
            problems.append(FieldError("area_code", f"there is no area with code '{area_code}'"))
        else:
            # Fetched first rather than left as a subquery: the database then knows how many
            # households the areas hold and picks its plan accordingly (a district's last
            # pages would otherwise walk the whole household table in ID order).
            conditions.append(Household.area_id.in_(areas_within(session, [area_id])))
    if problems:
        raise InvalidInput("The search has errors", problems)
    return conditions


def _registry_id_condition(text: str) -> ColumnElement[bool]:
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) == PAYLOAD_DIGITS["person"] + 1:
        person_id = parse_id("person", text)
        return _has_current_member(Person.id == person_id)
    return Household.id == parse_id("household", text)


def _has_current_member(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return Household.id.in_(
        select(Membership.household_id)
        .join(Person, Person.id == Membership.person_id)
        .where(Membership.end_date.is_(None), condition)
    )


def _name_condition(words: list[str]) -> ColumnElement[bool]:
    # Normalised words hold only letters, digits and spaces: nothing LIKE would read as a
    # wildcard. A leading space anchors each word at the start of a word of the name.
    spaced = literal(" ") + Person.search_name
    return and_(*(spaced.like(f"% {word}%") for word in words))


def consent_covers(session: Session, purpose: str) -> ColumnElement[bool]:
    """SQL condition on `household`: its consent lists this purpose."""
    purposes = Household.consent_purposes
    if session.get_bind().dialect.name == "postgresql":
        return cast(purposes, JSONB).op("@>")(cast(literal(json.dumps([purpose])), JSONB))
    return exists(
        select(literal(1)).select_from(func.json_each(purposes)).where(column("value") == purpose)
    )
