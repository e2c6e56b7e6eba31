"""The registry's transactional path: register a household, change it, read it, find it.

Plain functions over a `Session`. A write runs inside the caller's transaction and only
flushes, so the caller commits it whole (the API does so once per request, tests and scripts
with `sijill.core.db.transaction`). Every input problem is collected and raised at once as
`InvalidInput` before anything is written, so bad input never leaves half a household behind.

Membership dates are days (UTC): a membership runs from `start_date` up to, not including,
`end_date` (see `registry.roster`).

Every function takes the `Principal` acting and checks it first: its roles must allow the
action (else Forbidden), the household must lie in its areas (else NotFound, worded exactly as
for a household that does not exist), and a use for a purpose that needs consent must be
covered by the household's consent. Each notes its audit entries on the principal; the
caller appends them in the same transaction as the write (or, for a refused request, in one
of their own).
"""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.areas import Area
from sijill.core.errors import Conflict, ErrorCollector, FieldError, NotFound
from sijill.core.i18n import N_
from sijill.core.ids import Kind, new_ids
from sijill.core.settings import Settings
from sijill.registry import fields, identifiers, read, search
from sijill.registry.history import household_history as _household_history
from sijill.registry.history import new_household_version
from sijill.registry.identifiers import Identifiers
from sijill.registry.models import Household, Membership, Person
from sijill.registry.reviews.flags import flag_shared_national_ids
from sijill.registry.reviews.service import ACTION_RAISE, RECORD_TYPE
from sijill.registry.roster import Roster, listed_id, open_membership, person_values
from sijill.registry.schemas import (
    HouseholdCreate,
    HouseholdFields,
    HouseholdHistoryPublic,
    HouseholdPublic,
    HouseholdUpdate,
    PersonCreate,
    column_values,
)
from sijill.security.principal import Principal, Scope
from sijill.security.roles import Permission

__all__ = [
    "get_household",
    "household_history",
    "register_household",
    "search_households",
    "update_household",
]


# The identity rules' own wording names the scheme's check; the pages say it shorter.
NOT_VALID_FOR_TYPE = N_("this number is not valid for the type of document chosen")


def _missing(household_id: int) -> NotFound:
    return NotFound(f"There is no household {household_id}")


def get_household(
    session: Session,
    principal: Principal,
    household_id: int,
    as_of: datetime | None = None,
) -> HouseholdPublic:
    """The household now or as of a past moment, if the principal may see it."""
    action = Permission.HOUSEHOLD_READ
    principal.require(action, record_type="household", record_id=str(household_id))
    scope = principal.scope(session, action)
    try:
        household, area_id, consented = read.read_household(session, household_id, as_of)
    except NotFound as error:
        principal.audit(action, "not_found", "household", str(household_id))
        # Only a user who may see the household learns that it exists but not yet then: to
        # anyone else the answer is the one about an ID nobody holds, byte for byte.
        if isinstance(error, read.NotYetRegistered) and scope.allows(error.area_id):
            raise
        raise _missing(household_id) from None
    if not scope.allows(area_id):
        principal.audit(action, "not_found", "household", str(household_id))
        raise _missing(household_id)
    principal.check_consent(action, household_id, consented)
    principal.audit(action, "ok", "household", str(household_id))
    return household


def household_history(
    session: Session, principal: Principal, household_id: int
) -> HouseholdHistoryPublic:
    action = Permission.HOUSEHOLD_HISTORY
    principal.require(action, record_type="household", record_id=str(household_id))
    _household_in_scope(session, principal, action, household_id)
    history = _household_history(session, household_id)
    principal.audit(action, "ok", "household", str(household_id))
    return history


def search_households(
    session: Session,
    principal: Principal,
    *,
    page: int = 1,
    page_size: int = 50,
    **criteria: str | None,
) -> tuple[list[HouseholdPublic], int]:
    """A page of the households matching, among those in the principal's areas whose consent
    covers the principal's purpose: the count, too, counts only those."""
    action = Permission.HOUSEHOLD_SEARCH
    principal.require(action)
    scope = principal.scope(session, action)
    rows, total = search.search_households(
        session,
        scope=scope,
        consent_purpose=principal.needs_consent(action),
        page=page,
        page_size=page_size,
        **criteria,
    )
    for row in rows:
        principal.audit(action, "ok", "household", row.household_id)
    if not rows:
        principal.audit(action, "ok", "household", None)
    return rows, total


def _household_in_scope(
    session: Session,
    principal: Principal,
    action: Permission,
    household_id: int,
    *,
    lock: bool = False,
) -> Household:
    query = select(Household).where(Household.id == household_id)
    household = session.scalars(query.with_for_update() if lock else query).first()
    if household is None or not principal.scope(session, action).allows(household.area_id):
        principal.audit(action, "not_found", "household", str(household_id))
        raise _missing(household_id)
    return household


def register_household(
    session: Session,
    principal: Principal,
    data: HouseholdCreate,
    *,
    settings: Settings,
    source_key: str | None = None,
) -> HouseholdPublic:
    """Register a new household and its members as new persons.

    `source_key` is the source's own key for this record ("<source>:<key>", as an import
    writes it; a web form's one-time ID): a key already registered registers nothing and
    answers the household it registered, so sending the same form twice makes one household.
    The column is unique, so of two sends racing, the second fails on it instead."""
    action = Permission.HOUSEHOLD_REGISTER
    principal.require(action)
    scope = principal.scope(session, action)
    if source_key is not None:
        held = session.scalar(select(Household.id).where(Household.source_key == source_key))
        if held is not None:
            _household_in_scope(session, principal, action, held)
            # Not "ok": counting registrations by their entries must not count it twice.
            principal.audit(action, "conflict", "household", str(held))
            return read.get_household(session, held)
    actor = principal.username
    now = clock.utcnow()
    errors = ErrorCollector()
    area_id = _area_id(session, data.area_code, scope, errors)
    identities = _checked_identifiers(
        session, scope, data.members, [None] * len(data.members), settings, errors
    )
    if errors.errors:
        principal.audit(action, "invalid", "household", None)
    errors.raise_if_any("The household cannot be registered")

    household = Household(
        id=_fresh_ids(session, Household, "household", 1)[0],
        source_key=source_key,
        area_id=area_id,
        **_household_values(data),
        version=1,
        valid_from=now,
        recorded_by=actor,
    )
    session.add(household)
    person_ids = _add_new_members(
        session, household.id, data.members, identities, now=now, actor=actor
    )
    session.flush()
    numbered = [p for p, i in zip(person_ids, identities, strict=True) if _national_id(i)]
    _flag_shared_national_ids(session, principal, action, numbered, now)
    principal.audit(action, "ok", "household", str(household.id))
    return read.get_household(session, household.id)


def update_household(
    session: Session,
    principal: Principal,
    household_id: int,
    data: HouseholdUpdate,
    *,
    settings: Settings,
) -> HouseholdPublic:
    """Make the household what `data` says, keeping every earlier state as a version.

    Conflict if the household has changed since the version the client based `data` on.
    Nothing is written, and the version stays, if `data` changes nothing.
    """
    action = Permission.HOUSEHOLD_UPDATE
    principal.require(action, record_type="household", record_id=str(household_id))
    scope = principal.scope(session, action)
    actor = principal.username
    now = clock.utcnow()
    household = _household_in_scope(session, principal, action, household_id, lock=True)
    if household.version != data.version:
        principal.audit(action, "conflict", "household", str(household_id))
        message = (
            f"Household {household_id} has changed since version {data.version} was read: it is "
            f"now at version {household.version}; read it again and redo the change"
        )
        raise Conflict(message, [FieldError("version", message)])

    errors = ErrorCollector()
    area_id = _area_id(session, data.area_code, scope, errors)
    roster = Roster.load(session, household_id, data, errors, _visible_persons(session, scope))
    own_ids = [listed_id(member) for member in data.members]
    identities = _checked_identifiers(session, scope, data.members, own_ids, settings, errors)
    if errors.errors:
        principal.audit(action, "invalid", "household", str(household_id))
    errors.raise_if_any("The household cannot be changed")

    # Listed persons given a number they do not hold yet (asked before the roster writes it).
    numbered = identifiers.taking_new_national_ids(
        session,
        {
            p: i.national_id
            for p, i in zip(own_ids, identities, strict=True)
            if p and _national_id(i)
        },
    )
    changed = roster.apply(data, identities, now=now, actor=actor)
    new = [(m, i) for m, i in zip(data.members, identities, strict=True) if not m.person_id]
    if new:
        members, member_identities = zip(*new, strict=True)
        person_ids = _add_new_members(
            session, household_id, members, member_identities, now=now, actor=actor
        )
        numbered += [
            p for p, i in zip(person_ids, member_identities, strict=True) if _national_id(i)
        ]
        changed = True
    values = {"area_id": area_id, **_household_values(data)}
    if changed or any(getattr(household, key) != value for key, value in values.items()):
        new_household_version(household, now=now, actor=actor)
        for key, value in values.items():
            setattr(household, key, value)
    session.flush()
    _flag_shared_national_ids(session, principal, action, numbered, now)
    principal.audit(action, "ok", "household", str(household_id))
    return read.get_household(session, household_id)


def _national_id(identity: Identifiers) -> bool:
    return identity.national_id_type == "national_id" and identity.national_id is not None


def _flag_shared_national_ids(
    session: Session,
    principal: Principal,
    action: Permission,
    person_ids: list[int],
    now: datetime,
) -> None:
    """Flag for review each of these persons (just given a national ID) and any other person
    holding the same number: only holders the principal cannot see are left by then
    (`_checked_identifiers` refuses the others). Each flag is audited by its ID."""
    raised = flag_shared_national_ids(
        session, person_ids, source="api", actor=principal.username, now=now
    )
    for flag_id in raised:
        principal.audit(ACTION_RAISE, "ok", RECORD_TYPE, str(flag_id), permission=action)


def _visible_persons(session: Session, scope: Scope):
    """Which of some persons the principal may name in an update: those now in a household in
    its areas. Others answer as if they did not exist."""

    def visible(person_ids: set[int]) -> set[int]:
        if scope.national or not person_ids:
            return set(person_ids)
        return set(
            session.scalars(
                select(Membership.person_id)
                .join(Household, Household.id == Membership.household_id)
                .where(
                    Membership.person_id.in_(person_ids),
                    Membership.end_date.is_(None),
                    scope.condition(Household.area_id),
                )
            )
        )

    return visible


def _add_new_members(
    session: Session,
    household_id: int,
    members: Sequence[PersonCreate],
    values: Sequence[Identifiers],
    *,
    now: datetime,
    actor: str,
) -> list[int]:
    """Add the members as new persons of the household; their IDs, in order."""
    person_ids = _fresh_ids(session, Person, "person", len(members))
    for person_id, member, identity in zip(person_ids, members, values, strict=True):
        person = Person(
            id=person_id, **person_values(member), version=1, valid_from=now, recorded_by=actor
        )
        identifiers.write(person, identity)
        session.add(person)
    # The tables have no ORM relationships to order inserts by: persons (and a new household)
    # reach the database before the memberships that refer to them.
    session.flush()
    for person_id, member in zip(person_ids, members, strict=True):
        session.add(open_membership(household_id, person_id, member.relationship, now))
    return person_ids


def _area_id(session: Session, code: str, scope: Scope, errors: ErrorCollector) -> int | None:
    area = session.execute(select(Area.id, Area.level).where(Area.code == code)).first()
    if area is None or not scope.allows(area.id):
        errors.add("area_code", N_("there is no area with code '{code}'"), code=code)
        return None
    if area.level != "locality":
        errors.add(
            "area_code",
            N_("area '{code}' is a {level}: a household is registered in a locality"),
            code=code,
            level=area.level,
        )
    return area.id


def _fresh_ids(session: Session, model: type, kind: Kind, count: int) -> list[int]:
    """New random IDs not yet in the registry (the primary key still has the last word)."""
    ids: list[int] = []
    while len(ids) < count:
        candidates = [int(i) for i in new_ids(kind, count - len(ids))]
        taken = set(session.scalars(select(model.id).where(model.id.in_(candidates))))
        ids.extend(i for i in candidates if i not in taken and i not in ids)
    return ids


def _household_values(data: HouseholdFields) -> dict:
    return column_values(data, fields.HOUSEHOLD)


def _checked_identifiers(
    session: Session,
    scope: Scope,
    members: Sequence[PersonCreate],
    own_ids: Sequence[int | None],
    settings: Settings,
    errors: ErrorCollector,
) -> list[Identifiers]:
    """Each member's identifiers, validated and normalised; national IDs held once only.

    A `national_id` number already held by another person is refused: that person is
    registered, and is moved here by listing their person_id. (UNHCR case numbers are shared
    by a family, and other documents are checked by record linkage, not here.) A holder
    outside the principal's areas is not mentioned, which would reveal them: the number is
    accepted, answered exactly as a number nobody holds, and the pair is flagged for a
    reviewer who can see both (`registry.reviews`), as a bulk import's would be.
    """
    scheme = identifiers.scheme_for(settings.national_id_scheme)
    values: list[Identifiers] = []
    seen: dict[str, int] = {}
    for index, member in enumerate(members):
        document = member.national_id
        id_type = number = None
        if document is not None:
            field = f"members.{index}.national_id.number"
            problem = identifiers.national_id_problem(scheme, document.type, document.number)
            if problem:
                errors.add(field, problem, template=NOT_VALID_FOR_TYPE)
            else:
                id_type = document.type
                number = identifiers.normalise_national_id(scheme, id_type, document.number)
            if id_type == "national_id" and number in seen:
                errors.add(
                    field,
                    f"the same national ID is given for members.{seen[number]}",
                    template=N_("the same national ID is given for member {other}"),
                    other=seen[number] + 1,
                )
            elif id_type == "national_id":
                seen[number] = index
        values.append(Identifiers(id_type, number, member.phone))
    holders = identifiers.holders_of_national_ids(session, list(seen))
    if not scope.national and holders:
        visible = _visible_persons(session, scope)({p for ids in holders.values() for p in ids})
        holders = {n: [p for p in ids if p in visible] for n, ids in holders.items()}
    for number, index in seen.items():
        others = [pid for pid in holders.get(number, []) if pid != own_ids[index]]
        if others:
            errors.add(
                f"members.{index}.national_id.number",
                N_(
                    "this national ID is already registered to person {person}; to bring that "
                    "person into this household, list them by their person_id"
                ),
                person=others[0],
            )
    return values
