"""programs: spec versions, eligibility runs and decisions, enrollment and its events

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "program_version",
        sa.Column("program", sa.String(48), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("body", _JSON, nullable=False),
        sa.Column("registered_by", sa.String(64), nullable=False),
        sa.Column("registered_at", _TS, nullable=False),
    )
    op.create_table(
        "program_run",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("program", sa.String(48), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("area_id", sa.Integer(), sa.ForeignKey("area.id"), nullable=True),
        sa.Column(
            "snapshot_id", sa.BigInteger(), sa.ForeignKey("feature_snapshot.id"), nullable=False
        ),
        sa.Column("score_runs", _JSON, nullable=False),
        sa.Column("parameters", _JSON, nullable=False),
        sa.Column("clauses", _JSON, nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("run_by", sa.String(64), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("households_assessed", sa.BigInteger(), nullable=False),
        sa.Column("households_without_consent", sa.BigInteger(), nullable=False),
        sa.Column("eligible", sa.BigInteger(), nullable=False),
        sa.Column("selected", sa.BigInteger(), nullable=False),
        sa.Column("waitlisted", sa.BigInteger(), nullable=False),
        sa.Column("cost_per_cycle", sa.BigInteger(), nullable=True),
        sa.Column("summary", _JSON, nullable=True),
    )
    op.create_index("ix_program_run_program", "program_run", ["program"])
    op.create_table(
        "eligibility_decision",
        sa.Column("run_id", sa.BigInteger(), primary_key=True),
        sa.Column("household_id", sa.BigInteger(), primary_key=True),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("passed", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
    )
    op.create_table(
        "enrollment",
        sa.Column("program", sa.String(48), primary_key=True),
        sa.Column("household_id", sa.BigInteger(), primary_key=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("recertify_on", sa.Date(), nullable=True),
    )
    op.create_index("ix_enrollment_status", "enrollment", ["status"])
    op.create_table(
        "enrollment_event",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("program", sa.String(48), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("from_status", sa.String(12), nullable=True),
        sa.Column("to_status", sa.String(12), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("by_hand", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_enrollment_event_household_id", "enrollment_event", ["household_id"])


def downgrade() -> None:
    op.drop_table("enrollment_event")
    op.drop_table("enrollment")
    op.drop_table("eligibility_decision")
    op.drop_table("program_run")
    op.drop_table("program_version")
