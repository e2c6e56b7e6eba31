"""audit chain state: verifications, repairs, quarantine; appends refused on a broken chain

`audit_check` keeps what each verification found (the latest says whether the chain is
broken), `audit_repair` the breaks an administrator repaired (ranges verify skips, nothing
deleted), `audit_quarantine` the sign-ins recorded while the chain was broken.

On PostgreSQL `audit_append` is replaced by one that refuses (SQLSTATE SJA01) to extend a
chain that is broken: the latest verification found it broken, a record lies beyond the head,
or the head's hash is not its last record's. Same hash as 0005; the checks are index lookups
made while the head's row is locked (`max(seq)`, not `seq > n`: a cached generic plan for a
range could scan the whole table).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "26f22358b90252cf05268b7d1c7f79db988255e5f19b2aaee082782716a2b48f"

_HASH = """encode(sha256(convert_to(concat_ws(chr(31),
            next_seq::text,
            coalesce('+' || entry.at, '-'),
            coalesce('+' || entry.actor, '-'),
            coalesce('+' || entry.role, '-'),
            coalesce('+' || entry.action, '-'),
            coalesce('+' || entry.outcome, '-'),
            coalesce('+' || entry.record_type, '-'),
            coalesce('+' || entry.record_id, '-'),
            coalesce('+' || entry.purpose, '-'),
            coalesce('+' || entry.request_id, '-'),
            '+' || prev), 'UTF8')), 'hex')"""

_GATE = f"""
    IF EXISTS (SELECT 1 FROM audit_check WHERE state = 'broken'
               AND id = (SELECT max(id) FROM audit_check))
       OR (SELECT max(seq) FROM audit_record) > next_seq
       OR NOT ((next_seq = 0 AND prev = '{GENESIS_HASH}')
               OR EXISTS (SELECT 1 FROM audit_record WHERE seq = next_seq AND hash = prev)) THEN
        RAISE EXCEPTION 'the audit chain is broken: run `sijill audit verify`'
            USING ERRCODE = 'SJA01';
    END IF;
"""


def _append_function(gate: str) -> str:
    missing_head = (
        "RAISE EXCEPTION 'the audit chain has no head row' USING ERRCODE = 'SJA01';"
        if gate
        else "RAISE EXCEPTION 'the audit chain has no head row: run `sijill db upgrade`';"
    )
    return f"""
CREATE OR REPLACE FUNCTION audit_append(batch json) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(json_array_length(batch), 0);
    next_seq bigint;
    prev text;
    this_hash text;
    entry record;
BEGIN
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    UPDATE audit_head SET seq = audit_head.seq + n WHERE id = 1
        RETURNING audit_head.seq - n, audit_head.hash INTO next_seq, prev;
    IF NOT FOUND THEN
        {missing_head}
    END IF;
{gate}
    FOR entry IN
        SELECT e.* FROM ROWS FROM (json_to_recordset(batch) AS (
            at text, actor text, role text, action text, outcome text, record_type text,
            record_id text, purpose text, request_id text))
            WITH ORDINALITY AS e(at, actor, role, action, outcome, record_type, record_id,
                                 purpose, request_id, position)
        ORDER BY e.position
    LOOP
        next_seq := next_seq + 1;
        this_hash := {_HASH};
        INSERT INTO audit_record (seq, at, actor, role, action, outcome, record_type, record_id,
                                  purpose, request_id, prev_hash, hash)
        VALUES (next_seq, entry.at, entry.actor, entry.role, entry.action, entry.outcome,
                entry.record_type, entry.record_id, entry.purpose, entry.request_id, prev,
                this_hash);
        prev := this_hash;
    END LOOP;
    UPDATE audit_head SET hash = prev WHERE id = 1;
    RETURN next_seq;
END
$$
"""


def _serial() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _entry_columns() -> list[sa.Column]:
    return [
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=128), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("record_type", sa.String(length=32), nullable=True),
        sa.Column("record_id", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=128), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "audit_check",
        sa.Column("id", _serial(), autoincrement=True, nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("head_seq", sa.BigInteger(), nullable=True),
        sa.Column("bad_seq", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("problem", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_repair",
        sa.Column("id", _serial(), autoincrement=True, nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("problem", sa.String(length=500), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("resume_hash", sa.String(length=64), nullable=False),
        sa.Column("found_head_seq", sa.BigInteger(), nullable=True),
        sa.Column("found_head_hash", sa.String(length=64), nullable=True),
        sa.Column("record_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_quarantine",
        sa.Column("id", _serial(), autoincrement=True, nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        *_entry_columns(),
        sa.PrimaryKeyConstraint("id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_append_function(_GATE))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_append_function(""))
    op.drop_table("audit_quarantine")
    op.drop_table("audit_repair")
    op.drop_table("audit_check")
