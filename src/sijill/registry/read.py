"""Reading households: now, or as they were at any past moment.

The current state is one statement, whatever the household's size: the household row by
primary key with its area's code, outer-joined to its open memberships and their persons (one
statement is also one consistent snapshot, so reads need no transaction). It is the hottest
read of the registry, so the statement is built once, on Core tables, and its rows are sliced
by position rather than mapped to ORM objects.

A past state ("as of") takes the household version valid at that instant (the current row or
one from `household_version`), the members whose membership covered that day (membership
dates are days, so the roster is the one at the end of that day), and each member's own
version valid at that instant. Versions never change once written, so these few statements
need no shared snapshot either, but for a change committed between them on that very day.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import Select, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from sijill.core.db import execute_read
from sijill.core.errors import NotFound
from sijill.registry import fields, identifiers
from sijill.registry.fields import Kind
from sijill.registry.lookup import remember_household_area
from sijill.registry.models import (
    Area,
    Household,
    HouseholdState,
    HouseholdVersion,
    Membership,
    Person,
    PersonState,
    PersonVersion,
)
from sijill.registry.schemas import HouseholdPublic, format_partial_date


def state_keys(state: type, table_columns: Iterable[str]) -> tuple[str, ...]:
    """Columns a history table shares with its current table: what one version records."""
    names = {name for name in dir(state) if not name.startswith("_")}
    return tuple(name for name in table_columns if name in names)


HOUSEHOLD_STATE = state_keys(HouseholdState, Household.__table__.columns.keys())
PERSON_STATE = state_keys(PersonState, Person.__table__.columns.keys())

_H, _V = Household.__table__, HouseholdVersion.__table__
_M, _P, _PV, _A = Membership.__table__, Person.__table__, PersonVersion.__table__, Area.__table__

# A household row as read: (id, its state, area code); a member row: membership, person.
_HOUSEHOLD_KEYS = ("id", *HOUSEHOLD_STATE, "area_code")
_HOUSEHOLD_COLUMNS = (
    _H.c.id,
    *(_H.c[key] for key in HOUSEHOLD_STATE),
    _A.c.code.label("area_code"),
)
_PERSON_SHOWN = tuple(key for key in PERSON_STATE if key != "search_name")
_MEMBER_KEYS = ("household_id", "relationship", "start_date", "end_date", "end_reason", "id")
_MEMBER_KEYS += (*_PERSON_SHOWN, "merged_into_id")
_MEMBER_COLUMNS = (
    _M.c.household_id,
    _M.c.relationship,
    _M.c.start_date,
    _M.c.end_date,
    _M.c.end_reason,
    _P.c.id,
    *(_P.c[key] for key in _PERSON_SHOWN),
    _P.c.merged_into_id,
)
_N = len(_HOUSEHOLD_KEYS)
_PERSON_ID = _N + _MEMBER_KEYS.index("id")

CURRENT = (
    select(*_HOUSEHOLD_COLUMNS, *_MEMBER_COLUMNS)
    .select_from(
        _H.join(_A, _A.c.id == _H.c.area_id)
        .outerjoin(_M, and_(_M.c.household_id == _H.c.id, _M.c.end_date.is_(None)))
        .outerjoin(_P, _P.c.id == _M.c.person_id)
    )
    .where(_H.c.id == bindparam("household_id"))
    .order_by(_M.c.id)
)
CURRENT_HOUSEHOLD = (
    select(*_HOUSEHOLD_COLUMNS)
    .select_from(_H.join(_A, _A.c.id == _H.c.area_id))
    .where(_H.c.id == bindparam("household_id"))
)


def utc(value: datetime) -> datetime:
    """Timestamps are stored in UTC; SQLite hands them back without their zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def as_of_instant(as_of: datetime | date) -> datetime:
    """A date means the end of that day, UTC; a time without a zone is UTC."""
    if isinstance(as_of, datetime):
        return utc(as_of)
    return datetime.combine(as_of, time.max, UTC)


class NotYetRegistered(NotFound):
    """The household exists but not at the moment asked for. It carries the household's area
    so that the caller decides, before saying so, whether the user may know it exists."""

    def __init__(self, detail: str, *, area_id: int):
        super().__init__(detail)
        self.area_id = area_id


def get_household(
    session: Session, household_id: int, as_of: datetime | date | None = None
) -> HouseholdPublic:
    """The household now, or as it was at `as_of`. NotFound if it did not exist (yet)."""
    return read_household(session, household_id, as_of)[0]


def read_household(
    session: Session, household_id: int, as_of: datetime | date | None = None
) -> tuple[HouseholdPublic, int, list[str]]:
    """The household (now or at `as_of`), with its current area id and consented purposes:
    what access is decided on, whatever moment is shown."""
    if as_of is not None:
        return _household_as_of(session, household_id, as_of_instant(as_of))
    rows = execute_read(session, CURRENT, {"household_id": household_id}).all()
    if not rows:
        raise NotFound(f"There is no household {household_id}")
    members = [_member(row) for row in rows if row[_PERSON_ID] is not None]
    state = _household(rows[0])
    remember_household_area(session, household_id, state["area_id"])
    public = household_public(state, members)
    return public, state["area_id"], state["consent_purposes"] or []


def _household(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(_HOUSEHOLD_KEYS, row[:_N], strict=True))


def _member(row: Sequence[Any], offset: int = _N) -> dict[str, Any]:
    return dict(zip(_MEMBER_KEYS, row[offset:], strict=True))


def households_public(session: Session, household_ids: list[int]) -> list[HouseholdPublic]:
    """Current state of several households, in the order given: two queries in all."""
    if not household_ids:
        return []
    rows = session.execute(
        select(*_HOUSEHOLD_COLUMNS)
        .select_from(_H.join(_A, _A.c.id == _H.c.area_id))
        .where(_H.c.id.in_(household_ids))
    )
    by_id = {row[0]: _household(row) for row in rows}
    members: dict[int, list[dict[str, Any]]] = {}
    for row in session.execute(
        select(*_MEMBER_COLUMNS)
        .select_from(_M.join(_P, _P.c.id == _M.c.person_id))
        .where(_M.c.household_id.in_(household_ids), _M.c.end_date.is_(None))
        .order_by(_M.c.id)
    ):
        members.setdefault(row[0], []).append(_member(row, 0))
    return [
        household_public(by_id[hid], members.get(hid, [])) for hid in household_ids if hid in by_id
    ]


def _household_as_of(
    session: Session, household_id: int, instant: datetime
) -> tuple[HouseholdPublic, int, list[str]]:
    row = execute_read(session, CURRENT_HOUSEHOLD, {"household_id": household_id}).first()
    if row is None:
        raise NotFound(f"There is no household {household_id}")
    state: Mapping[str, Any] = _household(row)
    current = state
    if utc(state["valid_from"]) > instant:
        past = session.execute(
            version_select().where(
                _V.c.household_id == household_id,
                _V.c.valid_from <= instant,
                _V.c.valid_to > instant,
            )
        ).first()
        if past is None:
            raise NotYetRegistered(
                f"Household {household_id} was not yet registered on {instant:%Y-%m-%d %H:%M} UTC",
                area_id=current["area_id"],
            )
        state = past._mapping
    day = instant.date()
    rows = session.execute(
        select(*_MEMBER_COLUMNS)
        .select_from(_M.join(_P, _P.c.id == _M.c.person_id))
        .where(
            _M.c.household_id == household_id,
            or_(_M.c.start_date.is_(None), _M.c.start_date <= day),
            or_(_M.c.end_date.is_(None), _M.c.end_date > day),
        )
        .order_by(_M.c.id)
    )
    members = [_member(row, 0) for row in rows]
    later = [m["id"] for m in members if utc(m["valid_from"]) > instant]
    earlier = _person_versions_as_of(session, later, instant)
    roster = [{**m, **earlier[m["id"]]} if m["id"] in earlier else m for m in members]
    public = household_public(state, roster)
    return public, current["area_id"], current["consent_purposes"] or []


def version_select() -> Select:
    """Household versions, shaped like the current household rows (`id` is the household's)."""
    return select(
        _V.c.household_id.label("id"),
        _V.c.valid_to,
        *(_V.c[key] for key in HOUSEHOLD_STATE),
        _A.c.code.label("area_code"),
    ).select_from(_V.join(_A, _A.c.id == _V.c.area_id))


def _person_versions_as_of(
    session: Session, person_ids: list[int], instant: datetime
) -> dict[int, dict[str, Any]]:
    """The state at `instant` of persons changed since: the first version still valid then.

    A person recorded later on the day of `instant` has no version valid then; their first
    version stands for them, since the day's roster already counts them.
    """
    if not person_ids:
        return {}
    rows = session.execute(
        select(_PV.c.person_id, *(_PV.c[key] for key in _PERSON_SHOWN))
        .where(_PV.c.person_id.in_(person_ids), _PV.c.valid_to > instant)
        .order_by(_PV.c.person_id, _PV.c.version)
    )
    states: dict[int, dict[str, Any]] = {}
    for row in rows:
        states.setdefault(row[0], dict(zip(_PERSON_SHOWN, row[1:], strict=True)))
    return states


def household_public(
    state: Mapping[str, Any], members: Iterable[Mapping[str, Any]]
) -> HouseholdPublic:
    roster = [member_public(member) for member in members]
    roster.sort(key=lambda member: member["relationship"] != "head")
    return HouseholdPublic.model_validate({**household_state_public(state), "members": roster})


def _shown(
    catalogue: fields.Catalogue, group: str | None = None
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """How the API shows the catalogue's fields from a row as stored: all but identifiers
    (`identifiers.public`), partial dates and nested ones (or only the members of `group`).
    Built once, so that reading a row (the hottest read) is one dict comprehension."""
    shown = [
        field
        for field in catalogue
        if field.api
        and field.group == group
        and field.columns
        and not field.identifier
        and field.kind is not Kind.PARTIAL_DATE
    ]
    plain = tuple((f.member_name, f.name) for f in shown if f.default is None)
    # Lists and counts show empty, a flag False, rather than null.
    defaulted = tuple(
        (f.member_name, f.name, f.default if callable(f.default) else lambda v=f.default: v)
        for f in shown
        if f.default is not None
    )

    def show(row: Mapping[str, Any]) -> dict[str, Any]:
        values = {name: row[column] for name, column in plain}
        for name, column, default in defaulted:
            value = row[column]
            values[name] = default() if value is None else value
        return values

    return show


_HOUSEHOLD_SHOWN = _shown(fields.HOUSEHOLD)
_CONSENT_SHOWN = _shown(fields.HOUSEHOLD, "consent")
_PERSON_SHOWN_AS_STORED = _shown(fields.PERSON)
_PARTIAL_DATES = tuple(
    (field.name, field.columns[1].name) for field in fields.PERSON.of_kind(Kind.PARTIAL_DATE)
)


def household_state_public(state: Mapping[str, Any]) -> dict[str, Any]:
    public = _HOUSEHOLD_SHOWN(state)
    public.update(
        household_id=str(state["id"]),
        version=state["version"],
        valid_from=state["valid_from"],
        valid_to=state.get("valid_to"),
        recorded_by=state["recorded_by"],
        area_code=state["area_code"],
        consent=_CONSENT_SHOWN(state),
    )
    return public


def member_public(member: Mapping[str, Any]) -> dict[str, Any]:
    public = _PERSON_SHOWN_AS_STORED(member)
    for name, precision in _PARTIAL_DATES:
        public[name] = format_partial_date(member[name], member[precision])
    public.update(
        identifiers.public(member),
        person_id=str(member["id"]),
        version=member["version"],
        valid_from=member["valid_from"],
        relationship=member["relationship"],
        membership_start=member["start_date"],
        membership_end=member["end_date"],
        end_reason=member["end_reason"],
        merged_into=_merged_into(member["merged_into_id"]),
    )
    return public


def _merged_into(person_id: int | None) -> str | None:
    return None if person_id is None else str(person_id)
