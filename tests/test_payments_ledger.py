"""The ledger's invariants under any sequence of events (hypothesis), and a check that does
fail when the ledger is wrong. On an in-memory SQLite database: the check is SQL."""

from dataclasses import dataclass

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, delete, text, update
from sqlalchemy.orm import Session

import sijill.models  # noqa: F401  (every table on the metadata)
from sijill.core import clock
from sijill.core.db import Base
from sijill.payments import ledger
from sijill.payments.models import EntitlementPayment, PaymentInstruction
from sijill.programs.entitlement_models import Entitlement
from sijill.programs.writes import write_rows

# What can happen to an entitlement, and the instruction status each event needs.
EVENTS = ("instruct", "settle", "fail", "return")


@dataclass
class _Ids:
    move: int = 1
    leg: int = 1


def _fresh_engine():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    return engine


def _entitlements(session: Session, amounts: list[int]) -> pl.DataFrame:
    rows = pl.DataFrame(
        {
            "program": ["p"] * len(amounts),
            "cycle": ["2026-11"] * len(amounts),
            "household_id": list(range(1, len(amounts) + 1)),
            "amount_minor": amounts,
            "currency": ["XSJ"] * len(amounts),
        }
    )
    session.execute(
        Entitlement.__table__.insert(),
        [{"program": "p", "cycle": "2026-11", "household_id": h, "batch_id": 1,
          "person_id": None, "formula_minor": a, "days": 30, "amount_minor": a,
          "status": "due", "reason": None}
         for h, a in zip(rows["household_id"], rows["amount_minor"], strict=True)],
    )  # fmt: skip
    return rows


def _apply(session, ids: _Ids, state: dict, entitlement: dict, event: str, next_id: list[int]):
    """Apply `event` to one entitlement if its state allows it; write the move and the
    instruction's new status. Returns whether anything happened."""
    household = entitlement["household_id"]
    current = state.get(household)  # (instruction id, status) of its latest instruction
    status = current[1] if current else None
    allowed = {
        "instruct": status in (None, "failed", "returned"),
        "settle": status == "sent",
        "fail": status == "sent",
        "return": status == "paid",
    }[event]
    if not allowed:
        return False
    now = clock.utcnow()
    if event == "instruct":
        instruction = next_id[0]
        next_id[0] += 1
        session.add(PaymentInstruction(
            id=instruction, batch_id=1, program="p", cycle="2026-11", household_id=household,
            attempt=1, instrument_id=1, transfer_ref=f"T{instruction}",
            amount_minor=entitlement["amount_minor"], currency="XSJ", status="sent",
        ))  # fmt: skip
        session.add(EntitlementPayment(program="p", cycle="2026-11", household_id=household,
                                       instruction_id=instruction))  # fmt: skip
        session.flush()
        new_status = "sent"
    else:
        instruction = current[0]
        new_status = {"settle": "paid", "fail": "failed", "return": "returned"}[event]
        session.execute(
            update(PaymentInstruction)
            .where(PaymentInstruction.id == instruction)
            .values(status=new_status)
        )
        if new_status in ("failed", "returned"):  # the entitlement may be paid again
            session.execute(
                delete(EntitlementPayment).where(EntitlementPayment.instruction_id == instruction)
            )
    row = pl.DataFrame([{**entitlement, "id": instruction, "provider": "bank"}])
    write_rows(session, ledger.table(), ledger.moves(event, row, ids, source="t", recorded_at=now))
    state[household] = (instruction, new_status)
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=5),
    events=st.lists(
        st.tuples(st.integers(min_value=0, max_value=4), st.sampled_from(EVENTS)), max_size=40
    ),  # fmt: skip
)
def test_any_sequence_of_events_keeps_the_ledger_balanced(amounts, events):
    engine = _fresh_engine()
    with Session(engine) as session:
        rows = _entitlements(session, amounts)
        ids = _Ids()
        write_rows(
            session, ledger.table(),
            ledger.moves("entitle", rows, ids, source="t", recorded_at=clock.utcnow()),
        )  # fmt: skip
        state: dict = {}
        next_id = [1]
        entitlements = rows.to_dicts()
        for index, event in events:
            _apply(session, ids, state, entitlements[index % len(entitlements)], event, next_id)
            report = ledger.check(session)
            assert report.ok, report.problems
        assert report.paid_once + report.open == len(amounts) if events else True
        paid = sum(1 for _, status in state.values() if status == "paid")
        assert ledger.check(session).paid_once == paid
    engine.dispose()


@pytest.mark.parametrize(
    "damage, problem",
    [
        ("UPDATE ledger_entry SET amount_minor = amount_minor + 1 WHERE id = 2", "do not balance"),
        ("DELETE FROM ledger_entry WHERE id = 4", "do not balance"),
        # A second payment of the same entitlement: paid twice, with balanced moves.
        (
            "INSERT INTO ledger_entry SELECT id + 100, move_id + 100, kind, account, provider, "
            "program, cycle, household_id, instruction_id, amount_minor, currency, source, "
            "recorded_at FROM ledger_entry WHERE kind = 'settle'",
            "neither paid exactly once",
        ),
        ("UPDATE payment_instruction SET status = 'sent'", "disagree with the ledger"),
        ("DELETE FROM entitlement_payment", "disagree with the ledger"),
    ],
)
def test_the_check_finds_a_wrong_ledger(damage, problem):
    engine = _fresh_engine()
    with Session(engine) as session:
        rows = _entitlements(session, [500])
        ids = _Ids()
        write_rows(
            session,
            ledger.table(),
            ledger.moves("entitle", rows, ids, source="t", recorded_at=clock.utcnow()),
        )
        state: dict = {}
        entitlement = rows.to_dicts()[0]
        for event in ("instruct", "settle"):
            assert _apply(session, ids, state, entitlement, event, [1])
        assert ledger.check(session).ok
        session.execute(text(damage))
        report = ledger.check(session)
        assert not report.ok
        assert any(problem in p for p in report.problems), report.problems
    engine.dispose()


def test_the_database_refuses_a_second_live_payment_of_an_entitlement():
    from sqlalchemy.exc import IntegrityError

    engine = _fresh_engine()
    with Session(engine) as session:
        session.add(EntitlementPayment(program="p", cycle="2026-11", household_id=1,
                                       instruction_id=1))  # fmt: skip
        session.flush()
        session.add(EntitlementPayment(program="p", cycle="2026-11", household_id=1,
                                       instruction_id=2))  # fmt: skip
        with pytest.raises(IntegrityError):
            session.flush()
    engine.dispose()
