"""What a payment run may pay: the approved, payable entitlements of a cycle not yet paid or
being paid, each with the reason the gate holds it back, if any.

One statement reads them with every fact the gate needs (bulk path: COPY out on PostgreSQL);
the reasons are then decided column-wise. A held entitlement is reported and stays open in
the ledger; the next prepare of the cycle looks at it again.
"""

import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session

from sijill.core.pg_copy import query_frame
from sijill.payments.models import ACTIVE, FAILED, LIVE, PENDING
from sijill.programs.entitlement_models import APPROVED, PAYABLE
from sijill.registry.reviews.models import DUPLICATE_NATIONAL_ID, OPEN, POSSIBLE_DUPLICATE

# In the order the gate looks: the first that applies is the one reported.
HOLD_REASONS = (
    "recipient_deceased",
    "recipient_merged_away",
    "exited_program",
    "open_duplicate_review",
    "no_payment_consent",
    "instrument_awaiting_approval",
    "no_instrument",
    "shared_instrument",
    # The last payment to this very instrument failed (a closed account, a wrong number): it
    # waits for another instrument rather than failing again. A returned payment (cash not
    # collected) may go to the same one.
    "instrument_failed",
)

_SCHEMA = {
    "program": pl.String,
    "cycle": pl.String,
    "household_id": pl.Int64,
    "amount_minor": pl.Int64,
    "currency": pl.String,
    "version": pl.Int64,
    "area_id": pl.Int64,
    "instrument_id": pl.Int64,
    "instrument_kind": pl.String,
    "entitled": pl.Int64,  # 1: its entitle move is in the ledger already
    "attempts": pl.Int64,  # earlier failed or returned instructions
    **{f"is_{reason}": pl.Int64 for reason in HOLD_REASONS},
}


def _quoted(values) -> str:
    return ", ".join(f"'{value}'" for value in values)


def payable_entitlements(
    session: Session,
    cycle: str,
    area_ids: frozenset[int] | None,
    id_range: tuple[int, int] | None = None,
) -> pl.DataFrame:
    """The cycle's approved payable entitlements without a live instruction, in these areas
    (None: everywhere) and household ID range [low, high), with the gate's reason in `hold`
    (null: pay)."""
    postgres = session.bind.dialect.name == "postgresql"
    consented = (
        "h.consent_purposes ? 'payment'" if postgres else "h.consent_purposes LIKE '%\"payment\"%'"
    )
    in_scope = (
        "TRUE"
        if area_ids is None
        else f"h.area_id IN ({', '.join(str(int(a)) for a in sorted(area_ids)) or 'NULL'})"
    )
    # The slice's range, repeated inside the subqueries over this run's own growing tables
    # (instructions, ledger) so that each reads the slice's households only.
    in_range = "TRUE"
    if id_range is not None:
        low, high = (int(bound) for bound in id_range)
        in_range = f"household_id >= {low} AND household_id < {high}"
        in_scope += f" AND e.household_id >= {low} AND e.household_id < {high}"
    flag_kinds = _quoted((POSSIBLE_DUPLICATE, DUPLICATE_NATIONAL_ID))
    cycle_literal = "'" + cycle.replace("'", "''") + "'"
    flag = lambda condition: f"CASE WHEN {condition} THEN 1 ELSE 0 END"  # noqa: E731
    # Looked up per instrument by its fingerprint's index: grouping every instrument of the
    # registry by fingerprint took seconds per slice.
    shared = (
        "EXISTS (SELECT 1 FROM payment_instrument o WHERE o.fingerprint = i.fingerprint "
        f"AND o.status = '{ACTIVE}' AND o.household_id <> i.household_id)"
    )
    # An instrument that failed is never active again after a change (a change is a new row
    # with a higher ID): the highest failed one is the one that matters.
    failed_here = "earlier.failed_instrument = i.id"
    query = f"""
        SELECT e.program, e.cycle, e.household_id, e.amount_minor, c.currency, c.version,
               h.area_id, i.id, i.kind,
               {flag("entitled.household_id IS NOT NULL")},
               COALESCE(earlier.attempts, 0),
               {flag("p.death_date IS NOT NULL")},
               {flag("p.merged_into_id IS NOT NULL")},
               {flag("en.household_id IS NOT NULL")},
               {flag("flagged.household_id IS NOT NULL")},
               {flag(f"NOT ({consented})")},
               {flag("pending.household_id IS NOT NULL")},
               {flag("i.id IS NULL")},
               {flag(shared)},
               {flag(failed_here)}
        FROM entitlement e
        JOIN entitlement_cycle c ON c.id = e.batch_id AND c.status = '{APPROVED}'
        JOIN household h ON h.id = e.household_id
        LEFT JOIN person p ON p.id = e.person_id
        LEFT JOIN enrollment en ON en.program = e.program AND en.household_id = e.household_id
             AND en.status = 'exited'
        LEFT JOIN (
            SELECT household_a_id AS household_id FROM review_flag
            WHERE state = '{OPEN}' AND kind IN ({flag_kinds}) AND household_a_id IS NOT NULL
            UNION
            SELECT household_b_id FROM review_flag
            WHERE state = '{OPEN}' AND kind IN ({flag_kinds}) AND household_b_id IS NOT NULL
        ) flagged ON flagged.household_id = e.household_id
        LEFT JOIN payment_instrument i ON i.household_id = e.household_id
             AND i.status = '{ACTIVE}'
        LEFT JOIN (
            SELECT DISTINCT household_id FROM payment_instrument WHERE status = '{PENDING}'
        ) pending ON pending.household_id = e.household_id
        LEFT JOIN (
            SELECT DISTINCT program, household_id FROM ledger_entry
            WHERE cycle = {cycle_literal} AND kind = 'entitle' AND {in_range}
        ) entitled ON entitled.program = e.program AND entitled.household_id = e.household_id
        LEFT JOIN (
            SELECT program, household_id, COUNT(*) AS attempts,
                   SUM(CASE WHEN status IN ({_quoted(LIVE)}) THEN 1 ELSE 0 END) AS live,
                   MAX(CASE WHEN status = '{FAILED}' THEN instrument_id END) AS failed_instrument
            FROM payment_instruction
            WHERE cycle = {cycle_literal} AND {in_range} GROUP BY program, household_id
        ) earlier ON earlier.program = e.program AND earlier.household_id = e.household_id

        WHERE e.cycle = {cycle_literal}
          AND e.status IN ({_quoted(PAYABLE)}) AND e.amount_minor > 0
          AND {in_scope}
          AND COALESCE(earlier.live, 0) = 0
    """
    if postgres:
        # Compiling this query's expressions costs seconds per slice, more than running them.
        session.execute(text("SET LOCAL jit = off"))
    rows = query_frame(session, query, _SCHEMA)
    hold = pl.lit(None, pl.String)
    for reason in reversed(HOLD_REASONS):  # the first reason in the list wins
        hold = pl.when(pl.col(f"is_{reason}") == 1).then(pl.lit(reason)).otherwise(hold)
    return rows.with_columns(hold.alias("hold")).drop(f"is_{r}" for r in HOLD_REASONS)
