"""audit append in the database (PostgreSQL)

`audit_append(...)` advances the chain's head, hashes and inserts a batch of records and
moves the head's hash, all inside the server: one round trip instead of four, and the head's
row lock is held for the function and the commit only, not across network round trips while
other appenders queue behind it. The hash is the one `sijill.security.audit_models.canonical`
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

# One array per field, all of the same length.
# Field order and encoding mirror audit_models.HASHED_FIELDS and _encode: seq as decimal
# digits, then each field as '+' || value, or '-' for NULL, joined by chr(31).
AUDIT_APPEND = """
CREATE FUNCTION audit_append(
    ats text[], actors text[], roles text[], actions text[], outcomes text[],
    record_types text[], record_ids text[], purposes text[], request_ids text[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(cardinality(actors), 0);
    first_seq bigint;
    prev text;
    hashes text[] := '{}';
    prevs text[] := '{}';
BEGIN
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    IF coalesce(cardinality(ats), 0) <> n OR coalesce(cardinality(roles), 0) <> n
            OR coalesce(cardinality(actions), 0) <> n
            OR coalesce(cardinality(outcomes), 0) <> n
            OR coalesce(cardinality(record_types), 0) <> n
            OR coalesce(cardinality(record_ids), 0) <> n
            OR coalesce(cardinality(purposes), 0) <> n
            OR coalesce(cardinality(request_ids), 0) <> n THEN
        RAISE EXCEPTION 'audit_append: the field arrays differ in length';
    END IF;
    UPDATE audit_head SET seq = audit_head.seq + n WHERE id = 1
        RETURNING audit_head.seq - n + 1, audit_head.hash INTO first_seq, prev;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the audit chain has no head row: run `sijill db upgrade`';
    END IF;
    FOR i IN 1..n LOOP
        prevs := prevs || prev;
        prev := encode(sha256(convert_to(concat_ws(chr(31),
            (first_seq + i - 1)::text,
            coalesce('+' || ats[i], '-'),
            coalesce('+' || actors[i], '-'),
            coalesce('+' || roles[i], '-'),
            coalesce('+' || actions[i], '-'),
            coalesce('+' || outcomes[i], '-'),
            coalesce('+' || record_types[i], '-'),
            coalesce('+' || record_ids[i], '-'),
            coalesce('+' || purposes[i], '-'),
            coalesce('+' || request_ids[i], '-'),
            '+' || prev), 'UTF8')), 'hex');
        hashes := hashes || prev;
    END LOOP;
    INSERT INTO audit_record (seq, at, actor, role, action, outcome, record_type, record_id,
                              purpose, request_id, prev_hash, hash)
    SELECT first_seq + r.i - 1, r.at, r.actor, r.role, r.action, r.outcome, r.record_type,
           r.record_id, r.purpose, r.request_id, r.prev_hash, r.hash
    FROM unnest(ats, actors, roles, actions, outcomes, record_types, record_ids, purposes,
                request_ids, prevs, hashes)
         WITH ORDINALITY AS r(at, actor, role, action, outcome, record_type, record_id, purpose,
                              request_id, prev_hash, hash, i);
    UPDATE audit_head SET hash = prev WHERE id = 1;
    RETURN first_seq + n - 1;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(AUDIT_APPEND)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION audit_append(text[], text[], text[], text[], text[], text[], text[], "
            "text[], text[])"
        )
