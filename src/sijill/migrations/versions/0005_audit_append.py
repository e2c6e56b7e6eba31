"""audit append in the database (PostgreSQL)

`audit_append(...)` advances the chain's head, hashes and inserts a batch of records and
moves the head's hash, all inside the server: one round trip instead of four, and the head's
row lock is held for the function and the commit only, not across network round trips while
other appenders queue behind it. The hash is the one `sijill.security.audit.models.canonical`
defines (tests check the two against each other). SQLite keeps appending from Python.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The batch is a JSON array of objects with the entry's fields: one parameter, cheap for the
# client to send (nine arrays cost the driver more than the whole call). The fields are read
# back as text; the appender has already escaped the control characters JSON text could not
# carry into PostgreSQL text. Field order and encoding mirror audit_models.HASHED_FIELDS and
# _encode: seq as decimal digits, then each field as '+' || value, or '-' for NULL, joined by
# chr(31).
AUDIT_APPEND = """
CREATE FUNCTION audit_append(batch json) RETURNS bigint LANGUAGE plpgsql AS $$
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
        RAISE EXCEPTION 'the audit chain has no head row: run `sijill db upgrade`';
    END IF;
    FOR entry IN
        SELECT e.* FROM ROWS FROM (json_to_recordset(batch) AS (
            at text, actor text, role text, action text, outcome text, record_type text,
            record_id text, purpose text, request_id text))
            WITH ORDINALITY AS e(at, actor, role, action, outcome, record_type, record_id,
                                 purpose, request_id, position)
        ORDER BY e.position
    LOOP
        next_seq := next_seq + 1;
        this_hash := encode(sha256(convert_to(concat_ws(chr(31),
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
            '+' || prev), 'UTF8')), 'hex');
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


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(AUDIT_APPEND)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_append(json)")
