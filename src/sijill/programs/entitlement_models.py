"""Entitlements per cycle, the compliance data they read and the decisions taken on it.

A generation (`entitlement_cycle`) is one program's cycle for the households of one area
(the whole registry when `area_id` is NULL): the run whose features and scores it read,
who generated it and who approved it (never the same officer). An entitlement row is narrow
(about 60 bytes): household, recipient, the formula's amount for the full cycle, the days
covered and the amount due after proration, conditions and overlap rules, with a status and
a short reason. A household has at most one entitlement per program and cycle, whichever
area generated it (the primary key).
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from sijill.core.db import Base, Json, Timestamp

_ID = BigInteger().with_variant(Integer, "sqlite")

# entitlement_cycle.status
GENERATED, APPROVED = "generated", "approved"
# entitlement.status: payments pay `due` and `reduced` rows of approved cycles only.
DUE, HELD, SUSPENDED, REDUCED = "due", "held", "suspended", "reduced"
PAYABLE = (DUE, REDUCED)
# compliance_decision.outcome
FULL, REDUCE, SUSPEND, REINSTATED = "full", "reduced", "suspended", "reinstated"


class EntitlementCycle(Base):
    __tablename__ = "entitlement_cycle"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    program: Mapped[str] = mapped_column(String(48), index=True)
    cycle: Mapped[str] = mapped_column(String(8))
    area_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("area.id"))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12))
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("program_run.id"))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    generated_by: Mapped[str] = mapped_column(String(64))
    generated_at: Mapped[datetime] = mapped_column(Timestamp)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(Timestamp)
    households: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)  # what is payable: due and reduced
    currency: Mapped[str] = mapped_column(String(3))
    summary: Mapped[dict] = mapped_column(Json)  # counts by status, overlaps, conditions


class Entitlement(Base):
    __tablename__ = "entitlement"

    program: Mapped[str] = mapped_column(String(48), primary_key=True)
    cycle: Mapped[str] = mapped_column(String(8), primary_key=True)
    # No foreign key: a million rows go in by COPY, from households the generation read.
    household_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("entitlement_cycle.id"), index=True
    )
    person_id: Mapped[int | None] = mapped_column(BigInteger)  # the recipient
    formula_minor: Mapped[int] = mapped_column(BigInteger)  # the formula, for a full cycle
    days: Mapped[int] = mapped_column(SmallInteger)  # days of the cycle covered
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(160))


class ComplianceRecord(Base):
    """Whether a household met a condition in a cycle, as imported."""

    __tablename__ = "compliance_record"

    program: Mapped[str] = mapped_column(String(48), primary_key=True)
    cycle: Mapped[str] = mapped_column(String(8), primary_key=True)
    household_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    condition: Mapped[str] = mapped_column(String(48), primary_key=True)
    compliant: Mapped[bool] = mapped_column(Boolean)
    imported_by: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime] = mapped_column(Timestamp)


class ComplianceDecision(Base):
    """What a condition decided for a household in a cycle, with the streaks that the next
    cycle continues from."""

    __tablename__ = "compliance_decision"

    program: Mapped[str] = mapped_column(String(48), primary_key=True)
    cycle: Mapped[str] = mapped_column(String(8), primary_key=True)
    household_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    condition: Mapped[str] = mapped_column(String(48), primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("entitlement_cycle.id"), index=True
    )
    compliant: Mapped[bool] = mapped_column(Boolean)
    recorded: Mapped[bool] = mapped_column(Boolean)  # False: no record, taken as compliant
    missed: Mapped[int] = mapped_column(SmallInteger)  # consecutive non-compliant cycles
    kept: Mapped[int] = mapped_column(SmallInteger)  # consecutive compliant cycles
    suspended: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(12))
