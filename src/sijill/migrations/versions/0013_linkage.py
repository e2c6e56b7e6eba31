"""record linkage: the models runs were scored with, the runs, the pairs they proposed

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "linkage_model",
        sa.Column("version", sa.String(32), primary_key=True),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trained_on_records", sa.BigInteger(), nullable=False),
        sa.Column("body", _JSON, nullable=False),
    )
    op.create_table(
        "linkage_run",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column(
            "model_version",
            sa.String(32),
            sa.ForeignKey("linkage_model.version"),
            nullable=False,
        ),
        sa.Column("area_id", sa.Integer(), sa.ForeignKey("area.id"), nullable=True),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("run_by", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("pairs_proposed", sa.BigInteger(), nullable=False),
        sa.Column("flags_raised", sa.BigInteger(), nullable=False),
        sa.Column("review_threshold", sa.Float(), nullable=False),
    )
    op.create_table(
        "match_pair",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("run_id", sa.BigInteger(), sa.ForeignKey("linkage_run.id"), nullable=False),
        sa.Column("person_a_id", sa.BigInteger(), sa.ForeignKey("person.id"), nullable=False),
        sa.Column("person_b_id", sa.BigInteger(), sa.ForeignKey("person.id"), nullable=False),
        sa.Column("match_weight", sa.Float(), nullable=False),
        sa.Column("match_probability", sa.Float(), nullable=False),
        sa.Column("levels", _JSON, nullable=False),
        sa.Column(
            "review_flag_id", sa.BigInteger(), sa.ForeignKey("review_flag.id"), nullable=True
        ),
    )
    op.create_index("ix_match_pair_run_id", "match_pair", ["run_id"])
    op.create_index("ix_match_pair_persons", "match_pair", ["person_a_id", "person_b_id"])
    op.create_index("ix_match_pair_review_flag_id", "match_pair", ["review_flag_id"])


def downgrade() -> None:
    op.drop_table("match_pair")
    op.drop_table("linkage_run")
    op.drop_table("linkage_model")
