"""Importing compliance with a program's conditions for a cycle.

The file (CSV, XLSX or Parquet) has the columns household_id, condition and compliant
(true/false, yes/no or 1/0). A row that cannot be used is rejected with its line and the
reason, never its content: an ID that is not a number, a condition the program does not have,
a household not in the registry or not in the user's scope (the same reason for both), a
household and condition given twice. The other rows are recorded; a row for a household and
condition already imported for that cycle replaces it. A cycle whose entitlements have been
approved takes no more compliance: what it paid was decided.
"""

from dataclasses import dataclass
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.errors import Conflict, InvalidInput, NotFound
from sijill.core.files.contract import REJECTS, ROW
from sijill.core.files.tabular import read_table
from sijill.programs.conditions import parse_conditions
from sijill.programs.cycles import parse_cycle
from sijill.programs.entitlement_models import APPROVED, ComplianceRecord, EntitlementCycle
from sijill.programs.models import ProgramVersion
from sijill.programs.writes import in_batches, write_rows
from sijill.registry.models import Household
from sijill.security.audit.service import append
from sijill.security.principal import Principal
from sijill.security.roles import Permission

COLUMNS = ("household_id", "condition", "compliant")
_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")
_BATCH_ROWS = 200_000


@dataclass
class ComplianceReport:
    program: str
    cycle: str
    accepted: int
    rejects: pl.DataFrame  # row, reason, message (never a row's content)
    by_condition: dict[str, dict[str, int]]  # condition -> {compliant, non_compliant}


def program_document(session: Session, program: str) -> tuple[int, dict]:
    """The latest registered version of a program's spec: (version, body)."""
    found = session.execute(
        select(ProgramVersion.version, ProgramVersion.body)
        .where(ProgramVersion.program == program)
        .order_by(ProgramVersion.version.desc())
        .limit(1)
    ).first()
    if found is None:
        raise NotFound(f"There is no program {program} (a program exists once it has run)")
    return found.version, found.body


def import_compliance(
    engine: Engine, *, principal: Principal, program: str, cycle: str, path: Path
) -> ComplianceReport:
    with Session(engine) as session, session.begin():
        principal.require(Permission.COMPLIANCE_IMPORT)
        scope = principal.scope(session, Permission.COMPLIANCE_IMPORT)
        version, body = program_document(session, program)
        period = parse_cycle(str(body.get("cycle")), cycle)
        conditions = parse_conditions(body, f"{program} v{version}")
        if not conditions:
            raise InvalidInput(f"program {program} has no conditions to comply with")
        approved = session.scalar(
            select(EntitlementCycle.id).where(
                EntitlementCycle.program == program,
                EntitlementCycle.cycle == period.name,
                EntitlementCycle.status == APPROVED,
            )
        )
        if approved is not None:
            raise Conflict(
                f"cycle {period.name} of {program} is approved: its compliance can no longer change"
            )
        names = [condition.name for condition in conditions]
        rows, rejects = _read(path)
        checked = _checked(rows, names)
        ids = checked.filter(pl.col("reason").is_null())["household_id"].unique().to_list()
        allowed: set[int] = set()
        for chunk in in_batches(sorted(ids)):
            found = session.execute(
                select(Household.id, Household.area_id).where(Household.id.in_(chunk))
            ).all()
            allowed |= {row.id for row in found if scope.allows(row.area_id)}
        checked = checked.with_columns(
            reason=pl.when(
                pl.col("reason").is_null() & ~pl.col("household_id").is_in(sorted(allowed))
            )
            .then(pl.lit("unknown_household"))
            .otherwise("reason"),
            message=pl.when(
                pl.col("reason").is_null() & ~pl.col("household_id").is_in(sorted(allowed))
            )
            .then(pl.lit("there is no household with this ID in your scope"))
            .otherwise("message"),
        )
        good = checked.filter(pl.col("reason").is_null())
        bad = checked.filter(pl.col("reason").is_not_null()).select(
            pl.col(ROW).alias("row"), "reason", "message"
        )
        rejects = pl.concat([rejects, bad.cast(REJECTS)]).sort("row")
        present = good["condition"].unique().to_list()
        for chunk in in_batches(sorted(good["household_id"].unique().to_list())):
            session.execute(
                delete(ComplianceRecord).where(
                    ComplianceRecord.program == program,
                    ComplianceRecord.cycle == period.name,
                    ComplianceRecord.condition.in_(present),
                    ComplianceRecord.household_id.in_(chunk),
                )
            )
        write_rows(
            session,
            ComplianceRecord.__table__,
            good.select(
                pl.lit(program).alias("program"),
                pl.lit(period.name).alias("cycle"),
                "household_id",
                "condition",
                "compliant",
                pl.lit(principal.username).alias("imported_by"),
                pl.lit(clock.utcnow()).alias("imported_at"),
            ),
        )
        principal.audit(
            "compliance.import", "ok", "compliance", f"{program}/{period.name}",
            permission=Permission.COMPLIANCE_IMPORT,
        )  # fmt: skip
        append(session, principal.take_audit())
    counts = {
        name: {
            "compliant": int(good.filter((pl.col("condition") == name) & "compliant").height),
            "non_compliant": int(
                good.filter((pl.col("condition") == name) & ~pl.col("compliant")).height
            ),
        }
        for name in names
    }
    return ComplianceReport(program, period.name, good.height, rejects, counts)


def _read(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    frames, rejects = [], []
    for batch in read_table(path, _BATCH_ROWS):
        rejects.append(batch.rejects)
        if batch.rows.height:
            frames.append(batch.rows)
    rows = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    missing = [column for column in COLUMNS if column not in rows.columns]
    if missing and frames:
        raise InvalidInput(f"{path.name}: the column(s) {', '.join(missing)} are missing")
    if not frames:
        rows = pl.DataFrame(schema={**dict.fromkeys(COLUMNS, pl.String), ROW: pl.Int64})
    return rows.select(*COLUMNS, ROW), pl.concat(rejects).cast(REJECTS)


def _checked(rows: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """The rows typed, each with the first reason it cannot be used (NULL when it can)."""
    text = rows.with_columns(pl.col(c).str.strip_chars() for c in COLUMNS)
    flag = pl.col("compliant").str.to_lowercase()
    typed = text.with_columns(
        household_id=pl.when(pl.col("household_id").str.contains(r"^\d{1,18}$"))
        .then(pl.col("household_id"))
        .cast(pl.Int64, strict=False),
        compliant=pl.when(flag.is_in(_TRUE)).then(True).when(flag.is_in(_FALSE)).then(False),
    )
    repeated = (
        pl.struct("household_id", "condition").is_duplicated()
        & ~pl.struct("household_id", "condition").is_first_distinct()
    )
    problems = [
        (pl.col("household_id").is_null(), "bad_household_id", "household_id is not an ID"),
        (
            ~pl.col("condition").is_in(names).fill_null(False),
            "unknown_condition",
            f"condition is not one of the program's ({', '.join(names)})",
        ),
        (pl.col("compliant").is_null(), "bad_compliant", "compliant is true or false"),
        (repeated, "repeated", "the household and condition are on an earlier line too"),
    ]
    reason = pl.lit(None, pl.String)
    message = pl.lit(None, pl.String)
    for condition, code, words in reversed(problems):
        reason = pl.when(condition).then(pl.lit(code)).otherwise(reason)
        message = pl.when(condition).then(pl.lit(words)).otherwise(message)
    return typed.with_columns(reason=reason, message=message)
