"""The programs stage's tables: spec versions, eligibility runs and their decisions, enrollment.

A decision row is narrow on purpose (run, household, status, a bitmask of the clauses that
passed, rank): 100 million of them fit on one machine. What it was decided from is the run's:
the spec version and its rule hash, the parameter values in force on the run's date, the
feature snapshot (whose file holds every feature value, checksummed) and the scoring runs.
So an explanation, or an appeal, replays a decision from these rows alone.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from sijill.core.db import Base, Json, Timestamp

_ID = BigInteger().with_variant(Integer, "sqlite")

# eligibility_decision.status
NOT_ELIGIBLE, SELECTED, WAITLISTED = 0, 1, 2
STATUS_NAMES = {NOT_ELIGIBLE: "not_eligible", SELECTED: "selected", WAITLISTED: "waitlisted"}

# enrollment.status
NOTIFIED, ENROLLED, DECLINED, EXITED = "notified", "enrolled", "declined", "exited"
ENROLLMENT_STATUSES = (NOTIFIED, ENROLLED, DECLINED, EXITED)


class ProgramVersion(Base):
    """A spec as it was first run: a version's text never changes after that."""

    __tablename__ = "program_version"

    program: Mapped[str] = mapped_column(String(48), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict] = mapped_column(Json)
    registered_by: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(Timestamp)


class ProgramRun(Base):
    __tablename__ = "program_run"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    program: Mapped[str] = mapped_column(String(48), index=True)
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))  # the rule hash
    kind: Mapped[str] = mapped_column(String(16))  # eligibility | recertification
    as_of: Mapped[date] = mapped_column(Date)
    area_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("area.id"))
    snapshot_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("feature_snapshot.id"))
    score_runs: Mapped[dict] = mapped_column(Json)  # score name -> targeting_run id
    parameters: Mapped[dict] = mapped_column(Json)  # name -> {value, since, reference}
    clauses: Mapped[list] = mapped_column(Json)  # [{name, where, sql}] in bit order
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    run_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    households_assessed: Mapped[int] = mapped_column(BigInteger, default=0)
    households_without_consent: Mapped[int] = mapped_column(BigInteger, default=0)
    eligible: Mapped[int] = mapped_column(BigInteger, default=0)
    selected: Mapped[int] = mapped_column(BigInteger, default=0)
    waitlisted: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_per_cycle: Mapped[int | None] = mapped_column(BigInteger)  # minor units, selected
    summary: Mapped[dict | None] = mapped_column(Json)  # transitions, per-clause failures


class EligibilityDecision(Base):
    __tablename__ = "eligibility_decision"

    # No foreign keys: tens of millions of rows go in by COPY, written by their run itself in
    # its own transaction, about households it read; a key checked row by row made writing a
    # million of them two to four times slower (and so would rows out of key order: they are
    # written sorted by household).
    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    household_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    status: Mapped[int] = mapped_column(SmallInteger)
    passed: Mapped[int] = mapped_column(BigInteger)  # bit i: clause i of the run passed
    rank: Mapped[int | None] = mapped_column(Integer)  # among the eligible, 1 first


class Enrollment(Base):
    """Where a household stands in a program now; every change is an EnrollmentEvent."""

    __tablename__ = "enrollment"

    program: Mapped[str] = mapped_column(String(48), primary_key=True)
    household_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    status: Mapped[str] = mapped_column(String(12))  # no index: every read names the program
    since: Mapped[date] = mapped_column(Date)
    run_id: Mapped[int] = mapped_column(BigInteger)  # the last run that moved it; no key, as above
    recertify_on: Mapped[date | None] = mapped_column(Date)


class EnrollmentEvent(Base):
    __tablename__ = "enrollment_event"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    program: Mapped[str] = mapped_column(String(48))
    household_id: Mapped[int] = mapped_column(BigInteger, index=True)
    run_id: Mapped[int | None] = mapped_column(BigInteger)  # None: a person's answer
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    on_date: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(Timestamp)
    recorded_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(64))
    # True when a person decided it (a household accepted or declined), False for a run.
    by_hand: Mapped[bool] = mapped_column(Boolean, default=False)
