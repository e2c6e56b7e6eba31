"""Raising review flags: every pair of persons holding the same national ID number.

One statement finds the pairs among some persons by the number's blind index, takes each
person's current household, and inserts a flag for each pair that has no open flag yet. The API
runs it for the persons a request gave a number to, the import once per batch. It is one set
statement for any number of persons, and `ON CONFLICT DO NOTHING` on the open-pair index makes
it idempotent even when two transactions flag the same pair at once. It only compares
`person.national_id_index` values for equality (the one use of that column outside
`registry.identifiers`): no number is decrypted or hashed here.

The same SQL runs through a `Session` and through the import's raw DBAPI connection, so it is
written once here, with `:name` parameters (sqlite3 and SQLAlchemy's `text` read those; the
psycopg form is derived).

An initial load (an empty registry, its indexes dropped until the end) does not ask the
database: the importer already holds each batch's blind indexes, keeps them narrowed
(`index_holders`), pairs them once at the end (`pair_holders`, a hash join in memory) and
inserts the pairs at once (`insert_pairs_raw`). Grouping 4.6M persons' indexes in SQL at the
end of the load took 12 s of a 1M-household import.
"""

import io
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session

from sijill.registry.reviews.models import DUPLICATE_NATIONAL_ID, NATIONAL_ID_HELD_ELSEWHERE, OPEN
from sijill.security.keys.keyring import INDEX_HEX_CHARS

_INSERT = """
INSERT INTO review_flag (kind, state, person_a_id, person_b_id, household_a_id,
    household_b_id, reason, source, raised_by, raised_at)
SELECT :kind, :state, pair.a, pair.b, ma.household_id, mb.household_id,
    :reason, :source, :actor, :now
FROM (
    SELECT DISTINCT
        CASE WHEN n.id < o.id THEN n.id ELSE o.id END AS a,
        CASE WHEN n.id < o.id THEN o.id ELSE n.id END AS b
    FROM person n
    JOIN person o ON o.national_id_index = n.national_id_index AND o.id <> n.id
    WHERE {persons}
        AND n.national_id_type = 'national_id' AND o.national_id_type = 'national_id'
) pair
LEFT JOIN membership ma ON ma.person_id = pair.a AND ma.end_date IS NULL
LEFT JOIN membership mb ON mb.person_id = pair.b AND mb.end_date IS NULL
WHERE 1 = 1
ON CONFLICT DO NOTHING
RETURNING id
"""
# (`WHERE 1 = 1` lets SQLite tell the upsert clause from a join constraint.)

# An initial load's pairs, found by the importer (`pair_holders`), enter through a temporary
# table: one COPY and one set statement, still idempotent on the open-pair index.
_INSERT_PAIRS = """
INSERT INTO review_flag (kind, state, person_a_id, person_b_id, household_a_id,
    household_b_id, reason, source, raised_by, raised_at)
SELECT :kind, :state, a, b, household_a, household_b, :reason, :source, :actor, :now
FROM load_flag_pair
WHERE 1 = 1
ON CONFLICT DO NOTHING
RETURNING id
"""
_PAIR_COLUMNS = ("person_a_id", "person_b_id", "household_a_id", "household_b_id")
_HALF = INDEX_HEX_CHARS // 2
_PARAMETER = re.compile(r":(\w+)")


def _statement(dialect: str, *, driver_style: bool) -> str:
    if dialect == "postgresql":
        sql = _INSERT.format(persons="n.id = ANY(:person_ids)")
    else:
        sql = _INSERT.format(persons="n.id IN (SELECT value FROM json_each(:person_ids))")
    return _driver_style(sql) if driver_style and dialect == "postgresql" else sql


def _driver_style(sql: str) -> str:
    return _PARAMETER.sub(r"%(\1)s", sql)


def _parameters(
    dialect: str, person_ids: Sequence[int] | None, source: str, actor: str, now: datetime
) -> dict:
    if now.tzinfo is None:  # a naive time here is UTC, as SQLite hands them back
        now = now.replace(tzinfo=UTC)
    parameters = {
        "kind": DUPLICATE_NATIONAL_ID,
        "state": OPEN,
        "reason": NATIONAL_ID_HELD_ELSEWHERE,
        "source": source,
        "actor": actor[:64],
        # Raw SQL bypasses SQLAlchemy's types: SQLite gets the text its DateTime type writes.
        "now": now
        if dialect == "postgresql"
        else now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    if person_ids is not None:
        ids = [int(i) for i in person_ids]
        parameters["person_ids"] = ids if dialect == "postgresql" else json.dumps(ids)
    return parameters


def flag_shared_national_ids(
    session: Session, person_ids: Sequence[int], *, source: str, actor: str, now: datetime
) -> list[int]:
    """Flag each pair of one of `person_ids` and another person holding the same national ID
    number (already written and flushed); the IDs of the flags newly raised."""
    if not person_ids:
        return []
    dialect = session.get_bind().dialect.name
    sql = _statement(dialect, driver_style=False)
    rows = session.execute(text(sql), _parameters(dialect, person_ids, source, actor, now))
    return sorted(row[0] for row in rows)


def flag_shared_national_ids_raw(
    cursor,
    dialect: str,
    person_ids: Sequence[int],
    *,
    source: str,
    actor: str,
    now: datetime,
) -> list[int]:
    """`flag_shared_national_ids` on a DBAPI cursor, inside the caller's transaction."""
    if len(person_ids) == 0:
        return []
    if dialect == "postgresql":
        _analyze_if_unknown(cursor, len(person_ids))
    sql = _statement(dialect, driver_style=True)
    cursor.execute(sql, _parameters(dialect, person_ids, source, actor, now))
    return sorted(row[0] for row in cursor.fetchall())


def index_holders(persons: pl.DataFrame, memberships: pl.DataFrame) -> pl.DataFrame:
    """A written batch's persons that hold a national ID number, narrowed for `pair_holders`:
    the number's blind index as its two 64-bit halves (all of its 128 bits, so equality stays
    exact), the person and their household; 32 bytes a person, where the hex text took 72."""
    halves = [
        pl.col("national_id_index")
        .str.slice(start, _HALF)
        .str.to_integer(base=16, dtype=pl.UInt64)
        .alias(name)
        for name, start in (("index_high", 0), ("index_low", _HALF))
    ]
    return (
        persons.filter(
            (pl.col("national_id_type") == "national_id")
            & pl.col("national_id_index").is_not_null()
        )
        .select(*halves, pl.col("id").alias("person_id"))
        .join(memberships.select("person_id", "household_id"), on="person_id", how="left")
    )


def pair_holders(holders: pl.DataFrame) -> pl.DataFrame:
    """Every pair of `index_holders` rows with the same number, ordered (a < b) as the
    open-pair index stores them. The rows whose high half is held more than once are found
    first, by sorting that half alone (a group-by of 4.6 million rows on both halves took a
    gigabyte), so only they are joined, on both halves."""
    index = ["index_high", "index_low"]
    high = holders["index_high"].to_numpy()
    order = np.argsort(high, kind="stable")
    ordered = high[order]
    repeated = ordered[1:] == ordered[:-1]
    in_run = np.zeros(len(ordered), dtype=bool)
    in_run[1:] |= repeated
    in_run[:-1] |= repeated
    holding = holders[order[in_run]]
    return (
        holding.join(holding, on=index, suffix="_b")
        .filter(pl.col("person_id") < pl.col("person_id_b"))
        .select(
            pl.col("person_id").alias("person_a_id"),
            pl.col("person_id_b").alias("person_b_id"),
            pl.col("household_id").alias("household_a_id"),
            pl.col("household_id_b").alias("household_b_id"),
        )
        .sort("person_a_id", "person_b_id")
    )


def insert_pairs_raw(
    cursor, pairs: pl.DataFrame, *, source: str, actor: str, now: datetime
) -> list[int]:
    """Flag the `pair_holders` pairs on a PostgreSQL DBAPI cursor, inside the caller's
    transaction; the IDs of the flags newly raised."""
    if pairs.height == 0:
        return []
    cursor.execute(
        "CREATE TEMP TABLE load_flag_pair (a bigint, b bigint, household_a bigint, "
        "household_b bigint) ON COMMIT DROP"
    )
    data = io.BytesIO()
    pairs.select(_PAIR_COLUMNS).write_csv(data, include_header=False)
    with cursor.copy("COPY load_flag_pair FROM STDIN (FORMAT csv)") as copy:
        copy.write(data.getvalue())
    cursor.execute(
        _driver_style(_INSERT_PAIRS), _parameters("postgresql", None, source, actor, now)
    )
    flag_ids = sorted(row[0] for row in cursor.fetchall())
    cursor.execute("DROP TABLE load_flag_pair")
    return flag_ids


def _analyze_if_unknown(cursor, asked: int) -> None:
    """Give the planner statistics when an import's own batches outgrew them.

    A registry filled by the running import may never have been analysed (`reltuples` -1)
    or be believed far smaller than it is; the planner then joins the batch's persons to
    all persons by a nested loop over sequential scans, quadratic in the batch (minutes for
    one batch of 90,000 persons, measured). ANALYZE reads a bounded sample, its own
    transaction's rows included, and is only needed while the table is believed smaller
    than twice the persons asked about: in the first batches of a new registry.
    """
    cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'person'::regclass")
    believed = cursor.fetchone()[0]
    if believed < 2 * asked:
        cursor.execute("ANALYZE person, membership")
