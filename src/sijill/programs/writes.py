"""Rows in bulk into a table: COPY on PostgreSQL, one executemany elsewhere (SQLite)."""

import polars as pl
from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from sijill.core.pg_copy import copy_frame


def write_rows(session: Session, table: Table, rows: pl.DataFrame) -> None:
    """`rows` (columns named as the table's) into `table`, in the session's transaction."""
    if not rows.height:
        return
    if session.bind.dialect.name != "postgresql":
        session.execute(insert(table), rows.to_dicts())
        return
    if "household_id" in rows.columns:
        # In key order, each index grows at its right edge instead of at random pages.
        rows = rows.sort("household_id")
    copy_frame(session.connection().connection.driver_connection, table, rows)


def in_batches(ids: list[int], size: int = 10_000):
    """IDs in bounded slices, for an IN (...) that stays a reasonable statement."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
