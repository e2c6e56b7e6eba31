"""person facts the region's programs need: school grade, contributory pension, orphanhood,
monthly income

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("person", "person_version")


def _columns() -> tuple[sa.Column, ...]:
    return (
        sa.Column("school_grade", sa.SmallInteger(), nullable=True),
        sa.Column("contributory_pension", sa.Boolean(), nullable=True),
        sa.Column("orphanhood", sa.String(length=16), nullable=True),
        # Minor units of the currency: a month's income overflows a 32-bit integer in some.
        sa.Column("monthly_income", sa.BigInteger(), nullable=True),
    )


def upgrade() -> None:
    # Plain ADD COLUMN on both engines: nullable columns without references, so SQLite adds
    # them in place. The batch way would rebuild `person`, and with foreign keys enforced
    # dropping the old table deletes every `person_version` row (ON DELETE CASCADE).
    for table in _TABLES:
        for column in _columns():
            op.add_column(table, column)


def downgrade() -> None:
    # SQLite (3.35 and later) drops a column that no index or reference uses in place too.
    for table in _TABLES:
        for column in reversed(_columns()):
            op.drop_column(table, column.name)
