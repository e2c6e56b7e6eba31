"""Raising review flags: every pair of persons holding the same national ID number.

One statement finds the pairs among some persons (or the whole registry) by the number's
blind index, takes each person's current household, and inserts a flag for each pair that has
no open flag yet. The API runs it for the persons a request gave a number to, the import once
per batch (and an initial load once at its end, when the index exists). It is one set
statement for any number of persons, and `ON CONFLICT DO NOTHING` on the open-pair index makes
it idempotent even when two transactions flag the same pair at once. It only compares
`person.national_id_index` values for equality (the one use of that column outside
`registry.identifiers`): no number is decrypted or hashed here.

The same SQL runs through a `Session` and through the import's raw DBAPI connection, so it is
written once here, with `:name` parameters (sqlite3 and SQLAlchemy's `text` read those; the
psycopg form is derived).
"""

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from sijill.registry.reviews.models import DUPLICATE_NATIONAL_ID, NATIONAL_ID_HELD_ELSEWHERE, OPEN

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

# Over the whole registry (an initial load, before its indexes exist): the numbers held more
# than once first, in one pass, then only their holders are paired. Joining every person to
# every other by number instead cost four times as long at 4.6M persons.
_INSERT_EVERYONE = """
INSERT INTO review_flag (kind, state, person_a_id, person_b_id, household_a_id,
    household_b_id, reason, source, raised_by, raised_at)
WITH shared AS (
    SELECT national_id_index FROM person
    WHERE national_id_type = 'national_id' AND national_id_index IS NOT NULL
    GROUP BY national_id_index HAVING count(*) > 1
), holders AS (
    SELECT p.id, p.national_id_index, m.household_id
    FROM person p
    JOIN shared ON shared.national_id_index = p.national_id_index
    LEFT JOIN membership m ON m.person_id = p.id AND m.end_date IS NULL
    WHERE p.national_id_type = 'national_id'
)
SELECT DISTINCT :kind, :state, a.id, b.id, a.household_id, b.household_id,
    :reason, :source, :actor, :now
FROM holders a
JOIN holders b ON b.national_id_index = a.national_id_index AND b.id > a.id
WHERE 1 = 1
ON CONFLICT DO NOTHING
RETURNING id
"""
_PARAMETER = re.compile(r":(\w+)")


def _statement(dialect: str, *, everyone: bool, driver_style: bool) -> str:
    if everyone:
        sql = _INSERT_EVERYONE
    elif dialect == "postgresql":
        sql = _INSERT.format(persons="n.id = ANY(:person_ids)")
    else:
        sql = _INSERT.format(persons="n.id IN (SELECT value FROM json_each(:person_ids))")
    if driver_style and dialect == "postgresql":
        sql = _PARAMETER.sub(r"%(\1)s", sql)
    return sql


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
    sql = _statement(dialect, everyone=False, driver_style=False)
    rows = session.execute(text(sql), _parameters(dialect, person_ids, source, actor, now))
    return sorted(row[0] for row in rows)


def flag_shared_national_ids_raw(
    cursor,
    dialect: str,
    person_ids: Sequence[int] | None,
    *,
    source: str,
    actor: str,
    now: datetime,
) -> list[int]:
    """`flag_shared_national_ids` on a DBAPI cursor, inside the caller's transaction; with
    `person_ids` None, over every person of the registry."""
    if person_ids is not None and len(person_ids) == 0:
        return []
    if dialect == "postgresql" and person_ids is not None:
        _analyze_if_unknown(cursor, len(person_ids))
    sql = _statement(dialect, everyone=person_ids is None, driver_style=True)
    if dialect == "postgresql" and person_ids is None:
        # A pass over every person: hash in memory rather than in 64 spilled batches, and
        # no JIT compilation for a statement run once.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL jit = off")
    cursor.execute(sql, _parameters(dialect, person_ids, source, actor, now))
    return sorted(row[0] for row in cursor.fetchall())


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
