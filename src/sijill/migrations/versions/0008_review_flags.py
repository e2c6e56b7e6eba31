"""review flags: pairs of records a reviewer who can see both must look at

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_flag",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("person_a_id", sa.BigInteger(), nullable=False),
        sa.Column("person_b_id", sa.BigInteger(), nullable=False),
        sa.Column("household_a_id", sa.BigInteger(), nullable=True),
        sa.Column("household_b_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("raised_by", sa.String(length=64), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(length=32), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["household_a_id"], ["household.id"]),
        sa.ForeignKeyConstraint(["household_b_id"], ["household.id"]),
        sa.ForeignKeyConstraint(["person_a_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["person_b_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("review_flag") as batch_op:
        batch_op.create_index(batch_op.f("ix_review_flag_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_review_flag_person_a_id"), ["person_a_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_review_flag_person_b_id"), ["person_b_id"], unique=False
        )
        batch_op.create_index(
            "uq_review_flag_open_pair",
            ["kind", "person_a_id", "person_b_id"],
            unique=True,
            sqlite_where=sa.text("state = 'open'"),
            postgresql_where=sa.text("state = 'open'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("review_flag") as batch_op:
        batch_op.drop_index(
            "uq_review_flag_open_pair",
            sqlite_where=sa.text("state = 'open'"),
            postgresql_where=sa.text("state = 'open'"),
        )
        batch_op.drop_index(batch_op.f("ix_review_flag_person_b_id"))
        batch_op.drop_index(batch_op.f("ix_review_flag_person_a_id"))
        batch_op.drop_index(batch_op.f("ix_review_flag_state"))
    op.drop_table("review_flag")
