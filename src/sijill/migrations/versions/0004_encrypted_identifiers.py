"""encrypted identifiers

National ID numbers and phone numbers, on `person` and `person_version`, are encrypted in place
with the keyring of `SIJILL_KEY_FILE` (created if missing), and the number's blind index is
added for exact search. The whole upgrade is one transaction on PostgreSQL: it encrypts every
row or none. Rows are read and written in batches so memory stays flat on a national registry.

The keyring and row-update logic it needs are a frozen copy (`_FrozenKeyring`,
`_update_rows`) of what `sijill.security.keys` did when this revision was written: the key
file's format and the token format of that day. Live code may change; this upgrade must not.
Only the key file's location is read from the settings.

Revision ID: 0004
Revises: 0003
"""

import binascii
import contextlib
import hmac
import io
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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


class _DecryptionError(Exception):
    pass


class _FrozenKeyring:
    """The key file (JSON: active key id, AES-256 keys by id, index, token and pseudonym keys,
    base64url without padding; mode 0600) and the tokens (`<key id>.<base64url(nonce +
    AES-GCM(value, associated "sijill:<field>:<key id>"))>`), as of revision 0004."""

    _KEY_ID = re.compile(r"[a-z0-9]{1,16}")
    _NONCE = 12

    def __init__(self, path: Path):
        if not path.exists():
            self._create(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        self.active = data["active"]
        self.keys = {kid: self._unb64(value) for kid, value in data["keys"].items()}
        self.index_key = self._unb64(data["index_key"])
        self.ciphers = {kid: AESGCM(key) for kid, key in self.keys.items()}

    @staticmethod
    def _unb64(text: str) -> bytes:
        data = text.encode("ascii")
        return binascii.a2b_base64(
            data.translate(bytes.maketrans(b"-_", b"+/")) + b"=" * (-len(data) % 4)
        )

    @classmethod
    def _create(cls, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = [base64_urlsafe(secrets.token_bytes(32)) for _ in range(4)]
        text = json.dumps(
            {
                "active": "k1",
                "keys": {"k1": fresh[0]},
                "index_key": fresh[1],
                "token_key": fresh[2],
                "pseudonym_key": fresh[3],
            },
            indent=2,
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, (text + "\n").encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    @property
    def key_ids(self) -> list[str]:
        return list(self.keys)

    def key_id_of(self, token: str) -> str | None:
        kid, dot, _ = token.partition(".")
        return kid if dot and self._KEY_ID.fullmatch(kid) else None

    def encrypt_many(self, field: str, values: Sequence[str | None]) -> list[str | None]:
        kid, out = self.active, []
        for value in values:
            if value is None:
                out.append(None)
                continue
            nonce = os.urandom(self._NONCE)
            sealed = self.ciphers[kid].encrypt(nonce, value.encode(), _associated(field, kid))
            out.append(f"{kid}.{base64_urlsafe(nonce + sealed)}")
        return out

    def decrypt(self, field: str, token: str) -> str:
        kid, dot, body = token.partition(".")
        cipher = self.ciphers.get(kid)
        if not dot or cipher is None:
            raise _DecryptionError(field)
        try:
            raw = self._unb64(body)
            plain = cipher.decrypt(raw[: self._NONCE], raw[self._NONCE :], _associated(field, kid))
        except (InvalidTag, ValueError, binascii.Error):
            raise _DecryptionError(field) from None
        return plain.decode("utf-8")

    def decrypt_many(self, field: str, tokens: Sequence[str | None]) -> list[str | None]:
        return [None if token is None else self.decrypt(field, token) for token in tokens]

    def blind_index_many(self, values: Sequence[str | None]) -> list[str | None]:
        """HMAC-SHA256 of "national_id\\0<number>" under the index key, first 16 bytes in hex."""
        return [
            None
            if value is None
            else hmac.digest(self.index_key, f"national_id\x00{value}".encode(), "sha256")[
                :16
            ].hex()
            for value in values
        ]


def base64_urlsafe(raw: bytes) -> str:
    text = binascii.b2a_base64(raw, newline=False).translate(bytes.maketrans(b"+/", b"-_"))
    return text.rstrip(b"=").decode()


def _associated(field: str, kid: str) -> bytes:
    return f"sijill:{field}:{kid}".encode()


def _keyring() -> _FrozenKeyring:
    from sijill.core.settings import Settings

    return _FrozenKeyring(Path(Settings().key_file))


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _update_rows(connection, table, keys, key_values, new: dict, old: dict) -> None:
    """Set `new` on the rows with `key_values` where the `old` values are still there."""
    names = [name for name, _ in keys]
    new_columns, old_columns = list(new), list(old)
    if connection.dialect.name != "postgresql":
        assignments = ", ".join(f"{column} = ?" for column in new_columns)
        conditions = " AND ".join(
            [f"{name} = ?" for name in names] + [f"{column} IS ?" for column in old_columns]
        )
        rows = [
            (*[new[c][i] for c in new_columns], *key, *[old[c][i] for c in old_columns])
            for i, key in enumerate(key_values)
        ]
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {conditions}", rows)
        finally:
            cursor.close()
        return
    # PostgreSQL: the batch is copied into a temporary table and applied in one UPDATE.
    staged = [f"k_{name} {kind}" for name, kind in keys]
    staged += [f"new_{c} text" for c in new_columns] + [f"old_{c} text" for c in old_columns]
    stage = f"sijill_update_{table}"
    columns = [f"k_{n}" for n in names] + [f"new_{c}" for c in new_columns]
    columns += [f"old_{c}" for c in old_columns]
    values = [new[c] for c in new_columns] + [old[c] for c in old_columns]
    buffer = io.StringIO()
    for i, key in enumerate(key_values):
        fields = [str(k) for k in key]
        fields += ["\\N" if v[i] is None else v[i].translate(_COPY_ESCAPES) for v in values]
        buffer.write("\t".join(fields) + "\n")
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {stage}")
        cursor.execute(f"CREATE TEMP TABLE {stage} ({', '.join(staged)}) ON COMMIT DROP")
        with cursor.copy(f"COPY {stage} ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(buffer.getvalue().encode("utf-8"))
        cursor.execute(f"ANALYZE {stage}")
        assignments = ", ".join(f"{c} = s.new_{c}" for c in new_columns)
        first = [key[0] for key in key_values]
        conditions = " AND ".join(
            [f"t.{names[0]} BETWEEN %s AND %s"]
            + [f"t.{n} = s.k_{n}" for n in names]
            + [f"t.{c} IS NOT DISTINCT FROM s.old_{c}" for c in old_columns]
        )
        cursor.execute(
            f"UPDATE {table} AS t SET {assignments} FROM {stage} s WHERE {conditions}",
            (min(first), max(first)),
        )


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
            _update_rows(bind, table, keys, key_values, new, old)


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
    known = set(keyring.key_ids)
    out = []
    for value in values:
        if value is not None and keyring.key_id_of(value) in known:
            # A clear value that merely looks like a token fails to decrypt and stays as it is.
            with contextlib.suppress(_DecryptionError):
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
