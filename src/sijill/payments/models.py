"""The payments tables: instruments, runs, batches, instructions, holds, provider reports and
the double-entry ledger.

An instruction pays one entitlement (program, cycle, household) once: `entitlement_payment`
holds each entitlement's live instruction (prepared, sent or paid) under the entitlement as
its key, so the database itself refuses a second payment whatever the code above it does. A
failed or returned instruction frees the entitlement for a re-issue (attempt 2, 3 ...),
usually to another instrument. Instructions paid together share a `transfer_ref` (the ISO
20022 end-to-end ID); without consolidation each has its own.

No foreign keys from the million-row tables (instructions, holds, ledger entries) to
households: they go in by COPY from households the run read, as entitlements do.
"""

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from sijill.core.db import Base, Json, Timestamp

_ID = BigInteger().with_variant(Integer, "sqlite")

# payment_instrument.kind
BANK, WALLET, CASH, CARD = "bank", "wallet", "cash", "card"
INSTRUMENT_KINDS = (BANK, WALLET, CASH, CARD)
# payment_instrument.status: a change under the risk rule waits for a second officer.
PENDING, ACTIVE, REPLACED, REJECTED = "pending", "active", "replaced", "rejected"

# payment_batch.status
PREPARED, APPROVED, RELEASED, RECONCILED = "prepared", "approved", "released", "reconciled"
# payment_instruction.status (PREPARED and the two below are live: one per entitlement)
SENT, PAID, FAILED, RETURNED = "sent", "paid", "failed", "returned"
LIVE = (PREPARED, SENT, PAID)
FINAL = (PAID, FAILED, RETURNED)

# ledger_entry.account: the path of money, program budget -> beneficiary payable -> provider
# clearing -> paid.
BUDGET, PAYABLE, CLEARING, PAID_OUT = "budget", "payable", "clearing", "paid"
ACCOUNTS = (BUDGET, PAYABLE, CLEARING, PAID_OUT)
# ledger_entry.kind: what moved the money, and from which account to which.
MOVES = {
    "entitle": (BUDGET, PAYABLE),
    "instruct": (PAYABLE, CLEARING),
    "settle": (CLEARING, PAID_OUT),
    "fail": (CLEARING, PAYABLE),
    "return": (PAID_OUT, PAYABLE),
}


class PaymentInstrument(Base):
    """How a household is paid. The details (IBAN and holder, wallet number, card number,
    pick-up point) are one encrypted JSON document; `fingerprint` is a blind index of the
    account number (never of a pick-up point), so instruments shared by several households are
    found without decrypting any."""

    __tablename__ = "payment_instrument"
    __table_args__ = (
        Index(
            "uq_payment_instrument_active",
            "household_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))  # who collects
    kind: Mapped[str] = mapped_column(String(8))
    details: Mapped[str] = mapped_column(Text)  # encrypted
    fingerprint: Mapped[str | None] = mapped_column(String(32), index=True)
    masked: Mapped[str] = mapped_column(String(32))  # e.g. "JO94 •••• 1234", safe to show
    status: Mapped[str] = mapped_column(String(10), index=True)
    reason: Mapped[str | None] = mapped_column(String(160))  # why it needed a second officer
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(Timestamp)
    replaced_at: Mapped[datetime | None] = mapped_column(Timestamp)


class PaymentRun(Base):
    """One `payments prepare`: the cycle, the area it covered, who prepared it, its counts."""

    __tablename__ = "payment_run"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    cycle: Mapped[str] = mapped_column(String(8), index=True)
    area_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("area.id"))
    consolidated: Mapped[bool] = mapped_column(Boolean)
    value_date: Mapped[date] = mapped_column(Date)
    prepared_by: Mapped[str] = mapped_column(String(64))
    prepared_at: Mapped[datetime] = mapped_column(Timestamp)
    summary: Mapped[dict] = mapped_column(Json)  # counts: instructed, held by reason, batches


class PaymentBatch(Base):
    """The instructions of one run for one provider, governorate and currency: one file."""

    __tablename__ = "payment_batch"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("payment_run.id"), index=True)
    cycle: Mapped[str] = mapped_column(String(8))
    provider: Mapped[str] = mapped_column(String(32))
    area_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("area.id"))  # governorate
    currency: Mapped[str] = mapped_column(String(3))
    minor_units: Mapped[int] = mapped_column(SmallInteger)
    value_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), index=True)
    payments: Mapped[int] = mapped_column(BigInteger)  # transfers in the file
    instructions: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    file_name: Mapped[str | None] = mapped_column(String(200))
    file_hash: Mapped[str | None] = mapped_column(String(64))  # as written
    prepared_by: Mapped[str] = mapped_column(String(64))
    prepared_at: Mapped[datetime] = mapped_column(Timestamp)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(Timestamp)
    approved_hash: Mapped[str | None] = mapped_column(String(64))  # checked again at release
    released_by: Mapped[str | None] = mapped_column(String(64))
    released_at: Mapped[datetime | None] = mapped_column(Timestamp)
    purged_at: Mapped[datetime | None] = mapped_column(Timestamp)  # file deleted (retention)


class PaymentInstruction(Base):
    """One attempt to pay one entitlement. No index reads its status (the one-live-payment
    rule is `EntitlementPayment`'s key), so marking a million instructions sent or paid
    rewrites their rows in place (PostgreSQL's HOT updates, with room left on each page by a
    fill factor of 80) instead of every index of the table."""

    __tablename__ = "payment_instruction"
    __table_args__ = (Index("ix_payment_instruction_household", "household_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    batch_id: Mapped[int] = mapped_column(BigInteger, index=True)
    program: Mapped[str] = mapped_column(String(48))
    cycle: Mapped[str] = mapped_column(String(8))
    household_id: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(SmallInteger)
    instrument_id: Mapped[int] = mapped_column(BigInteger)
    transfer_ref: Mapped[str] = mapped_column(String(35), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(64))
    settled_at: Mapped[datetime | None] = mapped_column(Timestamp)


class EntitlementPayment(Base):
    """The entitlement's live payment (prepared, sent or paid): its key allows one, so the
    database itself refuses a second instruction for an entitlement whatever the code above it
    does. A failed or returned payment's row is deleted, freeing the entitlement for a
    re-issue."""

    __tablename__ = "entitlement_payment"

    program: Mapped[str] = mapped_column(String(48), primary_key=True)
    cycle: Mapped[str] = mapped_column(String(8), primary_key=True)
    household_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    instruction_id: Mapped[int] = mapped_column(BigInteger, unique=True)


class PaymentHold(Base):
    """An approved entitlement the gate held back, and why; the next prepare looks again."""

    __tablename__ = "payment_hold"

    program: Mapped[str] = mapped_column(String(48), primary_key=True)
    cycle: Mapped[str] = mapped_column(String(8), primary_key=True)
    household_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, index=True)
    reason: Mapped[str] = mapped_column(String(32))
    amount_minor: Mapped[int] = mapped_column(BigInteger)


class ProviderReport(Base):
    """A provider's status or result file, ingested once (its hash is unique)."""

    __tablename__ = "provider_report"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(32))
    file_name: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str | None] = mapped_column(String(64))
    ingested_by: Mapped[str] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(Timestamp)
    summary: Mapped[dict] = mapped_column(Json)  # lines, paid, failed, returned, unmatched...
    purged_at: Mapped[datetime | None] = mapped_column(Timestamp)


class UnmatchedLine(Base):
    """A line of a provider's report that no instruction answers to: kept, never dropped."""

    __tablename__ = "provider_report_unmatched"

    report_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("provider_report.id"), primary_key=True
    )
    line: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reference: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))  # why it matched nothing


class LedgerEntry(Base):
    """One leg of a balanced move: a move writes two legs, -amount on the account money leaves
    and +amount on the one it reaches, under one `move_id`. Amounts are integer minor units
    of `currency`."""

    __tablename__ = "ledger_entry"
    # A household's history is read by household; the checks and reports scan the whole table.
    __table_args__ = (Index("ix_ledger_entry_household", "household_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    move_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(8))
    account: Mapped[str] = mapped_column(String(8))
    provider: Mapped[str | None] = mapped_column(String(32))  # of a clearing account
    program: Mapped[str] = mapped_column(String(48))
    cycle: Mapped[str] = mapped_column(String(8))
    household_id: Mapped[int] = mapped_column(BigInteger)
    instruction_id: Mapped[int | None] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(40))  # run:<id>, batch:<id>, report:<id>
    recorded_at: Mapped[datetime] = mapped_column(Timestamp)
