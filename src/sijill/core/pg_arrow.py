"""Query results as Arrow straight out of PostgreSQL, several side by side in one snapshot.

ADBC's PostgreSQL driver reads a query's rows by binary COPY and decodes them in C++ into
Arrow, without holding Python's lock: several reads can run at once, each on its own
connection and so on its own core of the database server, where psycopg's COPY hands over
each row as a Python object under the lock (and CSV had to be parsed back). Decoding is not
free: about as much CPU on the client as formatting the rows costs the server (measured on
4.6 million persons). All the reads see the registry at the same instant, by importing the
snapshot one coordinating transaction exports (`pg_export_snapshot`, as `pg_dump --jobs`
does), so a household read in one and its members read in another cannot disagree.
"""

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine

from sijill.core.pg_copy import READ_WORK_MEM

if TYPE_CHECKING:
    import adbc_driver_postgresql.dbapi as adbc

T = TypeVar("T")


def _uri(engine: Engine) -> str:
    """The engine's URL as libpq takes it (the same server, database, user and options)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def shared_snapshot(engine: Engine) -> Iterator[str]:
    """A snapshot of the database that reads opened within the block can share; the
    transaction that exported it stays open (doing nothing) until the block ends."""
    connection = engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            yield cursor.fetchone()[0]
    finally:
        connection.rollback()
        connection.close()


@contextlib.contextmanager
def _reading(engine: Engine, snapshot: str | None) -> Iterator["adbc.Cursor"]:
    """A cursor in a read-only transaction (in `snapshot` when given), rolled back after."""
    # Imported when a bulk read starts: the driver brings pyarrow.dataset and pandas with it
    # (about half a second), which every other command of the process would pay for.
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(_uri(engine)) as connection, connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if snapshot is not None:
            # The snapshot's name comes from pg_export_snapshot above, never from a user.
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        cursor.execute(f"SET LOCAL work_mem = '{READ_WORK_MEM}'")
        try:
            yield cursor
        finally:
            connection.rollback()


def read_table(engine: Engine, query: str, snapshot: str | None = None) -> pa.Table:
    """All of a query's rows, as Arrow. `query` is trusted SQL (no user input)."""
    with _reading(engine, snapshot) as cursor:
        cursor.execute(query)
        return cursor.fetch_arrow_table()


def spool_table(engine: Engine, query: str, target: Path, snapshot: str | None = None) -> Path:
    """A query's rows into the Parquet file `target` a record batch at a time, never all in
    memory. `query` is trusted SQL (no user input)."""
    with _reading(engine, snapshot) as cursor:
        cursor.execute(query)
        reader = cursor.fetch_record_batch()
        with pq.ParquetWriter(target, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
    return target


def _parts_together(
    engine: Engine,
    queries: dict[str, list[str]],
    streams: int,
    read: Callable[[str, int, str, str], T],
) -> dict[str, list[T]]:
    """`read(name, part number, query, snapshot)` for each part of each named read, at most
    `streams` at a time, all in one snapshot of the database; the results by name, in order."""
    parts = [
        (name, number, query)
        for name, part_queries in queries.items()
        for number, query in enumerate(part_queries)
    ]
    with shared_snapshot(engine) as snapshot, ThreadPoolExecutor(max(1, streams)) as pool:
        done = list(pool.map(lambda part: read(*part, snapshot), parts))
    results: dict[str, list[T]] = {name: [] for name in queries}
    for (name, _, _), result in zip(parts, done, strict=True):
        results[name].append(result)
    return results


def read_tables(
    engine: Engine, queries: dict[str, list[str]], streams: int
) -> dict[str, list[pa.Table]]:
    """Each named read's rows, one table per part of it (a read split in parts runs on
    several cores of the database at once)."""
    return _parts_together(
        engine, queries, streams, lambda _, __, query, snapshot: read_table(engine, query, snapshot)
    )


def spool_tables(
    engine: Engine, queries: dict[str, list[str]], folder: Path, streams: int
) -> dict[str, list[Path]]:
    """Each named read's rows into Parquet files in `folder`, one per part of it."""

    def spool(name: str, number: int, query: str, snapshot: str) -> Path:
        return spool_table(engine, query, folder / f"{name}-{number}.parquet", snapshot)

    return _parts_together(engine, queries, streams, spool)
