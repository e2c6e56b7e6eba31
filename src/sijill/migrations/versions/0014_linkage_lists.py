"""record linkage against outside lists: the lines matched and the dated facts they brought

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Exact amounts: SQLite's NUMERIC keeps binary floats, so there the decimal's text.
_AMOUNT = sa.Numeric(18, 3).with_variant(sa.String(40), "sqlite")


def upgrade() -> None:
    op.create_table(
        "list_match",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("run_id", sa.BigInteger(), sa.ForeignKey("linkage_run.id"), nullable=False),
        sa.Column("list_kind", sa.String(16), nullable=False),
        sa.Column("list_file", sa.String(200), nullable=False),
        sa.Column("list_line", sa.BigInteger(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), sa.ForeignKey("person.id"), nullable=False),
        sa.Column("match_weight", sa.Float(), nullable=False),
        sa.Column("match_probability", sa.Float(), nullable=False),
        sa.Column(
            "model_version",
            sa.String(32),
            sa.ForeignKey("linkage_model.version"),
            nullable=False,
        ),
        sa.Column("event", sa.String(32), nullable=False),
    )
    op.create_index("ix_list_match_run_id", "list_match", ["run_id"])
    op.create_index("ix_list_match_person", "list_match", ["person_id"])
    op.create_table(
        "person_fact",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("person_id", sa.BigInteger(), sa.ForeignKey("person.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("text_value", sa.String(200), nullable=True),
        sa.Column("amount", _AMOUNT, nullable=True),
        sa.Column("source_list", sa.String(200), nullable=False),
        sa.Column("source_line", sa.BigInteger(), nullable=False),
        sa.Column("list_match_id", sa.BigInteger(), sa.ForeignKey("list_match.id"), nullable=False),
    )
    op.create_index("ix_person_fact_person_kind", "person_fact", ["person_id", "kind"])


def downgrade() -> None:
    op.drop_table("person_fact")
    op.drop_table("list_match")
