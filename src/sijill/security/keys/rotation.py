"""Key rotation: re-encrypt every stored identifier under the active key, in bulk.

`rotate` walks `person` and `person_version` in primary-key order, a batch at a time, and picks
only the rows holding a value under another key: the key id is the prefix of each ciphertext,
so `NOT LIKE 'k2.%'` finds them, and a rotation that is interrupted simply starts again where
work is left. Each batch is one transaction: fetch keys and ciphertexts, decrypt and encrypt in
Python with one cipher object per key, write back in one statement (PostgreSQL: `COPY` into a
temporary table, then `UPDATE ... FROM`; SQLite: `executemany`).

Reads work throughout: a row is always under one key or the other, and the keyring holds both.
The API keeps writing while a rotation runs, so the write-back changes a row only if it still
holds the values the batch read (compare and set); a row changed in between is left to a
further pass (or the next rotation), never overwritten with stale values.
"""

import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from sijill.core.db import make_engine
from sijill.security.keys import keyring as keys
from sijill.security.keys.keyring import KEY_ID, Keyring, KeyringError, current_keyring, remove_key
from sijill.security.keys.usage import forget_key_use, record_key_use_on

# (table, its primary key columns with their PostgreSQL types)
TABLES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("person", (("id", "bigint"),)),
    ("person_version", (("person_id", "bigint"), ("version", "integer"))),
)
ENCRYPTED = ("national_id", "phone")
BATCH_ROWS = 20_000
# Rows changed by the API between a batch's read and its write are retried; a few passes
# settle them unless servers keep writing under an old key (they switch within
# keys.REFRESH_SECONDS of `sijill keys add`).
_MAX_PASSES = 3

Progress = Callable[[int, int], None]


@dataclass
class RotationReport:
    active: str
    rows: dict[str, int] = field(default_factory=dict)  # rows re-encrypted, by table
    left: int = 0  # rows still under another key at the end (changed during the rotation)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def _engine(engine_or_url: Engine | str) -> tuple[Engine, bool]:
    if isinstance(engine_or_url, Engine):
        return engine_or_url, False
    return make_engine(engine_or_url), True


def _not_under(kid: str) -> str:
    """SQL: some identifier of the row is under a key other than `kid`."""
    return " OR ".join(
        f"({column} IS NOT NULL AND {column} NOT LIKE '{kid}.%')" for column in ENCRYPTED
    )


def _under(kid: str) -> str:
    return " OR ".join(f"{column} LIKE '{kid}.%'" for column in ENCRYPTED)


def count_pending(connection: Connection, kid: str) -> int:
    """Rows (of both tables) holding an identifier under a key other than `kid`."""
    return sum(
        connection.execute(text(f"SELECT count(*) FROM {table} WHERE {_not_under(kid)}")).scalar()
        for table, _ in TABLES
    )


def usage(engine_or_url: Engine | str) -> dict[str, int]:
    """How many stored identifiers each key id encrypts (both tables, both columns)."""
    engine, owned = _engine(engine_or_url)
    try:
        with engine.connect() as connection:
            prefix = (
                "split_part({c}, '.', 1)"
                if engine.dialect.name == "postgresql"
                else "substr({c}, 1, instr({c}, '.') - 1)"
            )
            counts: dict[str, int] = {}
            for table, _ in TABLES:
                for column in ENCRYPTED:
                    kid = prefix.format(c=column)
                    rows = connection.execute(
                        text(
                            f"SELECT {kid}, count(*) FROM {table} WHERE {column} IS NOT NULL "
                            f"GROUP BY {kid}"
                        )
                    )
                    for key_id, count in rows:
                        counts[key_id] = counts.get(key_id, 0) + count
            return counts
    finally:
        if owned:
            engine.dispose()


def key_in_use(connection: Connection, kid: str) -> bool:
    return any(
        connection.execute(text(f"SELECT 1 FROM {table} WHERE {_under(kid)} LIMIT 1")).first()
        for table, _ in TABLES
    )


def retire_key(engine_or_url: Engine | str, path: Path | str, kid: str) -> None:
    """Remove key `kid` from the key file, refused while any stored value still uses it.

    Database backups taken before this still hold values under `kid`: keep a copy of the key
    file with each backup, or such a backup can no longer be read.
    """
    if not KEY_ID.fullmatch(kid):
        # Checked before it goes into SQL: key ids are letters and digits only.
        raise KeyringError(f"{kid!r} is not a key id (see `sijill keys show`)")
    # A server notices a new active key within keys.REFRESH_SECONDS; until then it may still
    # write under the old one, so the database is only checked once that time has passed.
    settle = 2 * keys.REFRESH_SECONDS
    age = time.time() - os.stat(path).st_mtime
    if age < settle:
        raise KeyringError(
            f"the key file changed {age:.0f} s ago and running servers may still encrypt "
            f"under {kid} for a while: retire it in {settle - age:.0f} s"
        )
    engine, owned = _engine(engine_or_url)
    try:
        with engine.begin() as connection:
            if key_in_use(connection, kid):
                raise KeyringError(
                    f"key {kid} still encrypts stored identifiers: run `sijill keys rotate` "
                    "first, then retire it"
                )
            forget_key_use(connection, kid)
    finally:
        if owned:
            engine.dispose()
    remove_key(path, kid)


def rotate(
    engine_or_url: Engine | str,
    keyring: Keyring | None = None,
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
) -> RotationReport:
    """Re-encrypt every identifier that is not under the active key; see the module's doc."""
    engine, owned = _engine(engine_or_url)
    keyring = keyring or current_keyring()
    keyring.reload()  # the key file as it is now, not as this process first read it
    kid = keyring.active
    report = RotationReport(active=kid)
    started = time.perf_counter()
    try:
        with engine.begin() as connection:
            # Before any value is written under it: servers and imports check this table.
            record_key_use_on(connection, kid)
            total = count_pending(connection, kid)
        done = 0
        if progress:
            progress(done, total)
        for _ in range(_MAX_PASSES):
            for table, keys in TABLES:
                for rows in _rotate_table(engine, keyring, table, keys, kid, batch_rows):
                    report.rows[table] = report.rows.get(table, 0) + rows
                    done += rows
                    if progress:
                        progress(min(done, total), total)
            with engine.connect() as connection:
                report.left = count_pending(connection, kid)
            if not report.left:
                break
    finally:
        report.seconds = time.perf_counter() - started
        if owned:
            engine.dispose()
    return report


def _rotate_table(engine, keyring, table, keys, kid, batch_rows):
    """Batches of one table, each committed; yields the number of rows each re-encrypted."""
    names = [name for name, _ in keys]
    width = len(names)
    after: tuple | None = None
    while True:
        position = ""
        params: dict = {"n": batch_rows}
        if after is not None:
            # Row-value comparison: keyset pagination over a composite primary key.
            bounds = ", ".join(f":a{i}" for i in range(width))
            position = f"({', '.join(names)}) > ({bounds}) AND "
            params.update({f"a{i}": value for i, value in enumerate(after)})
        with engine.begin() as connection:
            rows = connection.execute(
                text(
                    f"SELECT {', '.join(names)}, {', '.join(ENCRYPTED)} FROM {table} "
                    f"WHERE {position}({_not_under(kid)}) ORDER BY {', '.join(names)} LIMIT :n"
                ),
                params,
            ).all()
            if not rows:
                return
            after = tuple(rows[-1][:width])
            old = {column: [row[width + i] for row in rows] for i, column in enumerate(ENCRYPTED)}
            new = {column: keyring.reencrypt_many(column, old[column]) for column in ENCRYPTED}
            key_values = [tuple(row[:width]) for row in rows]
            updated = update_rows(connection, table, keys, key_values, new, old)
        yield updated


def update_rows(
    connection: Connection,
    table: str,
    keys: Sequence[tuple[str, str]],
    key_values: Sequence[tuple],
    new: dict[str, Sequence[str | None]],
    old: dict[str, Sequence[str | None]],
) -> int:
    """Set `new` values on the rows with `key_values`, only where every column in `old` still
    holds the old value; the number of rows changed. One statement on either database.

    Used by rotation and by the migration that first encrypted the identifiers.
    """
    if not key_values:
        return 0
    names = [name for name, _ in keys]
    new_columns, old_columns = list(new), list(old)
    if connection.dialect.name == "postgresql":
        return _update_postgresql(
            connection, table, keys, key_values, new_columns, new, old_columns, old
        )
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
        return cursor.rowcount
    finally:
        cursor.close()


def _update_postgresql(connection, table, keys, key_values, new_columns, new, old_columns, old):
    names = [name for name, _ in keys]
    staged = [f"k_{name} {kind}" for name, kind in keys]
    staged += [f"new_{c} text" for c in new_columns] + [f"old_{c} text" for c in old_columns]
    stage = f"sijill_update_{table}"
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor:
        # Dropped and made again each time: the migration runs many batches in one transaction.
        cursor.execute(f"DROP TABLE IF EXISTS {stage}")
        cursor.execute(f"CREATE TEMP TABLE {stage} ({', '.join(staged)}) ON COMMIT DROP")
        columns = [f"k_{n}" for n in names] + [f"new_{c}" for c in new_columns]
        columns += [f"old_{c}" for c in old_columns]
        values = [new[c] for c in new_columns] + [old[c] for c in old_columns]
        with cursor.copy(f"COPY {stage} ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(_copy_text(key_values, values))
        cursor.execute(f"ANALYZE {stage}")
        assignments = ", ".join(f"{c} = s.new_{c}" for c in new_columns)
        first = [key[0] for key in key_values]
        # The batch's range of the leading key column: lets the planner probe the primary key
        # for these rows instead of scanning the whole table once per batch.
        conditions = " AND ".join(
            [f"t.{names[0]} BETWEEN %s AND %s"]
            + [f"t.{n} = s.k_{n}" for n in names]
            + [f"t.{c} IS NOT DISTINCT FROM s.old_{c}" for c in old_columns]
        )
        cursor.execute(
            f"UPDATE {table} AS t SET {assignments} FROM {stage} s WHERE {conditions}",
            (min(first), max(first)),
        )
        return cursor.rowcount


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(key_values: Sequence[tuple], columns: list[Sequence[str | None]]) -> bytes:
    """Rows in COPY's text format: tab-separated, `\\N` for NULL, specials escaped."""
    buffer = io.StringIO()
    write = buffer.write
    for i, key in enumerate(key_values):
        fields = [str(k) for k in key]
        for column in columns:
            value = column[i]
            fields.append("\\N" if value is None else value.translate(_COPY_ESCAPES))
        write("\t".join(fields))
        write("\n")
    return buffer.getvalue().encode("utf-8")
