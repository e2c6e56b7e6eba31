"""entitlements per cycle, compliance records and decisions

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "entitlement_cycle",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("program", sa.String(48), nullable=False),
        sa.Column("cycle", sa.String(8), nullable=False),
        sa.Column("area_id", sa.Integer(), sa.ForeignKey("area.id"), nullable=True),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("run_id", sa.BigInteger(), sa.ForeignKey("program_run.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("generated_by", sa.String(64), nullable=False),
        sa.Column("generated_at", _TS, nullable=False),
        sa.Column("approved_by", sa.String(64), nullable=True),
        sa.Column("approved_at", _TS, nullable=True),
        sa.Column("households", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("summary", _JSON, nullable=False),
    )
    op.create_index("ix_entitlement_cycle_program", "entitlement_cycle", ["program"])
    op.create_table(
        "entitlement",
        sa.Column("program", sa.String(48), primary_key=True),
        sa.Column("cycle", sa.String(8), primary_key=True),
        sa.Column("household_id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "batch_id", sa.BigInteger(), sa.ForeignKey("entitlement_cycle.id"), nullable=False
        ),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("formula_minor", sa.BigInteger(), nullable=False),
        sa.Column("days", sa.SmallInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("reason", sa.String(160), nullable=True),
    )
    op.create_index("ix_entitlement_batch_id", "entitlement", ["batch_id"])
    op.create_table(
        "compliance_record",
        sa.Column("program", sa.String(48), primary_key=True),
        sa.Column("cycle", sa.String(8), primary_key=True),
        sa.Column("household_id", sa.BigInteger(), primary_key=True),
        sa.Column("condition", sa.String(48), primary_key=True),
        sa.Column("compliant", sa.Boolean(), nullable=False),
        sa.Column("imported_by", sa.String(64), nullable=False),
        sa.Column("imported_at", _TS, nullable=False),
    )
    op.create_table(
        "compliance_decision",
        sa.Column("program", sa.String(48), primary_key=True),
        sa.Column("cycle", sa.String(8), primary_key=True),
        sa.Column("household_id", sa.BigInteger(), primary_key=True),
        sa.Column("condition", sa.String(48), primary_key=True),
        sa.Column(
            "batch_id", sa.BigInteger(), sa.ForeignKey("entitlement_cycle.id"), nullable=False
        ),
        sa.Column("compliant", sa.Boolean(), nullable=False),
        sa.Column("recorded", sa.Boolean(), nullable=False),
        sa.Column("missed", sa.SmallInteger(), nullable=False),
        sa.Column("kept", sa.SmallInteger(), nullable=False),
        sa.Column("suspended", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(12), nullable=False),
    )
    op.create_index("ix_compliance_decision_batch_id", "compliance_decision", ["batch_id"])


def downgrade() -> None:
    op.drop_table("compliance_decision")
    op.drop_table("compliance_record")
    op.drop_table("entitlement")
    op.drop_table("entitlement_cycle")
