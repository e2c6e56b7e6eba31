"""targeting: feature snapshots, PMT models, scoring runs and household scores

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feature_snapshot",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("catalogue_version", sa.String(32), nullable=False),
        sa.Column("area_id", sa.Integer(), sa.ForeignKey("area.id"), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("households", sa.BigInteger(), nullable=False),
        sa.Column("households_without_consent", sa.BigInteger(), nullable=False),
        sa.Column("file_name", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
    )
    op.create_table(
        "pmt_model",
        sa.Column("version", sa.String(32), primary_key=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("body", _JSON, nullable=False),
        sa.Column("survey", sa.String(200), nullable=False),
        sa.Column("fitted_by", sa.String(64), nullable=False),
        sa.Column("fitted_at", _TS, nullable=False),
        sa.Column("approved_by", sa.String(64), nullable=True),
        sa.Column("approved_at", _TS, nullable=True),
    )
    op.create_table(
        "targeting_run",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column(
            "snapshot_id", sa.BigInteger(), sa.ForeignKey("feature_snapshot.id"), nullable=False
        ),
        sa.Column(
            "model_version", sa.String(32), sa.ForeignKey("pmt_model.version"), nullable=True
        ),
        sa.Column("config_digest", sa.String(64), nullable=True),
        sa.Column("config", _JSON, nullable=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("run_by", sa.String(64), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("households_scored", sa.BigInteger(), nullable=False),
        sa.Column("households_without_consent", sa.BigInteger(), nullable=False),
        sa.Column("summary", _JSON, nullable=True),
    )
    op.create_table(
        "household_score",
        sa.Column("run_id", sa.BigInteger(), sa.ForeignKey("targeting_run.id"), primary_key=True),
        sa.Column("household_id", sa.BigInteger(), primary_key=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("poor", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("household_score")
    op.drop_table("targeting_run")
    op.drop_table("pmt_model")
    op.drop_table("feature_snapshot")
