"""What each household of a program is entitled to in a cycle, computed in bulk.

For every household in the program during the cycle (see `programs.overlaps`), in the
user's scope:

1. the benefit formula (`programs.benefits`) over the feature snapshot and the scores of the
   program's latest run, with the parameters in force on the cycle's first day: the amount
   for a full cycle, in minor units;
2. prorated for a part cycle and cut by unmet conditions (`programs.conditions`), in one
   exact integer step: formula × days covered / days in the cycle × share kept, rounded once
   by the formula's rule (half_up, half_even or down) to the minor unit. A suspended
   household gets nothing;
3. the overlap rules: a household also in an incompatible program is held; an amount above
   the ceiling across programs is reduced to fit;
4. the recipient by the spec's rule (`programs.recipients`).

Each entitlement has a status: due, reduced (by a condition or the ceiling), suspended (a
condition) or held (an incompatible program, no assessment in the run: the household was not
in its snapshot, or no member to pay), with the reason. Everything here is columnar: DuckDB
for the formula, Polars joins for the rest, no loop over households.
"""

import contextlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.areas import areas_within
from sijill.core.errors import InvalidInput, NotFound
from sijill.core.pg_copy import read_query
from sijill.core.settings import Settings
from sijill.programs import benefits
from sijill.programs.benefits import parse_formula
from sijill.programs.conditions import MICRO, Condition, decide, effects, parse_conditions
from sijill.programs.cycles import Cycle, parse_cycle
from sijill.programs.entitlement_models import DUE, HELD, REDUCED, SUSPENDED
from sijill.programs.models import ProgramRun, ProgramVersion
from sijill.programs.overlaps import (
    Ceiling,
    enrolled_in,
    incompatible,
    others_amounts,
    overlap_violations,
    parse_ceiling,
)
from sijill.programs.recipients import choose, members_on
from sijill.programs.spec import _CODE, ProgramSpec, load_spec, parse_spec
from sijill.security.area_scope import run_area
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.targeting.service import load_snapshot

ENTITLEMENT_COLUMNS = (
    "household_id", "person_id", "formula_minor", "days", "amount_minor", "status", "reason",
)  # fmt: skip


@dataclass
class Plan:
    spec: ProgramSpec
    run: ProgramRun
    cycle: Cycle
    area_id: int | None
    conditions: tuple[Condition, ...]
    ceiling: Ceiling | None
    entitlements: pl.DataFrame  # ENTITLEMENT_COLUMNS
    decisions: pl.DataFrame  # conditions.DECISION_SCHEMA
    violations: pl.DataFrame  # household_id, rule

    def summary(self) -> dict[str, Any]:
        """Counts only: what a report, the record of a generation and the audit may say."""
        rows = self.entitlements
        by_status = {k: int(v) for k, v in rows["status"].value_counts().iter_rows()}
        rules = self.violations["rule"].str.split(":").list.first()
        outcomes = {
            condition.name: {
                k: int(v)
                for k, v in self.decisions.filter(pl.col("condition") == condition.name)["outcome"]
                .value_counts()
                .iter_rows()
            }
            for condition in self.conditions
        }
        return {
            "by_status": by_status,
            "prorated": int((rows["days"] < self.cycle.days).sum()),
            "not_assessed": int(rows["reason"].str.contains("not_assessed").fill_null(False).sum()),
            "overlaps": {k: int(v) for k, v in rules.value_counts().iter_rows()},
            "conditions": outcomes,
        }


def latest_run(session: Session, program: str) -> ProgramRun:
    run = session.scalars(
        select(ProgramRun)
        .where(ProgramRun.program == program, ProgramRun.finished_at.is_not(None))
        .order_by(ProgramRun.id.desc())
        .limit(1)
    ).first()
    if run is None:
        raise NotFound(f"program {program} has not run yet (sijill programs run SPEC)")
    return run


def run_spec(session: Session, run: ProgramRun, spec_path: Path | None) -> ProgramSpec:
    """The spec the run used: the file given (refused unless it has the run's rule hash), or
    the version stored when it first ran."""
    if spec_path is not None:
        spec = load_spec(spec_path)
        if spec.code != run.program or spec.digest != run.digest:
            raise InvalidInput(
                f"{spec_path.name}: not the spec of {run.program}'s latest run (run {run.id}, "
                f"version {run.version}, rule hash {run.digest[:12]})"
            )
        return spec
    body = session.get(ProgramVersion, (run.program, run.version)).body
    return parse_spec(_revived(body), f"{run.program} v{run.version}")


def _revived(body: dict[str, Any]) -> dict[str, Any]:
    """A stored body as the YAML reader gave it: the store keeps dates and decimals as text."""
    document = dict(body)
    parameters = {}
    for name, parameter in (body.get("parameters") or {}).items():
        values = {}
        for start, value in parameter["values"].items():
            entry = value.get("value") if isinstance(value, dict) else value
            if isinstance(entry, str):
                with contextlib.suppress(ArithmeticError):
                    entry = Decimal(entry)
            revived = {**value, "value": entry} if isinstance(value, dict) else entry
            values[date.fromisoformat(start)] = revived
        parameters[name] = {**parameter, "values": values}
    document["parameters"] = parameters
    return document


def plan(
    engine: Engine,
    settings: Settings,
    *,
    principal: Principal,
    program: str,
    cycle: str,
    spec_path: Path | None = None,
    area_code: str | None = None,
    permission: Permission = Permission.ENTITLEMENTS_GENERATE,
) -> Plan:
    """Every entitlement of the cycle for the households in the user's scope, not written."""
    if not _CODE.match(program):
        raise InvalidInput(f"'{program}' is not a program code")
    with Session(engine) as session:
        principal.require(permission)
        area_id = run_area(
            session, principal, permission, area_code,
            whole_registry="Generating entitlements over the whole registry",
        )  # fmt: skip
        area_ids = None if area_id is None else areas_within(session, [area_id])
        run = latest_run(session, program)
        spec = run_spec(session, run, spec_path)
        # The run may have covered more than the user's area (a national run, generated area
        # by area): its snapshot is read as the installation's, and only the households in
        # the user's scope (`households` below) are ever kept from it.
        snapshot = load_snapshot(
            session, settings, Principal.system("entitlements"), run.snapshot_id
        )
    period = parse_cycle(spec.cycle, cycle)
    formula = parse_formula(spec)
    if formula is None:
        raise InvalidInput(f"program {program} has no benefit formula: nothing to pay")
    conditions = parse_conditions(spec.document)
    ceiling = parse_ceiling(spec)
    work = settings.work_dir
    households = enrolled_in(engine, work, [program], period, area_ids).drop("program")
    names = sorted(formula.columns() - set(spec.parameters))
    features = (
        snapshot.columns(["household_id", *names])
        .with_columns(pl.col("household_id").cast(pl.Int64))
        .join(households.select("household_id"), on="household_id", how="semi")
    )
    scores = {name: _scores(engine, work, run_id) for name, run_id in run.score_runs.items()}
    amounts = formula_amounts(spec, formula, spec.values_on(period.first), features, scores)
    records, before = _compliance(engine, work, program, period)
    decisions = decide(conditions, households, records, before)
    frame = (
        households.join(amounts, on="household_id", how="left")
        .join(effects(conditions, decisions), on="household_id", how="left")
        .with_columns(
            assessed=pl.col("formula_minor").is_not_null(),
            formula_minor=pl.col("formula_minor").fill_null(0),
            keep_micro=pl.col("keep_micro").fill_null(MICRO),
            suspended=pl.col("suspended").fill_null(False),
        )
        .with_columns(
            amount_minor=prorated(
                pl.col("formula_minor") * pl.col("days") * pl.col("keep_micro"),
                period.days * MICRO,
                formula.rounding,
            )
        )
        .join(incompatible(engine, work, spec, period, households), on="household_id", how="left")
        .rename({"reason": "incompatible"})
    )
    others = pl.DataFrame(schema={"household_id": pl.Int64, "others_minor": pl.Int64})
    if ceiling is not None:
        others = others_amounts(engine, work, ceiling, period, spec.currency)
    frame = frame.join(others, on="household_id", how="left").with_columns(
        pl.col("others_minor").fill_null(0)
    )
    violations = overlap_violations(frame, ceiling)
    frame = _capped(frame, ceiling)
    day = min(period.last, clock.utcnow().date())
    chosen = choose(members_on(engine, work, day, area_ids), spec.recipient, day)
    frame = frame.join(chosen, on="household_id", how="left")
    return Plan(
        spec=spec, run=run, cycle=period, area_id=area_id, conditions=conditions,
        ceiling=ceiling, entitlements=_statused(frame), decisions=decisions,
        violations=violations,
    )  # fmt: skip


def formula_amounts(
    spec: ProgramSpec,
    formula: benefits.Formula,
    values: dict,
    features: pl.DataFrame,
    scores: dict[str, pl.DataFrame],
) -> pl.DataFrame:
    """household_id, formula_minor: the formula for a full cycle, one DuckDB statement."""
    joins = "".join(
        f' LEFT JOIN "score_{name}" ON "score_{name}".household_id = features.household_id'
        for name in scores
    )
    scored = ", ".join(["features.*", *(f'"score_{n}".score AS "{n}"' for n in scores)])
    amount = benefits.amount_sql(formula, values, spec.minor_units)
    statement = (
        f"WITH scored AS (SELECT {scored} FROM features{joins}) "
        f"SELECT household_id, {amount} AS formula_minor FROM scored"
    )
    connection = duckdb.connect()
    try:
        connection.register("features", features.to_arrow())
        for name, frame in scores.items():
            connection.register(f"score_{name}", frame.to_arrow())
        result = pl.from_arrow(connection.sql(statement).to_arrow_table())
    finally:
        connection.close()
    return result.cast({"household_id": pl.Int64, "formula_minor": pl.Int64})


def prorated(numerator: pl.Expr, denominator: int, rounding: str) -> pl.Expr:
    """numerator / denominator to a whole number by the rule, exactly (both never negative)."""
    if rounding == "down":
        return numerator // denominator
    if rounding == "half_up":
        return (2 * numerator + denominator) // (2 * denominator)
    quotient = numerator // denominator
    twice = 2 * (numerator - quotient * denominator)
    up = (twice > denominator) | ((twice == denominator) & (quotient % 2 == 1))
    return quotient + up.cast(pl.Int64)


def _capped(frame: pl.DataFrame, ceiling: Ceiling | None) -> pl.DataFrame:
    if ceiling is None:
        return frame.with_columns(capped=pl.lit(False))
    room = pl.max_horizontal(pl.lit(ceiling.amount_minor) - pl.col("others_minor"), pl.lit(0))
    over = pl.col("amount_minor") > room
    return frame.with_columns(
        capped=over, amount_minor=pl.when(over).then(room).otherwise("amount_minor")
    )


def _statused(frame: pl.DataFrame) -> pl.DataFrame:
    unpaid = ~pl.col("assessed") | pl.col("person_id").is_null()
    held = unpaid | pl.col("incompatible").is_not_null()
    reduced = pl.col("capped") | (pl.col("keep_micro") < MICRO)
    reasons = [
        pl.when(~pl.col("assessed")).then(pl.lit("not_assessed")),
        pl.when(pl.col("person_id").is_null()).then(pl.lit("no_recipient")),
        pl.col("incompatible"),
        pl.when(pl.col("conditions") != "").then(pl.col("conditions")),
        pl.when("capped").then(pl.lit("ceiling")),
    ]
    return (
        frame.with_columns(
            status=pl.when(held)
            .then(pl.lit(HELD))
            .when("suspended")
            .then(pl.lit(SUSPENDED))
            .when(reduced)
            .then(pl.lit(REDUCED))
            .otherwise(pl.lit(DUE)),
            reason=pl.concat_str(reasons, separator=";", ignore_nulls=True).str.slice(0, 160),
        )
        .select(
            pl.col("household_id").cast(pl.Int64),
            pl.col("person_id").cast(pl.Int64),
            pl.col("formula_minor").cast(pl.Int64),
            pl.col("days").cast(pl.Int16),
            pl.col("amount_minor").cast(pl.Int64),
            "status",
            pl.when(pl.col("reason") != "").then("reason").alias("reason"),
        )
        .sort("household_id")
    )


def _scores(engine: Engine, work_dir: Path, run_id: int) -> pl.DataFrame:
    query = f"SELECT household_id, score FROM household_score WHERE run_id = {int(run_id)}"
    return read_query(engine, query, {"household_id": pl.Int64, "score": pl.Float64}, work_dir)


def _compliance(
    engine: Engine, work_dir: Path, program: str, period: Cycle
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """This cycle's imported compliance, and the previous cycle's decisions."""
    records = read_query(
        engine,
        "SELECT household_id, condition, CASE WHEN compliant THEN 1 ELSE 0 END "
        "FROM compliance_record "
        f"WHERE program = '{program}' AND cycle = '{period.name}'",
        {"household_id": pl.Int64, "condition": pl.String, "compliant": pl.Int8},
        work_dir,
    )
    before = read_query(
        engine,
        "SELECT household_id, condition, missed, kept, CASE WHEN suspended THEN 1 ELSE 0 END "
        "FROM compliance_decision "
        f"WHERE program = '{program}' AND cycle = '{period.previous().name}'",
        {"household_id": pl.Int64, "condition": pl.String, "missed": pl.Int32,
         "kept": pl.Int32, "suspended": pl.Int8},
        work_dir,
    )  # fmt: skip
    return (
        records.with_columns(pl.col("compliant").cast(pl.Boolean)),
        before.with_columns(pl.col("suspended").cast(pl.Boolean)),
    )
