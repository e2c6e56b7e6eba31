"""Reading the audit chain in chunks of records, in seq order, from one read-only snapshot.

PostgreSQL: COPY as CSV parsed by Arrow, the next chunk fetched while the caller checks this
one. SQLite: a cursor. Memory is bounded by the chunk size whatever the chain's length.
"""

import io
import queue
import threading
from collections.abc import Iterator
from contextlib import suppress

import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Engine

from sijill.security.audit.models import HASHED_FIELDS

COLUMNS = ("seq", *HASHED_FIELDS, "hash")
SCHEMA = pa.schema([("seq", pa.int64())] + [(name, pa.string()) for name in COLUMNS[1:]])
# Reading starts below any seq, so a record forged before record 1 is read and reported too.
_BEFORE_ALL = -(2**63 - 1)


def open_reader(engine: Engine) -> "ChainReader":
    if engine.dialect.name == "postgresql":
        return _PostgresReader(engine)
    return _SqliteReader(engine)


class ChainReader:
    """One read-only snapshot of the chain."""

    def __enter__(self):
        return self

    def head(self) -> tuple[int, str] | None:
        return self._one("SELECT seq, hash FROM audit_head WHERE id = 1")

    def max_seq(self) -> int:
        return self._one("SELECT max(seq) FROM audit_record")[0] or 0

    def hash_at(self, seq: int) -> str | None:
        row = self._one(f"SELECT hash FROM audit_record WHERE seq = {int(seq)}")
        return row[0] if row else None

    def seq_with_hash(self, digest: str, excluding: int) -> int | None:
        if len(digest) != 64 or set(digest) - set("0123456789abcdef"):
            return None  # keeps the literal below safe; a malformed hash matches nothing
        row = self._one(
            f"SELECT min(seq) FROM audit_record WHERE hash = '{digest}' AND seq <> {int(excluding)}"
        )
        return row[0] if row else None

    def repairs(self) -> list[tuple[int, int, str]]:
        """(first_seq, last_seq, resume_hash) of each repaired break, in seq order."""
        return self._all(
            "SELECT first_seq, last_seq, resume_hash FROM audit_repair ORDER BY first_seq, id"
        )

    def quarantined(self) -> int:
        return self._one("SELECT count(*) FROM audit_quarantine")[0]

    def duplicated(self, limit: int = 1_000) -> list[int]:
        """Seqs held by more than one record: only possible once the primary key is dropped,
        so asked only then (it reads the whole table)."""
        if self._seq_is_unique():
            return []
        rows = self._all(
            "SELECT seq FROM audit_record GROUP BY seq HAVING count(*) > 1 "
            f"ORDER BY seq LIMIT {int(limit)}"
        )
        return [row[0] for row in rows]

    def _seq_is_unique(self) -> bool:
        return True  # SQLite cannot drop a primary key

    def stop(self) -> None:
        """Stop reading ahead (before diagnosing on the same connection)."""

    def _select(self, after: int, limit: int) -> str:
        return (
            f"SELECT {', '.join(COLUMNS)} FROM audit_record WHERE seq > {int(after)} "
            f"ORDER BY seq LIMIT {int(limit)}"
        )


class _SqliteReader(ChainReader):
    def __init__(self, engine: Engine) -> None:
        self._pooled = engine.raw_connection()
        self._db = self._pooled.driver_connection
        self._isolation = self._db.isolation_level
        self._db.isolation_level = None  # explicit BEGIN: one snapshot for the whole walk
        self._db.execute("BEGIN")

    def __exit__(self, *_exc) -> None:
        self._db.execute("ROLLBACK")
        self._db.isolation_level = self._isolation
        self._pooled.close()

    def _one(self, sql: str):
        return self._db.execute(sql).fetchone()

    def _all(self, sql: str) -> list:
        return self._db.execute(sql).fetchall()

    def chunks(self, size: int) -> Iterator[pa.Table]:
        after = _BEFORE_ALL
        while True:
            rows = self._db.execute(self._select(after, size)).fetchall()
            if not rows:
                return
            chunk = pa.Table.from_arrays(
                [
                    pa.array(column, type=field.type)
                    for column, field in zip(zip(*rows, strict=True), SCHEMA, strict=True)
                ],
                schema=SCHEMA,
            )
            after = rows[-1][0]
            yield chunk
            if len(rows) < size:
                return


class _PostgresReader(ChainReader):
    """COPY as CSV parsed by Arrow; the next chunk is fetched while this one is checked."""

    _csv_read = pacsv.ReadOptions(column_names=list(COLUMNS))
    _csv_parse = pacsv.ParseOptions(newlines_in_values=True)
    # Only an unquoted empty field is NULL (PostgreSQL writes "" for an empty string), and no
    # other spelling ("NA", "null") is ever taken for NULL.
    _csv_convert = pacsv.ConvertOptions(
        column_types=SCHEMA,
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )

    def __init__(self, engine: Engine) -> None:
        self._pooled = engine.raw_connection()
        self._db = self._pooled.driver_connection
        self._db.rollback()
        self._saved = (self._db.isolation_level, self._db.read_only)
        import psycopg

        self._db.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        self._db.read_only = True
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def __exit__(self, *_exc) -> None:
        self.stop()
        self._db.rollback()
        self._db.isolation_level, self._db.read_only = self._saved
        self._pooled.close()

    def _one(self, sql: str):
        with self._lock:
            return self._db.execute(sql).fetchone()

    def _all(self, sql: str) -> list:
        with self._lock:
            return self._db.execute(sql).fetchall()

    def _seq_is_unique(self) -> bool:
        return self._one(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = 'audit_record'::regclass AND i.indisunique "
            "AND i.indnkeyatts = 1 AND a.attname = 'seq')"
        )[0]

    def _fetch(self, after: int, size: int) -> pa.Table:
        buffer = io.BytesIO()
        sql = f"COPY ({self._select(after, size)}) TO STDOUT (FORMAT csv)"
        with self._lock, self._db.cursor() as cursor, cursor.copy(sql) as copy:
            for block in copy:
                buffer.write(block)
        if buffer.tell() == 0:
            return SCHEMA.empty_table()
        return pacsv.read_csv(
            pa.py_buffer(buffer.getbuffer()),
            read_options=self._csv_read,
            parse_options=self._csv_parse,
            convert_options=self._csv_convert,
        )

    def chunks(self, size: int) -> Iterator[pa.Table]:
        ahead: queue.Queue = queue.Queue(maxsize=1)

        def fetch_all() -> None:
            after = _BEFORE_ALL
            try:
                while not self._stopping.is_set():
                    chunk = self._fetch(after, size)
                    ahead.put(chunk)
                    if chunk.num_rows < size:
                        break
                    after = chunk["seq"][-1].as_py()
            except BaseException as error:  # handed to the consumer, raised there
                ahead.put(error)
            ahead.put(None)

        self._reader = threading.Thread(target=fetch_all, name="audit-verify-read", daemon=True)
        self._reader.start()
        try:
            while (item := ahead.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                if item.num_rows:
                    yield item
        finally:
            self.stop()
            while self._reader.is_alive():  # let a blocked put() finish
                with suppress(queue.Empty):
                    ahead.get(timeout=0.05)
            self._reader.join()

    def stop(self) -> None:
        self._stopping.set()
