"""What a matched line of an outside list changes in the registry (`sijill link`).

- civil: a death marks the person deceased: a new person version (the registry's history)
  with `death_date` and `recorded_by` naming the list and line, their open membership ended
  on that day with the reason "death" (the household's roster changed: a new household
  version too), and a review flag of kind "death_reported" pairing the deceased with their
  household's head, or with each other member when the head died (the household's reviewer
  must look at who heads it now and what it receives). A death already recorded is left as
  it is.
- payroll, tax, beneficiaries: a dated `person_fact` (`formal_employment`, `taxable_income`,
  `other_program`) that later eligibility rules read; the same fact (person, kind, date,
  text and amount) is never added twice, so linking the same list again adds nothing.

Every change names its line: `list_match` holds the line, the person, the probability and the
model; facts and flags are made in the caller's transaction, with the run's.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import polars as pl
from sqlalchemy import insert, select, tuple_
from sqlalchemy.orm import Session

from sijill.core.files import ROW
from sijill.linkage.lists import amount
from sijill.linkage.models import ListMatch, PersonFact
from sijill.registry.history import new_household_version, new_person_version
from sijill.registry.models import Household, Membership, Person
from sijill.registry.reviews.models import DEATH_IN_CIVIL_REGISTRY, DEATH_REPORTED, OPEN, ReviewFlag
from sijill.registry.roster import close_membership
from sijill.security.principal import Principal
from sijill.security.roles import Permission

DEATH = "death"
ACTION_DEATH = "linkage.death"
FACT_KINDS = {
    "payroll": "formal_employment",
    "tax": "taxable_income",
    "beneficiaries": "other_program",
}
_CHUNK = 5_000


@dataclass
class Events:
    deaths_recorded: int = 0
    deaths_already_recorded: int = 0
    facts_added: int = 0
    facts_present: int = 0
    flag_ids: list[int] = field(default_factory=list)


@dataclass
class Line:
    row: int
    person_id: int
    match_weight: float
    match_probability: float
    values: dict  # the kind's columns


def source_of(kind: str, list_file: str, row: int) -> str:
    """`recorded_by` of a change a line made: its list and line, within the column's 64."""
    tail = f":{row}"
    head = f"linkage:{kind}:"
    return head + list_file[: 64 - len(head) - len(tail)] + tail


def _chunks(values: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def record(
    session: Session,
    principal: Principal,
    *,
    run_id: int,
    kind: str,
    list_file: str,
    model_version: str,
    matched: pl.DataFrame,
    as_of: dt.date,
    now: datetime,
) -> Events:
    """Apply every matched line (`_row`, person_id, match_weight, match_probability and the
    kind's columns), in line order, and record each as a `list_match`."""
    lines = [
        Line(r[ROW], r["person_id"], r["match_weight"], r["match_probability"], r)
        for r in matched.sort(ROW).iter_rows(named=True)
    ]
    events = Events()
    if kind == "civil":
        outcome = _deaths(session, principal, kind, list_file, lines, now, events)
    else:
        outcome = _fact_events(session, kind, lines, as_of, events)
    if not lines:
        return events
    returned = session.execute(
        insert(ListMatch).returning(ListMatch.list_line, ListMatch.id),
        [
            {
                "run_id": run_id,
                "list_kind": kind,
                "list_file": list_file[:200],
                "list_line": line.row,
                "person_id": line.person_id,
                "match_weight": line.match_weight,
                "match_probability": line.match_probability,
                "model_version": model_version,
                "event": outcome[line.row][0],
            }
            for line in lines
        ],
    )
    match_ids = dict(returned.all())
    facts = [
        {
            **fact,
            "source_list": list_file[:200],
            "source_line": row,
            "list_match_id": match_ids[row],
        }
        for row, (_, fact) in outcome.items()
        if fact is not None
    ]
    if facts:
        session.execute(insert(PersonFact), facts)
    return events


# --- deaths ------------------------------------------------------------------------------------


def _deaths(
    session: Session,
    principal: Principal,
    kind: str,
    list_file: str,
    lines: list[Line],
    now: datetime,
    events: Events,
) -> dict[int, tuple[str, None]]:
    ids = sorted({line.person_id for line in lines})
    persons: dict[int, Person] = {}
    memberships: dict[int, Membership] = {}
    for chunk in _chunks(ids):
        persons.update(
            (p.id, p)
            for p in session.scalars(select(Person).where(Person.id.in_(chunk)).with_for_update())
        )
        memberships.update(
            (m.person_id, m)
            for m in session.scalars(
                select(Membership)
                .where(Membership.person_id.in_(chunk), Membership.end_date.is_(None))
                .with_for_update()
            )
        )
    outcome: dict[int, tuple[str, None]] = {}
    flags: list[dict] = []
    for line in lines:
        person = persons[line.person_id]
        if person.death_date is not None:
            events.deaths_already_recorded += 1
            outcome[line.row] = ("death_already_recorded", None)
            continue
        died: dt.date = line.values["death_date"]
        source = source_of(kind, list_file, line.row)
        new_person_version(person, now=now, actor=source)
        person.death_date = died
        membership = memberships.pop(person.id, None)
        if membership is not None:
            household = session.scalars(
                select(Household).where(Household.id == membership.household_id).with_for_update()
            ).one()
            flags += _flags_for(session, person.id, membership, source, now)
            start = membership.start_date
            close_membership(membership, max(died, start) if start else died, DEATH)
            new_household_version(household, now=now, actor=source)
        principal.audit(
            ACTION_DEATH, "ok", "person", str(person.id), permission=Permission.LINKAGE_RUN
        )
        events.deaths_recorded += 1
        outcome[line.row] = ("death_recorded", None)
    session.flush()
    if flags:
        returned = session.execute(insert(ReviewFlag).returning(ReviewFlag.id), flags)
        events.flag_ids = sorted(returned.scalars().all())
    return outcome


def _flags_for(
    session: Session, deceased: int, membership: Membership, source: str, now: datetime
) -> list[dict]:
    """The deceased paired with the household's head, or with each other member when they
    headed it (a household left with no one: the deceased with themselves, so that it is
    still seen)."""
    others = session.execute(
        select(Membership.person_id, Membership.relationship).where(
            Membership.household_id == membership.household_id,
            Membership.end_date.is_(None),
            Membership.person_id != deceased,
        )
    ).all()
    heads = [pid for pid, relationship in others if relationship == "head"]
    if membership.relationship == "head" or not heads:
        partners = [pid for pid, _ in others] or [deceased]
    else:
        partners = heads
    pairs = [(min(deceased, p), max(deceased, p)) for p in partners]
    already = set(
        session.execute(
            select(ReviewFlag.person_a_id, ReviewFlag.person_b_id).where(
                ReviewFlag.kind == DEATH_REPORTED,
                ReviewFlag.state == OPEN,
                tuple_(ReviewFlag.person_a_id, ReviewFlag.person_b_id).in_(pairs),
            )
        ).all()
    )
    return [
        {
            "kind": DEATH_REPORTED,
            "state": OPEN,
            "person_a_id": a,
            "person_b_id": b,
            "household_a_id": membership.household_id,
            "household_b_id": membership.household_id,
            "reason": DEATH_IN_CIVIL_REGISTRY,
            "source": "linkage",
            "raised_by": source,
            "raised_at": now,
        }
        for a, b in sorted(set(pairs))
        if (a, b) not in already
    ]


# --- facts -------------------------------------------------------------------------------------


def _fact(kind: str, values: dict, as_of: dt.date) -> dict:
    if kind == "payroll":
        text, money, since = values["employer"], values["monthly_salary"], as_of
    elif kind == "tax":
        text, money, since = None, values["taxable_income"], dt.date(values["tax_year"], 1, 1)
    else:
        text, money, since = values["program"], values["amount"], as_of
    return {
        "kind": FACT_KINDS[kind],
        "valid_from": since,
        "text_value": text,
        "amount": amount(money),
    }


def _key(fact: dict, person_id: int) -> tuple:
    money: Decimal | None = fact["amount"]
    # 1200 and 1200.000 are one amount (the column keeps three places).
    return (
        person_id,
        fact["valid_from"],
        fact["text_value"],
        None if money is None else money.normalize(),
    )


def _fact_events(
    session: Session, kind: str, lines: list[Line], as_of: dt.date, events: Events
) -> dict[int, tuple[str, dict | None]]:
    fact_kind = FACT_KINDS[kind]
    ids = sorted({line.person_id for line in lines})
    known: set[tuple] = set()
    for chunk in _chunks(ids):
        for fact in session.scalars(
            select(PersonFact).where(PersonFact.person_id.in_(chunk), PersonFact.kind == fact_kind)
        ):
            known.add(
                _key(
                    {
                        "valid_from": fact.valid_from,
                        "text_value": fact.text_value,
                        "amount": fact.amount,
                    },
                    fact.person_id,
                )
            )
    outcome: dict[int, tuple[str, dict | None]] = {}
    for line in lines:
        fact = _fact(kind, line.values, as_of)
        key = _key(fact, line.person_id)
        if key in known:
            events.facts_present += 1
            outcome[line.row] = ("fact_present", None)
            continue
        known.add(key)
        events.facts_added += 1
        outcome[line.row] = ("fact_added", {**fact, "person_id": line.person_id})
    return outcome
