"""encrypted identifiers

National ID numbers and phone numbers, on `person` and `person_version`, are encrypted in place
with the keyring of `SIJILL_KEY_FILE` (created if missing), and the number's blind index is
added for exact search. The whole upgrade is one transaction on PostgreSQL: it encrypts every
row or none. Rows are read and written in batches so memory stays flat on a national registry.

Revision ID: 0004
Revises: 0003
"""

import contextlib
from collections.abc import Callable, Iterator, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 20_000
_TABLES = (
    ("person", (("id", "bigint"),)),
    ("person_version", (("person_id", "bigint"), ("version", "integer"))),
)


def _refuse_sqlite_foreign_keys() -> None:
    """SQLite rebuilds `person` to widen its columns; with foreign keys enforced, dropping the
    old table would delete every `person_version` row (ON DELETE CASCADE)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "migration 0004 rebuilds the person table, which on SQLite must run with foreign "
            "keys off (a connection made by `sijill db upgrade` has them off)"
        )


def _keyring():
    from sijill.core.settings import Settings
    from sijill.security.keys.keyring import Keyring

    return Keyring.load(Settings().key_file)


def _batches(table: str, keys, where: str) -> Iterator[list]:
    """Every row of `table` matching `where`: primary key, national_id, phone; in key order."""
    bind = op.get_bind()
    names = [name for name, _ in keys]
    after = None
    while True:
        position = ""
        params: dict = {"n": _BATCH}
        if after is not None:
            bounds = ", ".join(f":a{i}" for i in range(len(names)))
            position = f"({', '.join(names)}) > ({bounds}) AND "
            params.update({f"a{i}": value for i, value in enumerate(after)})
        rows = bind.execute(
            sa.text(
                f"SELECT {', '.join(names)}, national_id, phone FROM {table} "
                f"WHERE {position}({where}) ORDER BY {', '.join(names)} LIMIT :n"
            ),
            params,
        ).all()
        if not rows:
            return
        after = tuple(rows[-1][: len(names)])
        yield rows


def _convert(transform: Callable[[list, list], dict]) -> None:
    from sijill.security.keys.rotation import update_rows

    bind = op.get_bind()
    present = "national_id IS NOT NULL OR phone IS NOT NULL"
    for table, keys in _TABLES:
        width = len(keys)
        for rows in _batches(table, keys, present):
            old = {
                "national_id": [row[width] for row in rows],
                "phone": [row[width + 1] for row in rows],
            }
            new = transform(old["national_id"], old["phone"])
            key_values = [tuple(row[:width]) for row in rows]
            update_rows(bind, table, keys, key_values, new, old)


def _has_identifiers() -> bool:
    bind = op.get_bind()
    return any(
        bind.execute(
            sa.text(
                f"SELECT 1 FROM {table} WHERE national_id IS NOT NULL OR phone IS NOT NULL LIMIT 1"
            )
        ).first()
        for table, _ in _TABLES
    )


def upgrade() -> None:
    _refuse_sqlite_foreign_keys()
    for table in ("person", "person_version"):
        with op.batch_alter_table(table) as batch:
            if table == "person":
                batch.drop_index("ix_person_national_id")
            batch.alter_column("national_id", type_=sa.String(160), existing_type=sa.String(64))
            batch.alter_column("phone", type_=sa.String(120), existing_type=sa.String(32))
            batch.add_column(sa.Column("national_id_index", sa.String(32), nullable=True))

    # The key file is only read (or created) when there is something to encrypt, so migrating
    # an empty registry leaves no key file behind in the working directory.
    if _has_identifiers():
        keyring = _keyring()

        def encrypt(numbers: list, phones: list) -> dict:
            numbers = _clear(keyring, "national_id", numbers)
            phones = _clear(keyring, "phone", phones)
            return {
                "national_id": keyring.encrypt_many("national_id", numbers),
                "phone": keyring.encrypt_many("phone", phones),
                "national_id_index": keyring.blind_index_many(numbers),
            }

        _convert(encrypt)

    # Built after the rows are filled: one sort instead of an index update per row.
    with op.batch_alter_table("person") as batch:
        batch.create_index("ix_person_national_id_index", ["national_id_index"], unique=False)


def _clear(keyring, field: str, values: list) -> list:
    """Values in clear: one that already decrypts (an earlier, interrupted run of this upgrade
    on SQLite) is taken back to clear first, so nothing is encrypted twice."""
    from sijill.security.keys.keyring import DecryptionError

    known = set(keyring.key_ids)
    out = []
    for value in values:
        if value is not None and keyring.key_id_of(value) in known:
            # A clear value that merely looks like a token fails to decrypt and stays as it is.
            with contextlib.suppress(DecryptionError):
                value = keyring.decrypt(field, value)
        out.append(value)
    return out


def downgrade() -> None:
    _refuse_sqlite_foreign_keys()
    if _has_identifiers():
        keyring = _keyring()

        def decrypt(numbers: list, phones: list) -> dict:
            return {
                "national_id": keyring.decrypt_many("national_id", numbers),
                "phone": keyring.decrypt_many("phone", phones),
            }

        _convert(decrypt)
    with op.batch_alter_table("person") as batch:
        batch.drop_index("ix_person_national_id_index")
    for table in ("person", "person_version"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("national_id_index")
            batch.alter_column("national_id", type_=sa.String(64), existing_type=sa.String(160))
            batch.alter_column("phone", type_=sa.String(32), existing_type=sa.String(120))
            if table == "person":
                batch.create_index("ix_person_national_id", ["national_id"], unique=False)
