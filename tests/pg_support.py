"""A PostgreSQL database of a test's own, beside the test database (migration tests run their
upgrades from an empty one). Named after the test database, so parallel workers each have
their own."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

PG_URL = os.environ.get("SIJILL_TEST_DATABASE_URL")
# A plain DROP waits for, then refuses, a connection still open; a few tries are plenty.
_DROP_TRIES = 10


def _admin(statement: str) -> None:
    with psycopg.connect(
        PG_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as db:
        db.execute(statement)


def drop_database(name: str) -> None:
    """Drop `name` whatever still reads it. WITH (FORCE) ends the test's own leftover
    connections, but PostgreSQL 15 refuses the whole statement to a role that is not a
    superuser when an autovacuum worker is busy in the database (a fresh database full of new
    rows draws one: "must be a member of the role whose process is being terminated"). A plain
    DROP cancels autovacuum itself, so that refusal is answered with a plain DROP; a connection
    of the test's own then makes the plain DROP fail, and FORCE is tried again."""
    for _ in range(_DROP_TRIES - 1):
        try:
            _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        except psycopg.errors.InsufficientPrivilege:
            try:
                _admin(f"DROP DATABASE IF EXISTS {name}")
                return
            except psycopg.errors.ObjectInUse:
                continue
    _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def private_database(suffix: str) -> Iterator[str]:
    """The URL of an empty database `<test database>_<suffix>`, dropped after."""
    base, name = PG_URL.rsplit("/", 1)
    database = f"{name}_{suffix}"
    drop_database(database)
    _admin(f"CREATE DATABASE {database}")
    try:
        yield f"{base}/{database}"
    finally:
        drop_database(database)
