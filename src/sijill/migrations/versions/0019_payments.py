"""payments: instruments, runs, batches, instructions, holds, provider reports, ledger

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_entry",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("move_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("account", sa.String(length=8), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("program", sa.String(length=48), nullable=False),
        sa.Column("cycle", sa.String(length=8), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("instruction_id", sa.BigInteger(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_entry_household", ["household_id"], unique=False)

    op.create_table(
        "payment_hold",
        sa.Column("program", sa.String(length=48), nullable=False),
        sa.Column("cycle", sa.String(length=8), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("program", "cycle", "household_id"),
    )
    with op.batch_alter_table("payment_hold", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_hold_run_id"), ["run_id"], unique=False)

    op.create_table(
        "payment_instruction",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("program", sa.String(length=48), nullable=False),
        sa.Column("cycle", sa.String(length=8), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.SmallInteger(), nullable=False),
        sa.Column("instrument_id", sa.BigInteger(), nullable=False),
        sa.Column("transfer_ref", sa.String(length=35), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("payment_instruction", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payment_instruction_batch_id"), ["batch_id"], unique=False
        )
        batch_op.create_index("ix_payment_instruction_household", ["household_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_payment_instruction_transfer_ref"), ["transfer_ref"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        # Room on each page for a row's new version: status updates stay on the page (HOT).
        op.execute("ALTER TABLE payment_instruction SET (fillfactor = 80)")
    op.create_table(
        "entitlement_payment",
        sa.Column("program", sa.String(length=48), nullable=False),
        sa.Column("cycle", sa.String(length=8), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("instruction_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("program", "cycle", "household_id"),
        sa.UniqueConstraint("instruction_id"),
    )

    op.create_table(
        "provider_report",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("ingested_by", sa.String(length=64), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "summary",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
    )
    op.create_table(
        "payment_run",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("cycle", sa.String(length=8), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("consolidated", sa.Boolean(), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("prepared_by", sa.String(length=64), nullable=False),
        sa.Column("prepared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "summary",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["area.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("payment_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_run_cycle"), ["cycle"], unique=False)

    op.create_table(
        "provider_report_unmatched",
        sa.Column("report_id", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["provider_report.id"],
        ),
        sa.PrimaryKeyConstraint("report_id", "line"),
    )
    op.create_table(
        "payment_batch",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("cycle", sa.String(length=8), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("minor_units", sa.SmallInteger(), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("payments", sa.BigInteger(), nullable=False),
        sa.Column("instructions", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=True),
        sa.Column("file_hash", sa.String(length=64), nullable=True),
        sa.Column("prepared_by", sa.String(length=64), nullable=False),
        sa.Column("prepared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_hash", sa.String(length=64), nullable=True),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["area_id"],
            ["area.id"],
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["payment_run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("payment_batch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_batch_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_payment_batch_status"), ["status"], unique=False)

    op.create_table(
        "payment_instrument",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=True),
        sa.Column("masked", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=160), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["household.id"],
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("payment_instrument", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payment_instrument_fingerprint"), ["fingerprint"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_payment_instrument_household_id"), ["household_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_payment_instrument_status"), ["status"], unique=False)
        batch_op.create_index(
            "uq_payment_instrument_active",
            ["household_id"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("payment_instrument", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_payment_instrument_active",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index(batch_op.f("ix_payment_instrument_status"))
        batch_op.drop_index(batch_op.f("ix_payment_instrument_household_id"))
        batch_op.drop_index(batch_op.f("ix_payment_instrument_fingerprint"))

    op.drop_table("payment_instrument")
    with op.batch_alter_table("payment_batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_batch_status"))
        batch_op.drop_index(batch_op.f("ix_payment_batch_run_id"))

    op.drop_table("payment_batch")
    op.drop_table("provider_report_unmatched")
    with op.batch_alter_table("payment_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_run_cycle"))

    op.drop_table("payment_run")
    op.drop_table("provider_report")
    with op.batch_alter_table("payment_instruction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_instruction_transfer_ref"))
        batch_op.drop_index("ix_payment_instruction_household")
        batch_op.drop_index(batch_op.f("ix_payment_instruction_batch_id"))

    op.drop_table("entitlement_payment")
    op.drop_table("payment_instruction")
    with op.batch_alter_table("payment_hold", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_hold_run_id"))

    op.drop_table("payment_hold")
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entry_household")

    op.drop_table("ledger_entry")
