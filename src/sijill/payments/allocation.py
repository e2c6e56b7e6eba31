"""IDs for instructions, ledger moves and legs, handed out in bulk from the current maximum,
under one lock: a prepare, a release and a reconciliation each write up to millions of rows by
COPY, which a database sequence would hand out one call at a time."""

from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from sijill.payments.models import LedgerEntry, PaymentInstruction

# The PostgreSQL advisory lock the writers of payments take; SQLite has one writer anyway.
_LOCK = 0x51_4A_1C_01


def lock(session: Session) -> None:
    """One writer of payments at a time, until the session's transaction ends."""
    if session.bind.dialect.name == "postgresql":
        session.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK})"))


@dataclass
class Counters:
    instruction: int
    leg: int
    move: int
    holds: bool = True  # whether earlier holds of the cycle may need forgetting (prepare)

    @classmethod
    def start(cls, session: Session) -> "Counters":
        """The next free IDs; call it under `lock`."""

        def after(column) -> int:
            return int(session.scalar(select(func.coalesce(func.max(column), 0)))) + 1

        return cls(after(PaymentInstruction.id), after(LedgerEntry.id), after(LedgerEntry.move_id))
