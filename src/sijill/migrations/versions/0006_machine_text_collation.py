"""bytewise collation for record keys and the national-ID blind index (PostgreSQL)

`household.source_key`, `person.source_key` and `person.national_id_index` are compared only
for equality and never shown in order: the "C" collation lets their unique indexes build and
insert without the locale's collation rules (about 2x faster to build on a national registry).
Equality is unchanged, so no row's meaning changes; the indexes are rebuilt. SQLite compares
bytewise already.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("household", "source_key", 200),
    ("person", "source_key", 200),
    ("person", "national_id_index", 32),
)


def _collate(collation: str | None) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, length in COLUMNS:
        op.alter_column(
            table,
            column,
            type_=sa.String(length, collation=collation),
            existing_type=sa.String(length),
            existing_nullable=True,
        )


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate("default")
