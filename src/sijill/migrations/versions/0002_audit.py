"""audit chain

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# sha256("sijill audit chain v1"): a literal, so this migration means the same thing forever
# (sijill.security.audit.models.GENESIS_HASH is tested against it).
GENESIS_HASH = "26f22358b90252cf05268b7d1c7f79db988255e5f19b2aaee082782716a2b48f"

# The triggers stop mistakes and anyone without owner rights; an owner can disable them, and
# the hash chain is what catches that. Revoking UPDATE/DELETE/TRUNCATE from the application's
# role is left to the operator, who knows which roles exist.
POSTGRESQL_TRIGGERS = [
    """
    CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the audit chain is append-only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    "CREATE TRIGGER audit_record_append_only BEFORE UPDATE OR DELETE ON audit_record "
    "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()",
    "CREATE TRIGGER audit_record_no_truncate BEFORE TRUNCATE ON audit_record "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()",
    "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
    "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()",
    "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()",
    # Moving the head back would hide a truncated tail.
    "CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head "
    "FOR EACH ROW WHEN (NEW.seq < OLD.seq OR NEW.id <> OLD.id) "
    "EXECUTE FUNCTION audit_refuse_change()",
]

SQLITE_TRIGGERS = [
    "CREATE TRIGGER audit_record_no_update BEFORE UPDATE ON audit_record BEGIN "
    "SELECT RAISE(ABORT, 'the audit chain is append-only: UPDATE on audit_record refused'); END",
    "CREATE TRIGGER audit_record_no_delete BEFORE DELETE ON audit_record BEGIN "
    "SELECT RAISE(ABORT, 'the audit chain is append-only: DELETE on audit_record refused'); END",
    "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head BEGIN "
    "SELECT RAISE(ABORT, 'the audit chain is append-only: DELETE on audit_head refused'); END",
    "CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head "
    "WHEN NEW.seq < OLD.seq OR NEW.id <> OLD.id BEGIN "
    "SELECT RAISE(ABORT, 'the audit chain is append-only: UPDATE on audit_head refused'); END",
]


def upgrade() -> None:
    op.create_table(
        "audit_record",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=128), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("record_type", sa.String(length=32), nullable=True),
        sa.Column("record_id", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=128), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_audit_record_record_id", "audit_record", ["record_id"])
    op.create_index("ix_audit_record_actor", "audit_record", ["actor"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_head_single_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])
    dialect = op.get_bind().dialect.name
    for statement in POSTGRESQL_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    # Dropping the tables drops their triggers on both backends.
    op.drop_table("audit_head")
    op.drop_index("ix_audit_record_actor", table_name="audit_record")
    op.drop_index("ix_audit_record_record_id", table_name="audit_record")
    op.drop_table("audit_record")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_refuse_change()")
