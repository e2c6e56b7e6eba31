"""The double-entry ledger: every movement of money, as balanced moves between four accounts.

    entitle   program budget       -> beneficiary payable   an approved entitlement enters payments
    instruct  beneficiary payable  -> provider clearing      its instruction is released
    settle    provider clearing    -> paid                   the provider reports it paid
    fail      provider clearing    -> beneficiary payable    ... reports it failed (re-issuable)
    return    paid                 -> beneficiary payable    ... reports the money came back

A move is two legs under one `move_id`: minus the amount on the account it leaves, plus on
the one it reaches, in integer minor units of one currency. Each leg names the entitlement
(program, cycle, household) and, from `instruct` on, the instruction. So an entitlement's
money is always in exactly one place, and `check` can prove it: every move balances, and each
entitlement is paid exactly once (all its money in `paid`) or explicitly open (in payable or
clearing), matching its instructions' statuses.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Table, column, text
from sqlalchemy.orm import Session

from sijill.core.db import execute_read
from sijill.payments.models import MOVES, LedgerEntry

LEG_COLUMNS = (
    "id", "move_id", "kind", "account", "provider", "program", "cycle", "household_id",
    "instruction_id", "amount_minor", "currency", "source", "recorded_at",
)  # fmt: skip


def table() -> Table:
    return LedgerEntry.__table__


def moves(
    kind: str, rows: pl.DataFrame, ids, *, source: str, recorded_at: datetime
) -> pl.DataFrame:
    """The legs of one `kind` move per row of `rows` (program, cycle, household_id,
    amount_minor, currency; `id` and `provider` of the instruction when it has one). `ids`
    hands out move and leg IDs (`.move`, `.leg`) and is advanced."""
    leaves, reaches = MOVES[kind]
    count = rows.height
    if not count:
        return pl.DataFrame(schema=_LEG_SCHEMA)
    has_instruction = "id" in rows.columns and kind != "entitle"
    base = rows.select(
        pl.int_range(0, count, dtype=pl.Int64).alias("position"),
        "program", "cycle", "household_id",
        (pl.col("id") if has_instruction else pl.lit(None, pl.Int64)).alias("instruction_id"),
        (pl.col("provider") if "provider" in rows.columns else pl.lit(None, pl.String)).alias(
            "provider"
        ),
        "amount_minor", "currency",
    )  # fmt: skip

    def leg(account: str, sign: int, offset: int) -> pl.DataFrame:
        return base.with_columns(
            (pl.col("position") * 2 + ids.leg + offset).alias("id"),
            (pl.col("position") + ids.move).alias("move_id"),
            pl.lit(kind).alias("kind"),
            pl.lit(account).alias("account"),
            # A clearing account is the provider's: the other accounts name none.
            (pl.col("provider") if account == "clearing" else pl.lit(None, pl.String)).alias(
                "provider"
            ),
            pl.col("amount_minor") * sign,
            pl.lit(source).alias("source"),
            pl.lit(recorded_at, pl.Datetime("us", "UTC")).alias("recorded_at"),
        ).select(LEG_COLUMNS)

    legs = pl.concat([leg(leaves, -1, 0), leg(reaches, 1, 1)]).sort("id")
    ids.move += count
    ids.leg += 2 * count
    return legs


_LEG_SCHEMA = {
    "id": pl.Int64, "move_id": pl.Int64, "kind": pl.String, "account": pl.String,
    "provider": pl.String, "program": pl.String, "cycle": pl.String,
    "household_id": pl.Int64, "instruction_id": pl.Int64, "amount_minor": pl.Int64,
    "currency": pl.String, "source": pl.String, "recorded_at": pl.Datetime("us", "UTC"),
}  # fmt: skip


@dataclass
class CheckReport:
    moves: int = 0
    legs: int = 0
    unbalanced_moves: int = 0
    balances: dict[str, dict[str, int]] = field(default_factory=dict)  # currency -> account
    entitlements: int = 0
    paid_once: int = 0
    open: int = 0
    wrong_entitlements: int = 0  # neither paid exactly once nor open, or not its amount
    instructions: int = 0
    wrong_instructions: int = 0  # the ledger disagrees with the instruction's status
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(session: Session) -> CheckReport:
    """Prove the ledger: every move balances in one currency, every account's balances sum
    to zero, each entitlement is paid exactly once or open for exactly its amount, and each
    instruction's money is where its status says."""
    report = CheckReport()
    if session.bind.dialect.name == "postgresql":
        # Each check aggregates every leg: at the default work_mem the million-group hash
        # tables spill to disk in hundreds of batches, which took a third of its time.
        session.execute(text("SET LOCAL work_mem = '256MB'"))
    one = lambda sql: session.execute(text(sql)).one()  # noqa: E731
    report.moves, report.legs, report.unbalanced_moves = one(
        """SELECT COUNT(*), COALESCE(SUM(legs), 0),
                  COALESCE(SUM(CASE WHEN total <> 0 OR legs <> 2 OR currencies <> 1
                                    THEN 1 ELSE 0 END), 0)
           FROM (SELECT move_id, SUM(amount_minor) AS total, COUNT(*) AS legs,
                        COUNT(DISTINCT currency) AS currencies
                 FROM ledger_entry GROUP BY move_id) m"""
    )
    for account, currency, balance in session.execute(
        text(
            "SELECT account, currency, SUM(amount_minor) FROM ledger_entry "
            "GROUP BY account, currency ORDER BY currency, account"
        )  # fmt: skip
    ):
        report.balances.setdefault(currency, {})[account] = int(balance)
    for currency, accounts in report.balances.items():
        if sum(accounts.values()):
            report.problems.append(f"{currency}: the accounts do not sum to zero")
    (report.entitlements, report.paid_once, report.open, report.wrong_entitlements) = (
        int(v or 0) for v in one(_ENTITLEMENTS)
    )
    report.instructions, report.wrong_instructions = (int(v or 0) for v in one(_INSTRUCTIONS))
    # Each live instruction is its entitlement's one live payment, and nothing else is.
    report.wrong_instructions += sum(int(one(query)[0] or 0) for query in _LIVE)
    if report.unbalanced_moves:
        report.problems.append(f"{report.unbalanced_moves} moves do not balance")
    if report.wrong_entitlements:
        report.problems.append(
            f"{report.wrong_entitlements} entitlements are neither paid exactly once nor open "
            "for their amount"
        )
    if report.wrong_instructions:
        report.problems.append(f"{report.wrong_instructions} instructions disagree with the ledger")
    return report


_ENTITLEMENTS = """
WITH b AS (
    SELECT program, cycle, household_id,
           SUM(CASE WHEN account = 'budget' THEN -amount_minor ELSE 0 END) AS entitled,
           SUM(CASE WHEN account = 'payable' THEN amount_minor ELSE 0 END) AS payable,
           SUM(CASE WHEN account = 'clearing' THEN amount_minor ELSE 0 END) AS clearing,
           SUM(CASE WHEN account = 'paid' THEN amount_minor ELSE 0 END) AS paid
    FROM ledger_entry GROUP BY program, cycle, household_id
), s AS (
    SELECT b.*, e.amount_minor AS amount,
           CASE WHEN b.paid = b.entitled AND b.payable = 0 AND b.clearing = 0
                THEN 1 ELSE 0 END AS paid_once,
           CASE WHEN b.paid = 0 AND b.payable >= 0 AND b.clearing >= 0
                 AND b.payable + b.clearing = b.entitled THEN 1 ELSE 0 END AS still_open
    FROM b LEFT JOIN entitlement e
      ON e.program = b.program AND e.cycle = b.cycle AND e.household_id = b.household_id
)
SELECT COUNT(*), SUM(paid_once), SUM(still_open),
       SUM(CASE WHEN (paid_once = 1 OR still_open = 1) AND amount = entitled
                THEN 0 ELSE 1 END)
FROM s
"""

_INSTRUCTIONS = """
SELECT COUNT(*),
       SUM(CASE WHEN (i.status = 'prepared' AND COALESCE(l.clearing, 0) = 0
                      AND COALESCE(l.paid, 0) = 0)
                  OR (i.status = 'sent' AND l.clearing = i.amount_minor
                      AND COALESCE(l.paid, 0) = 0)
                  OR (i.status = 'paid' AND COALESCE(l.clearing, 0) = 0
                      AND l.paid = i.amount_minor)
                  OR (i.status IN ('failed', 'returned') AND COALESCE(l.clearing, 0) = 0
                      AND COALESCE(l.paid, 0) = 0)
                THEN 0 ELSE 1 END)
FROM payment_instruction i
LEFT JOIN (
    SELECT instruction_id,
           SUM(CASE WHEN account = 'clearing' THEN amount_minor ELSE 0 END) AS clearing,
           SUM(CASE WHEN account = 'paid' THEN amount_minor ELSE 0 END) AS paid
    FROM ledger_entry WHERE instruction_id IS NOT NULL GROUP BY instruction_id
) l ON l.instruction_id = i.id
"""


_LIVE = (
    """SELECT COUNT(*) FROM payment_instruction i
       LEFT JOIN entitlement_payment p ON p.instruction_id = i.id
       WHERE i.status IN ('prepared', 'sent', 'paid') AND p.instruction_id IS NULL""",
    """SELECT COUNT(*) FROM entitlement_payment p
       LEFT JOIN payment_instruction i ON i.id = p.instruction_id
       WHERE i.id IS NULL OR i.status NOT IN ('prepared', 'sent', 'paid')
          OR i.program <> p.program OR i.cycle <> p.cycle OR i.household_id <> p.household_id""",
)


def _scope_join(area_ids: frozenset[int] | None) -> tuple[str, str]:
    if area_ids is None:
        return "", "TRUE"
    listed = ", ".join(str(int(a)) for a in sorted(area_ids)) or "NULL"
    return "JOIN household h ON h.id = l.household_id", f"h.area_id IN ({listed})"


def program_totals(
    session: Session, area_ids: frozenset[int] | None, program: str | None = None,
    cycle: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Per program, cycle and currency: entitled, sent, paid, failed, returned, outstanding
    (entitled and not paid), in minor units; households in these areas only."""
    join, where = _scope_join(area_ids)
    params: dict[str, str] = {}
    if program:
        where += " AND l.program = :program"
        params["program"] = program
    if cycle:
        where += " AND l.cycle = :cycle"
        params["cycle"] = cycle
    query = f"""
        SELECT l.program, l.cycle, l.currency,
          SUM(CASE WHEN l.kind = 'entitle' AND l.account = 'payable' THEN l.amount_minor ELSE 0 END),
          SUM(CASE WHEN l.kind = 'instruct' AND l.account = 'clearing' THEN l.amount_minor ELSE 0 END),
          SUM(CASE WHEN l.account = 'paid' THEN l.amount_minor ELSE 0 END),
          SUM(CASE WHEN l.kind = 'fail' AND l.account = 'payable' THEN l.amount_minor ELSE 0 END),
          SUM(CASE WHEN l.kind = 'return' AND l.account = 'payable' THEN l.amount_minor ELSE 0 END),
          SUM(CASE WHEN l.account IN ('payable', 'clearing') THEN l.amount_minor ELSE 0 END),
          COUNT(DISTINCT l.household_id)
        FROM ledger_entry l {join}
        WHERE {where}
        GROUP BY l.program, l.cycle, l.currency
        ORDER BY l.program, l.cycle, l.currency
    """  # noqa: E501
    names = ("program", "cycle", "currency", "entitled_minor", "sent_minor", "paid_minor",
             "failed_minor", "returned_minor", "outstanding_minor", "households")  # fmt: skip
    # PostgreSQL sums bigints as numeric: back to integers (minor units, never floats).
    text_columns = ("program", "cycle", "currency")
    return [
        {name: (v if name in text_columns else int(v)) for name, v in zip(names, row, strict=True)}
        for row in session.execute(text(query), params)
    ]


_MOVE_NAMES = ("move_id", "kind", "program", "cycle", "instruction_id", "currency", "source",
               "recorded_at", "amount_minor", "from_account", "to_account", "provider")  # fmt: skip
# Made once, and read-only (`columns`): a household's page keeps its session's knowledge of
# the household (`registry.lookup`) across it.
_MOVES = text("""
    SELECT move_id, kind, program, cycle, instruction_id, currency, source, recorded_at,
           MAX(CASE WHEN amount_minor > 0 THEN amount_minor END),
           MAX(CASE WHEN amount_minor < 0 THEN account END),
           MAX(CASE WHEN amount_minor > 0 THEN account END),
           MAX(provider)
    FROM ledger_entry WHERE household_id = :household
    GROUP BY move_id, kind, program, cycle, instruction_id, currency, source, recorded_at
    ORDER BY move_id
    """).columns(*map(column, _MOVE_NAMES))


def household_moves(session: Session, household_id: int) -> list[dict[str, Any]]:
    """Every move of one household's money, oldest first: one row per move (its two legs
    read as from -> to)."""
    rows = execute_read(session, _MOVES, {"household": household_id})
    return [dict(zip(_MOVE_NAMES, row, strict=True)) for row in rows]
