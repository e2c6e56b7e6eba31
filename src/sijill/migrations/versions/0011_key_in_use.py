"""key_in_use: the ids of the keys that encrypt stored identifiers

A server, an import and /health compare it with their keyring at start, so a wrong keyring is
refused in one line instead of answering 500 on every read; reading every ciphertext's prefix
instead would scan the whole registry at each start. Filled here once from the stored values.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENCRYPTED = (
    ("person", "national_id"),
    ("person", "phone"),
    ("person_version", "national_id"),
    ("person_version", "phone"),
)


def upgrade() -> None:
    op.create_table(
        "key_in_use",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("key_id"),
    )
    bind = op.get_bind()
    prefix = (
        "split_part({c}, '.', 1)"
        if bind.dialect.name == "postgresql"
        else "substr({c}, 1, instr({c}, '.') - 1)"
    )
    selects = " UNION ".join(
        f"SELECT DISTINCT {prefix.format(c=column)} AS key_id FROM {table} "
        f"WHERE {column} IS NOT NULL"
        for table, column in _ENCRYPTED
    )
    op.execute(f"INSERT INTO key_in_use (key_id) SELECT key_id FROM ({selects}) AS used")


def downgrade() -> None:
    op.drop_table("key_in_use")
