"""person merges: two records of one person merged, and undone exactly

`person.merged_into_id` points a lost record at the kept one (outside the versioned state);
`person_merge` is the decision, what it was made from and exactly what it changed.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds the column with its reference in place. The batch way would rebuild
        # `person`, and with foreign keys enforced dropping the old table deletes every
        # `person_version` row (ON DELETE CASCADE).
        op.execute("ALTER TABLE person ADD COLUMN merged_into_id BIGINT REFERENCES person (id)")
    else:
        op.add_column("person", sa.Column("merged_into_id", sa.BigInteger(), nullable=True))
        op.create_foreign_key(
            "fk_person_merged_into_id_person", "person", "person", ["merged_into_id"], ["id"]
        )
    op.create_index(
        "ix_person_merged_into_id",
        "person",
        ["merged_into_id"],
        sqlite_where=sa.text("merged_into_id IS NOT NULL"),
        postgresql_where=sa.text("merged_into_id IS NOT NULL"),
    )
    op.create_table(
        "person_merge",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("kept_person_id", sa.BigInteger(), nullable=False),
        sa.Column("lost_person_id", sa.BigInteger(), nullable=False),
        sa.Column("keep_membership_of", sa.String(length=8), nullable=False),
        sa.Column("household_id", sa.BigInteger(), nullable=True),
        sa.Column("ended_memberships", _JSON, nullable=False),
        sa.Column("membership_id", sa.BigInteger(), nullable=True),
        sa.Column("membership_created", sa.Boolean(), nullable=False),
        sa.Column("match_weight", sa.Float(), nullable=True),
        sa.Column("match_probability", sa.Float(), nullable=True),
        sa.Column("levels", _JSON, nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column(
            "review_flag_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("merged_by", sa.String(length=64), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unmerged_by", sa.String(length=64), nullable=True),
        sa.Column("unmerged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"]),
        sa.ForeignKeyConstraint(["kept_person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["lost_person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["review_flag_id"], ["review_flag.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("person_merge") as batch_op:
        batch_op.create_index(batch_op.f("ix_person_merge_kept_person_id"), ["kept_person_id"])
        batch_op.create_index(batch_op.f("ix_person_merge_lost_person_id"), ["lost_person_id"])


def downgrade() -> None:
    op.drop_table("person_merge")
    op.drop_index(op.f("ix_person_merged_into_id"), table_name="person")
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # A column in a reference can only go by rebuilding `person` (see upgrade).
        if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
            raise RuntimeError(
                "downgrading 0012 rebuilds the person table, which on SQLite must run with "
                "foreign keys off"
            )
        with op.batch_alter_table("person", recreate="always") as batch_op:
            batch_op.drop_column("merged_into_id")
    else:
        op.drop_constraint("fk_person_merged_into_id_person", "person", type_="foreignkey")
        op.drop_column("person", "merged_into_id")
