"""Generating a cycle's entitlements, approving them (four eyes), and reading them.

A generation writes, in one transaction: the generation's record (`entitlement_cycle`), one
entitlement per household in the program during the cycle in the user's scope (COPY on
PostgreSQL), the compliance decisions, and one audit record. Generating the same program,
cycle and area again writes nothing and says so; a generation not yet approved may be
replaced (`replace=True`: its rows are deleted and written anew from the current data). An
approved cycle never changes.

Approval is by a program officer other than the one who generated it. Payments read approved
cycles only, through `approved_entitlements`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.areas import Area
from sijill.core.errors import Conflict, Forbidden, NotFound
from sijill.core.settings import Settings
from sijill.programs.entitlement_models import (
    APPROVED,
    GENERATED,
    PAYABLE,
    ComplianceDecision,
    Entitlement,
    EntitlementCycle,
)
from sijill.programs.entitlements import ENTITLEMENT_COLUMNS, Plan, plan
from sijill.programs.writes import write_rows
from sijill.security.area_scope import run_area
from sijill.security.audit.service import append
from sijill.security.principal import Principal
from sijill.security.roles import Permission

RECORD = "entitlement_cycle"
Stage = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class GenerationReport:
    batch_id: int
    program: str
    cycle: str
    run_id: int
    status: str
    households: int
    total_minor: int
    currency: str
    summary: dict[str, Any] = field(default_factory=dict)
    unchanged: bool = False  # generated before: nothing written
    replaced: bool = False


def _find(
    session: Session, program: str, cycle: str, area_id: int | None
) -> EntitlementCycle | None:
    area = (
        EntitlementCycle.area_id.is_(None)
        if area_id is None
        else EntitlementCycle.area_id == area_id
    )
    return session.scalars(
        select(EntitlementCycle).where(
            EntitlementCycle.program == program, EntitlementCycle.cycle == cycle, area
        )
    ).first()


def _report(batch: EntitlementCycle, **flags: bool) -> GenerationReport:
    return GenerationReport(
        batch_id=batch.id, program=batch.program, cycle=batch.cycle, run_id=batch.run_id,
        status=batch.status, households=batch.households, total_minor=batch.total_minor,
        currency=batch.currency, summary=batch.summary, **flags,
    )  # fmt: skip


def generate(
    engine: Engine,
    settings: Settings,
    *,
    principal: Principal,
    program: str,
    cycle: str,
    spec_path: Path | None = None,
    area_code: str | None = None,
    replace: bool = False,
    stage: Stage = _quiet,
) -> GenerationReport:
    with Session(engine, expire_on_commit=False) as session:
        principal.require(Permission.ENTITLEMENTS_GENERATE)
        area_id = run_area(
            session, principal, Permission.ENTITLEMENTS_GENERATE, area_code,
            whole_registry="Generating entitlements over the whole registry",
        )  # fmt: skip
        earlier = _find(session, program, cycle.strip(), area_id)
    if earlier is not None and not replace:
        return _report(earlier, unchanged=True)
    if earlier is not None and earlier.status == APPROVED:
        raise Conflict(f"cycle {earlier.cycle} of {program} is approved: it cannot be replaced")
    stage("computing the entitlements")
    planned = plan(
        engine, settings, principal=principal, program=program, cycle=cycle,
        spec_path=spec_path, area_code=area_code,
    )  # fmt: skip
    summary = planned.summary()
    stage(f"overlaps: {summary['overlaps'] or 'none'}")
    rows = planned.entitlements
    total = int(rows.filter(pl.col("status").is_in(PAYABLE))["amount_minor"].sum())
    with Session(engine, expire_on_commit=False) as session, session.begin():
        if earlier is not None:
            current = session.get(EntitlementCycle, earlier.id, with_for_update=True)
            if current is None or current.status != GENERATED:
                raise Conflict(f"cycle {earlier.cycle} of {program} changed meanwhile: try again")
            for table in (Entitlement, ComplianceDecision):
                session.execute(delete(table).where(table.batch_id == earlier.id))
            session.delete(current)
            session.flush()
        _refuse_overlap(session, planned)
        batch = EntitlementCycle(
            program=program, cycle=planned.cycle.name, area_id=planned.area_id,
            first_day=planned.cycle.first, last_day=planned.cycle.last, status=GENERATED,
            run_id=planned.run.id, version=planned.spec.version, digest=planned.spec.digest,
            generated_by=principal.username, generated_at=clock.utcnow(),
            households=rows.height, total_minor=total, currency=planned.spec.currency,
            summary=summary,
        )  # fmt: skip
        session.add(batch)
        session.flush()
        stage("recording the entitlements")
        keys = [pl.lit(program).alias("program"), pl.lit(planned.cycle.name).alias("cycle")]
        batch_id = pl.lit(batch.id, pl.Int64).alias("batch_id")
        write_rows(
            session, Entitlement.__table__, rows.select(*keys, batch_id, *ENTITLEMENT_COLUMNS)
        )
        write_rows(
            session,
            ComplianceDecision.__table__,
            planned.decisions.select(*keys, batch_id, pl.all()),
        )
        principal.audit(
            "entitlements.generate", "ok", RECORD, str(batch.id),
            permission=Permission.ENTITLEMENTS_GENERATE,
        )  # fmt: skip
        append(session, principal.take_audit())
    return _report(batch, replaced=earlier is not None)


def _refuse_overlap(session: Session, planned: Plan) -> None:
    """Another area's generation of the same cycle already holds some of these households
    (an area and one inside it): refused, never paid twice."""
    of_cycle = (Entitlement.program == planned.spec.code, Entitlement.cycle == planned.cycle.name)
    # Usually the cycle's first generation: one count, instead of a million IDs sent over.
    if not session.scalar(select(func.count()).where(*of_cycle)):
        return
    held = pl.Series(session.scalars(select(Entitlement.household_id).where(*of_cycle)).all())
    taken = planned.entitlements.filter(pl.col("household_id").is_in(held.implode())).height
    if taken:
        raise Conflict(
            f"{taken} of these households already have entitlements for cycle "
            f"{planned.cycle.name} of {planned.spec.code}, generated for another area"
        )


def approve(
    engine: Engine, *, principal: Principal, program: str, cycle: str, area_code: str | None = None
) -> GenerationReport:
    """Approve a generated cycle for payment: refused to the officer who generated it."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        principal.require(Permission.ENTITLEMENTS_APPROVE)
        area_id = run_area(
            session, principal, Permission.ENTITLEMENTS_APPROVE, area_code,
            whole_registry="Approving entitlements over the whole registry",
        )  # fmt: skip
        found = _find(session, program, cycle.strip(), area_id)
        if found is None:
            raise NotFound(f"cycle {cycle} of {program} has not been generated in that area")
        batch = session.get(EntitlementCycle, found.id, with_for_update=True)
        if batch.status == APPROVED:
            raise Conflict(f"cycle {cycle} of {program} is already approved")
        if batch.generated_by == principal.username:
            raise Forbidden(
                f"you generated cycle {cycle} of {program}: another program officer approves "
                "it (four eyes)"
            )
        batch.status = APPROVED
        batch.approved_by = principal.username
        batch.approved_at = clock.utcnow()
        principal.audit(
            "entitlements.approve", "ok", RECORD, str(batch.id),
            permission=Permission.ENTITLEMENTS_APPROVE,
        )  # fmt: skip
        append(session, principal.take_audit())
    return _report(batch)


def cycle_records(
    session: Session, principal: Principal, program: str, cycle: str | None = None
) -> list[dict[str, Any]]:
    """A program's generations (one cycle's, given `cycle`) in the user's scope: who
    generated and approved them, and their counts; never a household."""
    principal.require(Permission.PROGRAMS_READ)
    scope = principal.scope(session, Permission.PROGRAMS_READ)
    query = (
        select(EntitlementCycle, Area.code)
        .outerjoin(Area, Area.id == EntitlementCycle.area_id)
        .where(EntitlementCycle.program == program)
    )
    if cycle is not None:
        query = query.where(EntitlementCycle.cycle == cycle.strip())
    records = []
    for batch, area in session.execute(
        query.order_by(EntitlementCycle.first_day, EntitlementCycle.id)
    ):
        if not (scope.national if batch.area_id is None else scope.allows(batch.area_id)):
            continue
        records.append({
            "id": batch.id, "program": batch.program, "cycle": batch.cycle, "area": area,
            "first_day": batch.first_day.isoformat(), "last_day": batch.last_day.isoformat(),
            "status": batch.status, "run_id": batch.run_id, "version": batch.version,
            "generated_by": batch.generated_by, "generated_at": batch.generated_at.isoformat(),
            "approved_by": batch.approved_by,
            "approved_at": batch.approved_at.isoformat() if batch.approved_at else None,
            "households": batch.households, "total_minor": batch.total_minor,
            "currency": batch.currency, "summary": batch.summary,
        })  # fmt: skip
    if not records:
        raise NotFound(f"program {program} has no generated cycle {cycle or ''} in your scope")
    return records


def approved_entitlements(
    session: Session, program: str, cycle: str, *, payable_only: bool = True
) -> pl.DataFrame:
    """The entitlements of a program's cycle that payments may use: those of approved
    generations only (a generated, unapproved cycle is not here), and of them, unless
    `payable_only` is False, only the due and reduced ones with something to pay (held and
    suspended entitlements are not paid). Columns: household_id, person_id (the recipient),
    amount_minor, status, reason, batch_id. The caller checks its own permission and scope:
    this reads, it does not decide who may."""
    query = (
        select(
            Entitlement.household_id,
            Entitlement.person_id,
            Entitlement.amount_minor,
            Entitlement.status,
            Entitlement.reason,
            Entitlement.batch_id,
        )  # fmt: skip
        .join(EntitlementCycle, EntitlementCycle.id == Entitlement.batch_id)
        .where(
            Entitlement.program == program,
            Entitlement.cycle == cycle,
            EntitlementCycle.status == APPROVED,
        )
    )
    if payable_only:
        query = query.where(Entitlement.status.in_(PAYABLE), Entitlement.amount_minor > 0)
    schema = {
        "household_id": pl.Int64, "person_id": pl.Int64, "amount_minor": pl.Int64,
        "status": pl.String, "reason": pl.String, "batch_id": pl.Int64,
    }  # fmt: skip
    rows = session.execute(query.order_by(Entitlement.household_id)).all()
    return pl.DataFrame(rows, schema=schema, orient="row")
