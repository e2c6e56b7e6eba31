"""The audit chain's tables and the one definition of how a record is hashed.

Every record carries the hash of the record before it, so altering, deleting, reordering or
inserting a record breaks the chain at that point. `canonical()` (Python, for appending) and
`HASH_SQL` (DuckDB, for verifying millions of records at once) must stay byte-for-byte equal:
tests/test_security_audit.py checks them against each other.
"""

import hashlib

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sijill.core.db import Base

GENESIS_LABEL = "sijill audit chain v1"
# The prev_hash of record 1; the migration writes the same literal into audit_head.
GENESIS_HASH = hashlib.sha256(GENESIS_LABEL.encode()).hexdigest()

# Hashed text fields in hashing order; `seq` goes first, as decimal digits.
HASHED_FIELDS = (
    "at",
    "actor",
    "role",
    "action",
    "outcome",
    "record_type",
    "record_id",
    "purpose",
    "request_id",
    "prev_hash",
)
SEPARATOR = "\x1f"


class _Entry:
    """What a record says, in the chain or waiting in the quarantine."""

    # Text, not a timestamp type: the exact characters are hashed and must read back
    # identically from every backend.
    at: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str | None] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    record_type: Mapped[str | None] = mapped_column(String(32))
    record_id: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(String(128))
    request_id: Mapped[str | None] = mapped_column(String(64))


class AuditRecord(_Entry, Base):
    __tablename__ = "audit_record"

    # Assigned by the appender from audit_head, not by a database sequence: a rolled-back
    # transaction would leave a gap indistinguishable from a deleted record.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    # "Who touched this household" and "what did this user do" are the questions asked.
    __table_args__ = (
        Index("ix_audit_record_record_id", "record_id"),
        Index("ix_audit_record_actor", "actor"),
    )


class AuditHead(Base):
    """The last record's seq and hash, one row: appenders lock it to serialise, and verify
    compares the chain's end with it to catch truncation and records written around it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (CheckConstraint("id = 1", name="ck_audit_head_single_row"),)


# A counter key: INTEGER is what SQLite numbers by itself.
_SERIAL = BigInteger().with_variant(Integer(), "sqlite")


class AuditCheck(Base):
    """What each verification found, newest last: the latest says whether the chain is broken,
    so `/health` and every append know it without walking the chain again. `state` is
    intact or broken (a repair notes each break it set aside as broken, then intact)."""

    __tablename__ = "audit_check"

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    at: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    records: Mapped[int] = mapped_column(BigInteger)
    head_seq: Mapped[int | None] = mapped_column(BigInteger)
    bad_seq: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str | None] = mapped_column(String(32))
    problem: Mapped[str | None] = mapped_column(String(500))


class AuditRepair(Base):
    """A break an administrator repaired (`sijill audit repair`): the records first_seq ..
    last_seq stay where they are, untrusted, and the chain resumes after them from
    `resume_hash`, which the next record carries as its prev_hash. Verify skips these ranges
    and checks everything else as before; nothing is deleted."""

    __tablename__ = "audit_repair"

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    at: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    problem: Mapped[str] = mapped_column(String(500))
    first_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    resume_hash: Mapped[str] = mapped_column(String(64))
    # The head as it was found, and the seq of the repair's own audit record.
    found_head_seq: Mapped[int | None] = mapped_column(BigInteger)
    found_head_hash: Mapped[str | None] = mapped_column(String(64))
    record_seq: Mapped[int | None] = mapped_column(BigInteger)


class AuditQuarantine(_Entry, Base):
    """Audit records of sign-ins (and of the verify and repair commands) made while the chain
    was broken: kept here, reported by verify, and appended to the chain by the repair."""

    __tablename__ = "audit_quarantine"

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)


def _encode(value: str | None) -> str:
    # A prefix keeps NULL ("-") apart from the empty string ("+").
    return "-" if value is None else "+" + value


def canonical(seq: int, fields: dict[str, str | None]) -> str:
    return SEPARATOR.join([str(seq), *(_encode(fields[name]) for name in HASHED_FIELDS)])


def record_hash(seq: int, fields: dict[str, str | None]) -> str:
    return hashlib.sha256(canonical(seq, fields).encode()).hexdigest()


# The same serialisation as `canonical`, for DuckDB over a table with the record's columns.
HASH_SQL = "sha256(concat_ws(chr(31), seq::VARCHAR, {}))".format(
    ", ".join(f"""coalesce('+' || "{name}", '-')""" for name in HASHED_FIELDS)
)
