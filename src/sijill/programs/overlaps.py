"""Who is in a program during a cycle, and the overlap rules between programs.

A household is in a program during a cycle when it is enrolled since a day on or before the
cycle's last day, or it has exited on or after the cycle's first day having been enrolled
(answered yes) on or before its last day. It is covered from the later of its enrollment
day and the cycle's first day to the earlier of its exit day (included: it was in the program
that day) and the cycle's last day.

Overlap rules of a spec:

- `incompatible_with: [codes]`: a household in this program and in a listed program during
  the same cycle's days is in violation; its entitlement is held (not paid) with the reason
  `incompatible:<codes>`, until someone resolves which program it stays in.
- `ceiling: {amount: 900.00, with: [codes]}`: the household's amount for the cycle plus what
  the listed programs have generated or approved for it (due or reduced, not held or
  suspended) over the same days may not exceed `amount` (major units, the program's
  currency). A listed program's entitlement counts by the share of its cycle's days that fall
  in this cycle (a quarterly 300.00 counts 100.00-ish in each month: by days, rounded down), so
  monthly and quarterly programs compare. This program's amount is reduced to fit (never
  below zero), with the reason `ceiling`.
"""

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

from sijill.core.errors import InvalidInput
from sijill.core.pg_copy import read_query
from sijill.programs.benefits import to_minor
from sijill.programs.cycles import Cycle
from sijill.programs.entitlement_models import PAYABLE
from sijill.programs.models import ENROLLED, EXITED
from sijill.programs.spec import _CODE, ProgramSpec, SpecError

ENROLLED_SCHEMA = {"household_id": pl.Int64, "start": pl.Date, "end": pl.Date, "days": pl.Int64}


@dataclass(frozen=True)
class Ceiling:
    amount_minor: int
    programs: tuple[str, ...]


def parse_ceiling(spec: ProgramSpec, where: str = "spec") -> Ceiling | None:
    body = spec.ceiling
    if body is None:
        return None
    if not isinstance(body, dict) or set(body) != {"amount", "with"}:
        raise SpecError(f"{where}: ceiling: {{amount: AMOUNT, with: [program codes]}}")
    try:
        amount = Decimal(str(body["amount"]))
    except ArithmeticError:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise SpecError(f"{where}: ceiling.amount: '{body['amount']}' is not an amount")
    codes = body["with"]
    if not isinstance(codes, list) or not all(isinstance(c, str) and _CODE.match(c) for c in codes):
        raise SpecError(f"{where}: ceiling.with: a list of program codes")
    return Ceiling(to_minor(amount, spec.minor_units, "down"), tuple(codes))


def _codes(codes) -> str:
    for code in codes:
        if not _CODE.match(code):  # embedded in SQL below: only a valid code ever is
            raise InvalidInput(f"'{code}' is not a program code")
    return ", ".join(f"'{code}'" for code in codes)


def _areas(area_ids: list[int] | None) -> str:
    if area_ids is None:
        return "TRUE"
    return f"h.area_id IN ({', '.join(str(int(a)) for a in area_ids) or 'NULL'})"


def enrolled_in(
    engine: Engine, work_dir: Path, codes: list[str], cycle: Cycle, area_ids: list[int] | None
) -> pl.DataFrame:
    """household_id, program, start, end, days: the households in these programs during the
    cycle (in these areas: None for all), with the days covered."""
    first, last = f"'{cycle.first.isoformat()}'", f"'{cycle.last.isoformat()}'"
    listed = _codes(codes)
    query = f"""
SELECT e.household_id, e.program, e.status, e.since, s.started
FROM enrollment e
JOIN household h ON h.id = e.household_id
LEFT JOIN (SELECT program, household_id, MAX(on_date) AS started FROM enrollment_event
           WHERE program IN ({listed}) AND to_status = '{ENROLLED}' AND by_hand
           GROUP BY program, household_id) s
  ON s.program = e.program AND s.household_id = e.household_id
WHERE e.program IN ({listed}) AND {_areas(area_ids)}
  AND ((e.status = '{ENROLLED}' AND e.since <= {last})
       OR (e.status = '{EXITED}' AND e.since >= {first}))"""
    schema = {
        "household_id": pl.Int64,
        "program": pl.String,
        "status": pl.String,
        "since": pl.Date,
        "started": pl.Date,
    }
    rows = read_query(engine, query, schema, work_dir)
    exited = pl.col("status") == EXITED
    began = pl.when(exited).then("started").otherwise("since")
    rows = rows.with_columns(
        # max_horizontal skips nulls: an exited household that never answered yes (no start)
        # was never in the program, and must stay without a start.
        start=pl.when(began.is_not_null()).then(pl.max_horizontal(began, pl.lit(cycle.first))),
        end=pl.when(exited)
        .then(pl.min_horizontal("since", pl.lit(cycle.last)))
        .otherwise(pl.lit(cycle.last)),
    ).filter(pl.col("start").is_not_null() & (pl.col("start") <= pl.col("end")))
    return rows.select(
        "household_id",
        "program",
        "start",
        "end",
        days=((pl.col("end") - pl.col("start")).dt.total_days() + 1).cast(pl.Int64),
    )


def incompatible(
    engine: Engine, work_dir: Path, spec: ProgramSpec, cycle: Cycle, households: pl.DataFrame
) -> pl.DataFrame:
    """household_id, reason (`incompatible:<codes>`) for the `households` (household_id,
    start, end) also in a program the spec cannot be combined with on one of their days."""
    if not spec.incompatible_with:
        return pl.DataFrame(schema={"household_id": pl.Int64, "reason": pl.String})
    others = enrolled_in(engine, work_dir, list(spec.incompatible_with), cycle, None)
    theirs = others.select("household_id", "program", o_start=pl.col("start"), o_end=pl.col("end"))
    both = (
        households.select("household_id", "start", "end")
        .join(theirs, on="household_id")
        .filter((pl.col("o_start") <= pl.col("end")) & (pl.col("start") <= pl.col("o_end")))
    )
    return both.group_by("household_id").agg(
        reason=pl.lit("incompatible:") + pl.col("program").unique().sort().str.join(",")
    )


def others_amounts(
    engine: Engine, work_dir: Path, ceiling: Ceiling, cycle: Cycle, currency: str
) -> pl.DataFrame:
    """household_id, others_minor: what the ceiling's programs give each household over this
    cycle's days (their payable entitlements, generated or approved, by share of days)."""
    first, last = f"'{cycle.first.isoformat()}'", f"'{cycle.last.isoformat()}'"
    statuses = ", ".join(f"'{status}'" for status in PAYABLE)
    query = f"""
SELECT e.household_id, e.amount_minor, c.first_day, c.last_day, c.currency
FROM entitlement e JOIN entitlement_cycle c ON c.id = e.batch_id
WHERE c.program IN ({_codes(ceiling.programs)}) AND c.first_day <= {last}
  AND c.last_day >= {first} AND e.status IN ({statuses})"""
    schema = {
        "household_id": pl.Int64,
        "amount_minor": pl.Int64,
        "first_day": pl.Date,
        "last_day": pl.Date,
        "currency": pl.String,
    }
    rows = read_query(engine, query, schema, work_dir)
    if rows.filter(pl.col("currency") != currency).height:
        raise InvalidInput(f"ceiling: a program it counts pays in another currency than {currency}")
    inside = (
        pl.min_horizontal("last_day", pl.lit(cycle.last))
        - pl.max_horizontal("first_day", pl.lit(cycle.first))
    ).dt.total_days() + 1
    their_days = (pl.col("last_day") - pl.col("first_day")).dt.total_days() + 1
    share = pl.col("amount_minor") * inside // their_days
    return rows.group_by("household_id").agg(others_minor=share.sum().cast(pl.Int64))


def overlap_violations(frame: pl.DataFrame, ceiling: Ceiling | None) -> pl.DataFrame:
    """household_id, rule for a generation's frame (household_id, incompatible reason,
    amount_minor, others_minor): the rows a report lists."""
    rules = [frame.filter(pl.col("incompatible").is_not_null()).select(
        "household_id", rule=pl.col("incompatible")
    )]  # fmt: skip
    if ceiling is not None:
        over = pl.col("amount_minor") + pl.col("others_minor") > ceiling.amount_minor
        rules.append(frame.filter(over).select("household_id", rule=pl.lit("ceiling")))
    return pl.concat(rules).sort("household_id", "rule")
