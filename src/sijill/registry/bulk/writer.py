"""Writing validated batches: one transaction per batch, the same SQL on SQLite and PostgreSQL.

(An import into an empty PostgreSQL registry is instead one transaction that builds the indexes
at the end: see `initial_load`.)

A batch is loaded into temporary staging tables (PostgreSQL `COPY`, SQLite `executemany`), then
moved into the registry with `INSERT ... SELECT ... ON CONFLICT DO NOTHING`, so the database's
unique keys make re-imports idempotent (on the source's record key) even when two imports race.
A fresh random registry ID that happens to collide with an existing one is detected and drawn
again before the batch commits.
"""

import datetime as dt
import io
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import polars as pl
from sqlalchemy import Engine

from sijill.core.ids import new_ids
from sijill.registry import fields, identifiers
from sijill.registry.bulk import initial_load
from sijill.registry.reviews.flags import (
    flag_shared_national_ids_raw,
    index_holders,
    insert_pairs_raw,
    pair_holders,
)
from sijill.registry.reviews.service import ACTION_RAISE as FLAG_ACTION
from sijill.registry.reviews.service import RECORD_TYPE as FLAG_RECORD
from sijill.security.audit.service import AuditEntry, append_on_cursor
from sijill.security.keys.usage import KEY_IN_USE_INSERT

# The columns a batch writes: the keys, the columns of the fields the exchange format brings
# (registry.fields), the derived ones (the search form of names; the blind index is one of the
# document number's columns) and the version's bookkeeping.
_BOOKKEEPING = ("version", "valid_from", "recorded_by")
HOUSEHOLD_COLUMNS = (
    "id",
    "source_key",
    "area_id",
    *(column.name for column in fields.HOUSEHOLD.columns(exchange=True)),
    *_BOOKKEEPING,
)
PERSON_COLUMNS = (
    "id",
    "source_key",
    *(column.name for column in fields.PERSON.columns(exchange=True)),
    "search_name",
    *_BOOKKEEPING,
)
STAGE_PERSON_EXTRA = ("household_source_key", "relationship", "start_date")
MEMBERSHIP_COLUMNS = ("household_id", "person_id", "relationship", "start_date", "recorded_at")
_MAX_ID_DRAWS = 20


@dataclass
class BatchCounts:
    households_added: int = 0
    households_present: int = 0
    persons_added: int = 0
    persons_present: int = 0
    # Review flags raised for persons given a national ID another person holds (IDs only).
    flag_ids: list[int] = field(default_factory=list)

    def __iadd__(self, other: "BatchCounts") -> "BatchCounts":
        self.households_added += other.households_added
        self.households_present += other.households_present
        self.persons_added += other.persons_added
        self.persons_present += other.persons_present
        self.flag_ids += other.flag_ids
        return self


@dataclass
class Inserted:
    rows: pl.DataFrame  # source_key and final id of every staged row (and person extras)
    added: set[int]  # ids of the rows this batch added
    present: dict[str, int]  # source key → id of rows an earlier import had added


def _cols(names) -> str:
    return ", ".join(names)


class BatchWriter:
    """Owns one raw DBAPI connection; `write` commits a whole batch or nothing."""

    def __init__(self, engine: Engine, initial_load_allowed: bool = True):
        self.dialect = engine.dialect.name
        self.connection = engine.raw_connection()
        self._integrity_error = engine.dialect.dbapi.IntegrityError
        self._staged = False
        # A fresh import conflicts with nothing, so its rows can go straight into the registry;
        # after the first conflict (a re-import) every batch takes the staging path.
        self._direct = True
        self.initial: initial_load.InitialLoad | None = None
        self._sender: _Sender | None = None
        self._key_ids: set[str] = set()  # of an initial load's batches
        self._audit: list[AuditEntry] = []  # an initial load's batch records, for its commit
        self._stamp: tuple[str, dt.datetime] | None = None  # who loads, and when (flags)
        if initial_load_allowed and self.dialect == "postgresql":
            self.initial = initial_load.begin(self.connection)
            if self.initial is not None:
                self._sender = _Sender(self.connection, self._copy)

    @property
    def deferred(self) -> bool:
        """True when batches are held in one transaction until `finish`."""
        return self.initial is not None

    def finish(self) -> list[int]:
        """Commit an initial load (indexes first); batches are otherwise committed already.
        The IDs of the review flags the load raised (none for batches committed already)."""
        if self.initial is None:
            return []
        # Paired while the sender copies the last batches in.
        pairs = pair_holders(self.initial.number_holders())
        self._sender.drain()
        cursor = self.connection.cursor()
        flag_ids: list[int] = []
        try:
            for kid in sorted(self._key_ids):
                self._execute(cursor, KEY_IN_USE_INSERT, (kid,))
            # Once, over the whole load, before its keys are built again: the registry was
            # empty, so every pair sharing a number is one this load brought, and the flags'
            # foreign keys are then checked in one pass with the others, not row by row.
            if self._stamp is not None:
                flag_ids = insert_pairs_raw(
                    cursor,
                    pairs,
                    source="import",
                    actor=self._stamp[0],
                    now=self._stamp[1],
                )
            initial_load.finish(cursor, self.initial)
            if flag_ids and self._audit:
                # One record for the pairs the load flagged, committed with them (each flag
                # names its pair, source and time): not one per flag.
                self._audit.append(
                    replace(
                        self._audit[-1],
                        action=FLAG_ACTION,
                        record_type=FLAG_RECORD,
                        record_id=f"{len(flag_ids)} flags {flag_ids[0]}-{flag_ids[-1]}",
                    )
                )
            # Last, just before the commit: the chain's head is held from here to the commit.
            append_on_cursor(cursor, self.dialect, self._audit)
            self.connection.commit()
        except BaseException:
            self.connection.rollback()
            raise
        finally:
            cursor.close()
        self.initial = None
        return flag_ids

    def close(self) -> None:
        if self._sender is not None:
            self._sender.stop()
        # Closing without `finish` rolls an initial load back whole.
        self.connection.close()

    def _execute(self, cursor, sql: str, params=()):
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        cursor.execute(sql, params)
        return cursor

    def _create_staging(self, cursor) -> None:
        temp = "CREATE TEMP TABLE"
        empty = "WHERE 1 = 0"
        # Pooled connections keep their temporary tables; start from the current schema.
        self._execute(cursor, "DROP TABLE IF EXISTS stage_household")
        self._execute(cursor, "DROP TABLE IF EXISTS stage_person")
        self._execute(cursor, f"{temp} stage_household AS SELECT * FROM household {empty}")
        self._execute(
            cursor,
            f"{temp} stage_person AS SELECT p.*, h.source_key AS household_source_key, "
            "m.relationship, m.start_date FROM person p, household h, membership m " + empty,
        )
        self.connection.commit()
        self._staged = True

    def write(
        self,
        households: pl.DataFrame,
        persons: pl.DataFrame,
        audit: Callable[[BatchCounts], AuditEntry] | None = None,
    ) -> BatchCounts:
        """Write a batch; `audit` makes its audit record from its counts, committed with it
        (in an initial load, with the load's single commit)."""
        cursor = self.connection.cursor()
        if self.initial is not None:
            try:
                counts = self._write_initial(cursor, self.initial, households, persons)
                if audit is not None:
                    self._audit.append(audit(counts))
                return counts
            finally:
                cursor.close()
        if not self._staged:
            self._create_staging(cursor)
        try:
            counts = self._write(cursor, households, persons)
            if audit is not None:
                append_on_cursor(cursor, self.dialect, [audit(counts)])
            self.connection.commit()
            return counts
        except BaseException:
            self.connection.rollback()
            raise
        finally:
            cursor.close()

    def _write(self, cursor, households: pl.DataFrame, persons: pl.DataFrame) -> BatchCounts:
        households = households.with_columns(
            pl.Series("id", new_ids("household", households.height))
        )
        persons = identifiers.write_batch(
            persons.with_columns(pl.Series("id", new_ids("person", persons.height)))
        )
        for kid in identifiers.batch_key_ids(persons):
            self._execute(cursor, KEY_IN_USE_INSERT, (kid,))
        if self._direct:
            counts = self._write_direct(cursor, households, persons)
            if counts is not None:
                counts.flag_ids = self._flag(cursor, persons, persons.select("source_key", "id"))
                return counts
            self._direct = False
        counts, added = self._write_staged(cursor, households, persons)
        counts.flag_ids = self._flag(cursor, persons, added)
        return counts

    def _flag(self, cursor, persons: pl.DataFrame, added: pl.DataFrame) -> list[int]:
        """Flag for review the batch's new persons whose national ID another person holds,
        already registered or in this batch: one set query for the batch."""
        numbered = persons.filter(
            (pl.col("national_id_type") == "national_id") & pl.col("national_id").is_not_null()
        )
        if numbered.height == 0:
            return []
        # By record key: a row whose random ID collided was given another.
        ids = added.join(numbered.select("source_key"), on="source_key")["id"].to_list()
        first = persons.row(0, named=True)
        return flag_shared_national_ids_raw(
            cursor,
            self.dialect,
            ids,
            source="import",
            actor=first["recorded_by"],
            now=first["valid_from"],
        )

    def _write_initial(
        self, cursor, load: initial_load.InitialLoad, households, persons
    ) -> BatchCounts:
        """Prepare the batch's rows and hand them to the sender thread (no commit); a record key
        an earlier batch of this file already brought is treated as the staging path treats a
        row already in the registry."""
        households, household_hashes, present_homes = self._new_rows(
            cursor, load, "household", households
        )
        persons, person_hashes, present_persons = self._new_rows(cursor, load, "person", persons)
        households = households.with_columns(
            pl.Series("id", load.fresh_ids("household", households.height, new_ids))
        )
        persons = identifiers.write_batch(
            persons.with_columns(pl.Series("id", load.fresh_ids("person", persons.height, new_ids)))
        )
        # Noted in `finish`, in the load's transaction, once the sender has let go of it.
        self._key_ids.update(identifiers.batch_key_ids(persons))
        if persons.height and self._stamp is None:
            self._stamp = (persons["recorded_by"][0], persons["valid_from"][0])
        homes = pl.concat(
            [
                households.select("source_key", "id"),
                pl.DataFrame(
                    {"source_key": list(present_homes), "id": list(present_homes.values())},
                    schema={"source_key": pl.String, "id": pl.Int64},
                ),
            ]
        ).select(
            pl.col("source_key").alias("household_source_key"),
            pl.col("id").alias("household_id"),
        )
        memberships = _memberships(persons, homes)
        self._sender.submit(
            [
                ("household", HOUSEHOLD_COLUMNS, _csv(households, HOUSEHOLD_COLUMNS)),
                ("person", PERSON_COLUMNS, _csv(persons, PERSON_COLUMNS)),
                ("membership", MEMBERSHIP_COLUMNS, _csv(memberships, MEMBERSHIP_COLUMNS)),
            ]
        )
        load.holders.append(index_holders(persons, memberships))
        load.keys["household"].add(household_hashes)
        load.keys["person"].add(person_hashes)
        return BatchCounts(
            households_added=households.height,
            households_present=len(present_homes),
            persons_added=persons.height,
            persons_present=len(present_persons),
        )

    def _new_rows(self, cursor, load, table: str, frame: pl.DataFrame):
        """(the rows of `frame` no earlier batch loaded, their record keys' hashes, record key →
        registry ID of the rows an earlier batch did load)."""
        hashes, maybe = load.maybe_seen(table, frame["source_key"])
        if not maybe.any():
            return frame, hashes, {}
        candidates = frame.filter(pl.Series(maybe))["source_key"].to_list()
        # The earlier batches must be in before looking; and with no index on source_key yet,
        # this is a scan, paid only by a file that repeats its keys.
        self._sender.drain()
        cursor.execute(
            f"SELECT source_key, id FROM {table} WHERE source_key = ANY(%s)", (candidates,)
        )
        present = dict(cursor.fetchall())
        new = ~frame["source_key"].is_in(list(present))
        return frame.filter(new), hashes[new.to_numpy()], present

    def _write_direct(self, cursor, households, persons) -> BatchCounts | None:
        """Load the batch straight into the registry; None (and nothing written) on a conflict."""
        self._execute(cursor, "SAVEPOINT direct_batch")
        try:
            self._load(cursor, "household", households, HOUSEHOLD_COLUMNS)
            self._load(cursor, "person", persons, PERSON_COLUMNS)
            homes = households.select(
                pl.col("source_key").alias("household_source_key"),
                pl.col("id").alias("household_id"),
            )
            self._load(cursor, "membership", _memberships(persons, homes), MEMBERSHIP_COLUMNS)
        except self._integrity_error:
            self._execute(cursor, "ROLLBACK TO SAVEPOINT direct_batch")
            return None
        self._execute(cursor, "RELEASE SAVEPOINT direct_batch")
        return BatchCounts(households_added=households.height, persons_added=persons.height)

    def _write_staged(self, cursor, households, persons) -> tuple[BatchCounts, pl.DataFrame]:
        """The batch's counts, and the record key and ID of each person it added."""
        self._execute(cursor, "DELETE FROM stage_household")
        self._execute(cursor, "DELETE FROM stage_person")
        self._load(cursor, "stage_household", households, HOUSEHOLD_COLUMNS)
        self._load(cursor, "stage_person", persons, PERSON_COLUMNS + STAGE_PERSON_EXTRA)
        new_households = self._insert_new(cursor, "household", HOUSEHOLD_COLUMNS, households)
        new_persons = self._insert_new(cursor, "person", PERSON_COLUMNS, persons)
        # Every staged household now has a registry row: the one just added or the one an
        # earlier import made. New persons join theirs; persons already registered keep theirs.
        household_ids = dict(
            zip(new_households.rows["source_key"], new_households.rows["id"], strict=True)
        )
        household_ids.update(new_households.present)
        memberships = new_persons.rows.filter(pl.col("id").is_in(new_persons.added)).select(
            pl.col("household_source_key")
            .replace_strict(household_ids, return_dtype=pl.Int64)
            .alias("household_id"),
            pl.col("id").alias("person_id"),
            pl.col("relationship"),
            pl.col("start_date"),
            pl.col("valid_from").alias("recorded_at"),
        )
        self._load(cursor, "membership", memberships, MEMBERSHIP_COLUMNS)
        counts = BatchCounts(
            households_added=len(new_households.added),
            households_present=len(new_households.present),
            persons_added=len(new_persons.added),
            persons_present=len(new_persons.present),
        )
        added = new_persons.rows.filter(pl.col("id").is_in(list(new_persons.added)))
        return counts, added.select("source_key", "id")

    def _insert_new(self, cursor, table: str, columns, staged: pl.DataFrame) -> "Inserted":
        """Insert the staged rows whose source key is new.

        The common case costs one statement: every row goes in and RETURNING says so. Only
        when some did not (already imported, or a fresh random ID that collided) is the
        registry asked which, and the colliding rows are drawn new IDs and tried again.
        """
        stage = f"stage_{table}"
        kind = "household" if table == "household" else "person"
        added: set[int] = set()
        present: dict[str, int] = {}
        redrawn: dict[str, int] = {}
        for _ in range(_MAX_ID_DRAWS):
            returned = self._execute(
                cursor,
                f"INSERT INTO {table} ({_cols(columns)}) SELECT {_cols(columns)} FROM {stage} "
                "WHERE 1 = 1 ON CONFLICT DO NOTHING RETURNING id",
            ).fetchall()
            added.update(row[0] for row in returned)
            if len(added) + len(present) == staged.height:
                break
            outcome = self._execute(
                cursor,
                f"SELECT s.source_key, t.id FROM {stage} s LEFT JOIN {table} t "
                "ON t.source_key = s.source_key WHERE t.id IS NULL OR t.id <> s.id",
            ).fetchall()
            present.update((key, found) for key, found in outcome if found is not None)
            lost = [key for key, found in outcome if found is None]
            if not lost:
                break
            for key, new_id in zip(lost, new_ids(kind, len(lost)).tolist(), strict=True):
                redrawn[key] = new_id
                self._execute(
                    cursor, f"UPDATE {stage} SET id = ? WHERE source_key = ?", (new_id, key)
                )
        else:
            raise RuntimeError(f"could not draw free registry IDs for {table} rows")
        rows = staged.select(
            "source_key",
            "id",
            *[c for c in staged.columns if c in STAGE_PERSON_EXTRA or c == "valid_from"],
        )
        if redrawn:
            rows = rows.with_columns(
                pl.col("source_key").replace_strict(redrawn, default=pl.col("id")).alias("id")
            )
        return Inserted(rows=rows, added=added, present=present)

    def _load(self, cursor, table: str, frame: pl.DataFrame, columns) -> None:
        if self.dialect == "postgresql":
            self._copy(cursor, table, columns, _csv(frame, columns))
        else:
            placeholders = ", ".join("?" for _ in columns)
            cursor.executemany(
                f"INSERT INTO {table} ({_cols(columns)}) VALUES ({placeholders})",
                _sqlite_rows(frame.select(list(columns))),
            )

    def _copy(self, cursor, table: str, columns, data: bytes) -> None:
        options = "FORMAT csv, FREEZE" if self.initial is not None else "FORMAT csv"
        with cursor.copy(f"COPY {table} ({_cols(columns)}) FROM STDIN ({options})") as copy:
            copy.write(data)


class _Sender:
    """Copies prepared batches into the database on a thread of its own, in order, so that the
    server works on one batch while Python prepares the next."""

    def __init__(self, connection, copy):
        self._connection = connection
        self._copy = copy
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            tables = self._queue.get()
            try:
                if tables is None:
                    return
                if self._error is None:  # after a failure, drain without writing
                    cursor = self._connection.cursor()
                    for table, columns, data in tables:
                        self._copy(cursor, table, columns, data)
            except BaseException as error:  # handed to the writer's thread
                self._error = error
            finally:
                self._queue.task_done()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, tables: list[tuple[str, tuple, bytes]]) -> None:
        self._raise_if_failed()
        self._queue.put(tables)

    def drain(self) -> None:
        """Wait until every submitted batch is in (or one failed)."""
        self._queue.join()
        self._raise_if_failed()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()


def _csv(frame: pl.DataFrame, columns) -> bytes:
    # Polars writes NULL as an empty field and an empty string as "", as COPY reads them.
    buffer = io.BytesIO()
    frame.select(list(columns)).write_csv(buffer, include_header=False, quote_style="necessary")
    return buffer.getvalue()


def _memberships(persons: pl.DataFrame, homes: pl.DataFrame) -> pl.DataFrame:
    """Each person's membership of their household (`homes`: household source key → id)."""
    return persons.join(homes, on="household_source_key", how="left").select(
        "household_id",
        pl.col("id").alias("person_id"),
        "relationship",
        "start_date",
        pl.col("valid_from").alias("recorded_at"),
    )


def _sqlite_rows(frame: pl.DataFrame):
    # sqlite3 stores dates and timestamps as ISO text, which is what SQLAlchemy reads back.
    # Timestamps are written the way SQLAlchemy's SQLite dialect writes them (naive UTC).
    converted = frame.with_columns(
        [pl.col(n).cast(pl.String) for n, t in frame.schema.items() if t == pl.Date]
        + [
            pl.col(n).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S.%6f")
            for n, t in frame.schema.items()
            if isinstance(t, pl.Datetime)
        ]
    )
    return converted.iter_rows()


def stamp(frame: pl.DataFrame, now: dt.datetime, actor: str) -> pl.DataFrame:
    return frame.with_columns(
        pl.lit(1).alias("version"),
        pl.lit(now).alias("valid_from"),
        pl.lit(actor).alias("recorded_by"),
    )


__all__ = ["BatchCounts", "BatchWriter", "stamp"]
