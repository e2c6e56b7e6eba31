"""`payments prepare`: a cycle's approved entitlements, of every program, into payment
instructions grouped in batches (one per provider, governorate and currency), each written
as its provider's file.

The run works through the registry a slice of households at a time (memory stays flat
however many are paid) inside one transaction: its instructions, holds and ledger moves all
commit together or not at all. The files are written after the commit, from the instructions;
a batch whose file is missing (a process killed while writing) gets it on the next prepare.
Running prepare again pays nothing twice: an entitlement with a live instruction is not read
(and the database's unique index would refuse a second one); entitlements held back, or whose
payment failed, are looked at again.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.areas import Area, areas_within
from sijill.core.errors import NotFound
from sijill.core.settings import Settings
from sijill.payments import ledger
from sijill.payments.allocation import Counters, lock
from sijill.payments.calendar import value_date as business_day
from sijill.payments.files import write_batch_files
from sijill.payments.gate import payable_entitlements
from sijill.payments.models import (
    PREPARED,
    EntitlementPayment,
    PaymentBatch,
    PaymentHold,
    PaymentInstruction,
    PaymentRun,
)
from sijill.payments.pause import pause_point
from sijill.payments.providers import provider_for
from sijill.programs.models import ProgramVersion
from sijill.programs.writes import write_rows
from sijill.security.area_scope import run_area
from sijill.security.audit.service import append
from sijill.security.keys.keyring import Keyring
from sijill.security.principal import Principal
from sijill.security.roles import Permission

SLICE_HOUSEHOLDS = 100_000
Stage = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class PrepareReport:
    run_id: int | None
    cycle: str
    value_date: date
    instructed: int = 0
    payments: int = 0  # lines in files (consolidated instructions are one)
    total_minor: dict[str, int] = field(default_factory=dict)  # by currency
    held: dict[str, int] = field(default_factory=dict)  # by reason
    batches: list[dict[str, Any]] = field(default_factory=list)
    files_written: int = 0


def prepare(
    engine: Engine,
    settings: Settings,
    keyring: Keyring,
    *,
    principal: Principal,
    cycle: str,
    area_code: str | None = None,
    consolidate: bool = False,
    value_date: date | None = None,
    stage: Stage = _quiet,
) -> PrepareReport:
    cycle = cycle.strip()
    with Session(engine) as session:
        principal.require(Permission.PAYMENTS_PREPARE)
        area_id = run_area(
            session, principal, Permission.PAYMENTS_PREPARE, area_code,
            whole_registry="Preparing payments for the whole registry",
        )  # fmt: skip
        scope = principal.scope(session, Permission.PAYMENTS_PREPARE)
        area_ids = (
            scope.area_ids if area_id is None else frozenset(areas_within(session, [area_id]))
        )
    pay_on = business_day(settings, value_date or clock.utcnow().date())
    report = PrepareReport(run_id=None, cycle=cycle, value_date=pay_on)
    # A killed run may have left committed batches without their files: finish those first.
    report.files_written += write_batch_files(engine, settings, keyring, stage=stage)
    try:
        _record_run(
            engine, settings, principal, cycle, area_id, area_ids, consolidate, pay_on, report,
            stage,
        )  # fmt: skip
    except _NothingNew:
        if not report.files_written:
            raise NotFound(
                f"no approved entitlement of cycle {cycle} in your scope waits for payment"
            ) from None
        return report  # a killed run's files written: nothing else was waiting
    stage("writing the payment files")
    report.files_written += write_batch_files(engine, settings, keyring, stage=stage)
    return report


class _NothingNew(Exception):
    """Every approved entitlement in scope is already instructed: nothing to record."""


def _record_run(
    engine: Engine,
    settings: Settings,
    principal: Principal,
    cycle: str,
    area_id: int | None,
    area_ids: frozenset[int] | None,
    consolidate: bool,
    pay_on: date,
    report: PrepareReport,
    stage: Stage,
) -> None:
    with Session(engine) as session:
        areas = _areas(session)
    with Session(engine) as session, session.begin():
        lock(session)
        bounds = _bounds(session, cycle)
        if bounds is None:
            raise _NothingNew
        minor_units = version_minor_units(session)
        run = PaymentRun(
            cycle=cycle, area_id=area_id, consolidated=consolidate, value_date=pay_on,
            prepared_by=principal.username, prepared_at=clock.utcnow(), summary={},
        )  # fmt: skip
        session.add(run)
        session.flush()
        ids = Counters.start(session)
        ids.holds = bool(session.scalar(select(func.count()).where(PaymentHold.cycle == cycle)))
        batches: dict[tuple, PaymentBatch] = {}
        for number, (low, high) in enumerate(bounds, start=1):
            stage(f"households, slice {number} of {len(bounds)}")
            rows = payable_entitlements(session, cycle, area_ids, (low, high))
            if not rows.height:
                continue
            _record_slice(session, settings, run, rows, areas, minor_units, ids, batches, report)
        if not report.instructed and not report.held:
            raise _NothingNew
        for batch in batches.values():
            session.flush()
            report.batches.append(_batch_summary(batch, areas))
        run.summary = {
            "instructed": report.instructed, "payments": report.payments,
            "total_minor": report.total_minor, "held": report.held,
            "batches": [b["id"] for b in report.batches],
        }  # fmt: skip
        report.run_id = run.id
        principal.audit(
            "payments.prepare", "ok", "payment_run", str(run.id),
            permission=Permission.PAYMENTS_PREPARE,
        )  # fmt: skip
        append(session, principal.take_audit())
        pause_point("prepare-before-commit")


def _record_slice(
    session: Session,
    settings: Settings,
    run: PaymentRun,
    rows: pl.DataFrame,
    areas: dict[int, tuple[int | None, str]],
    minor_units: dict[tuple[str, int], int],
    ids: Counters,
    batches: dict[tuple, PaymentBatch],
    report: PrepareReport,
) -> None:
    now = clock.utcnow()
    source = f"run:{run.id}"
    fresh = rows.filter(pl.col("entitled") == 0)
    legs = ledger.moves("entitle", fresh, ids, source=source, recorded_at=now)
    held = rows.filter(pl.col("hold").is_not_null())
    if held.height:
        if ids.holds:
            _forget_holds(session, held.select("program", "cycle", "household_id"))
        write_rows(
            session,
            PaymentHold.__table__,
            held.select(
                "program",
                "cycle",
                "household_id",
                pl.lit(run.id, pl.Int64).alias("run_id"),
                pl.col("hold").alias("reason"),
                "amount_minor",
            ),  # fmt: skip
        )
        for reason, count in held.group_by("hold").len().iter_rows():
            report.held[reason] = report.held.get(reason, 0) + count
    paying = rows.filter(pl.col("hold").is_null())
    if paying.height:
        if ids.holds:
            _forget_holds(session, paying.select("program", "cycle", "household_id"))
        instructions = _instructions(session, settings, run, paying, areas, minor_units, ids)
        instructions = _into_batches(session, run, instructions, batches)
        write_rows(session, PaymentInstruction.__table__, instructions.drop("batch_key"))
        write_rows(
            session,
            EntitlementPayment.__table__,
            instructions.select(
                "program", "cycle", "household_id", pl.col("id").alias("instruction_id")
            ),
        )
        report.instructed += instructions.height
        report.payments += instructions["transfer_ref"].n_unique()
        for currency, total in instructions.group_by("currency").agg(pl.sum("amount_minor")).rows():
            report.total_minor[currency] = report.total_minor.get(currency, 0) + int(total)
    write_rows(session, ledger.table(), legs)


def _instructions(
    session: Session,
    settings: Settings,
    run: PaymentRun,
    paying: pl.DataFrame,
    areas: dict[int, tuple[int | None, str]],
    minor_units: dict[tuple[str, int], int],
    ids: Counters,
) -> pl.DataFrame:
    providers = {
        kind: provider_for(settings, kind).name for kind in paying["instrument_kind"].unique()
    }
    governorate = {area: top for area, (top, _) in areas.items()}
    units = pl.DataFrame(
        [(p, v, u) for (p, v), u in minor_units.items()],
        schema={"program": pl.String, "version": pl.Int64, "minor_units": pl.Int64},
        orient="row",
    )
    frame = (
        paying.sort("household_id", "program")
        .join(units, on=["program", "version"], how="left")
        .with_columns(
            pl.int_range(ids.instruction, ids.instruction + paying.height, dtype=pl.Int64).alias(
                "id"
            ),
            pl.col("instrument_kind").replace_strict(providers).alias("provider"),
            pl.col("area_id").replace_strict(governorate, default=None).alias("governorate"),
            (pl.col("attempts") + 1).cast(pl.Int16).alias("attempt"),
            pl.col("minor_units").fill_null(2),
        )
    )
    ids.instruction += paying.height
    transfer = pl.col("id")
    if run.consolidated:
        # One payment per household and instrument (and currency) across its programs.
        transfer = pl.col("id").min().over("household_id", "currency")
    return frame.with_columns(
        pl.format("SJL{}", transfer.cast(pl.String).str.zfill(12)).alias("transfer_ref"),
        pl.struct("provider", "governorate", "currency", "minor_units").alias("batch_key"),
    )


def _into_batches(
    session: Session, run: PaymentRun, frame: pl.DataFrame, batches: dict[tuple, PaymentBatch]
) -> pl.DataFrame:
    batch_ids = []
    for key in frame["batch_key"].unique(maintain_order=True).to_list():
        key_tuple = (key["provider"], key["governorate"], key["currency"], key["minor_units"])
        batch = batches.get(key_tuple)
        if batch is None:
            batch = PaymentBatch(
                run_id=run.id, cycle=run.cycle, provider=key["provider"],
                area_id=key["governorate"], currency=key["currency"],
                minor_units=key["minor_units"], value_date=run.value_date, status=PREPARED,
                payments=0, instructions=0, total_minor=0, prepared_by=run.prepared_by,
                prepared_at=run.prepared_at,
            )  # fmt: skip
            session.add(batch)
            session.flush()
            batches[key_tuple] = batch
        part = frame.filter(pl.col("batch_key") == key)
        batch.instructions += part.height
        batch.payments += part["transfer_ref"].n_unique()
        batch.total_minor += int(part["amount_minor"].sum())
        batch_ids.append((key, batch.id))
    lookup = pl.DataFrame(
        {"batch_key": [k for k, _ in batch_ids], "batch_id": [b for _, b in batch_ids]}
    )
    return frame.join(lookup, on="batch_key", how="left").select(
        "id", "batch_id", "program", "cycle", "household_id", "attempt", "instrument_id",
        "transfer_ref", "amount_minor", "currency",
        pl.lit(PREPARED).alias("status"), pl.lit(None, pl.String).alias("reason"),
        pl.lit(None, pl.Datetime("us", "UTC")).alias("settled_at"), "batch_key",
    )  # fmt: skip


def _forget_holds(session: Session, keys: pl.DataFrame) -> None:
    """Earlier holds of these entitlements: replaced by this run's verdict."""
    for (program, cycle), part in keys.group_by("program", "cycle"):
        ids = part["household_id"].to_list()
        for start in range(0, len(ids), 10_000):
            session.query(PaymentHold).filter(
                PaymentHold.program == program,
                PaymentHold.cycle == cycle,
                PaymentHold.household_id.in_(ids[start : start + 10_000]),
            ).delete(synchronize_session=False)


def _bounds(session: Session, cycle: str) -> list[tuple[int, int]] | None:
    """Household ID ranges of about SLICE_HOUSEHOLDS payable entitlements each (IDs are
    random, so equal ranges hold about equal numbers). Counting only the payable ones keeps a
    slice's rows, and so the run's memory, the same whether the cycle pays a hundred thousand
    or ten million. (Those already paid are not subtracted: on a table that grows inside the
    run's own transaction the planner's guesses make that anti-join quadratic.)"""
    from sijill.programs.entitlement_models import (
        APPROVED,
        PAYABLE,
        Entitlement,
        EntitlementCycle,
    )

    low, high, count = session.execute(
        select(
            func.min(Entitlement.household_id),
            func.max(Entitlement.household_id),
            func.count(),
        )
        .join(EntitlementCycle, EntitlementCycle.id == Entitlement.batch_id)
        .where(
            Entitlement.cycle == cycle,
            EntitlementCycle.status == APPROVED,
            Entitlement.status.in_(PAYABLE),
            Entitlement.amount_minor > 0,
        )
    ).one()
    if not count:
        return None
    slices = max(1, -(-count // SLICE_HOUSEHOLDS))
    step = -(-(high + 1 - low) // slices)
    return [(start, min(start + step, high + 1)) for start in range(low, high + 1, step)]


def version_minor_units(session: Session) -> dict[tuple[str, int], int]:
    """The minor units each program version counts its amounts in (its spec's setting)."""
    return {
        (program, version): int((body or {}).get("minor_units", 2))
        for program, version, body in session.execute(
            select(ProgramVersion.program, ProgramVersion.version, ProgramVersion.body)
        )
    }


def _areas(session: Session) -> dict[int, tuple[int | None, str]]:
    """Each area's governorate (None for the country itself) and its code."""
    rows = {a.id: (a.parent_id, a.level, a.code) for a in session.scalars(select(Area))}

    def top(area: int) -> int | None:
        seen = 0
        while area is not None and rows[area][1] != "governorate" and seen < 16:
            area, seen = rows[area][0], seen + 1
        return area if area is not None and rows[area][1] == "governorate" else None

    return {area: (top(area), code) for area, (_, _, code) in rows.items()}


def _batch_summary(batch: PaymentBatch, areas: dict) -> dict[str, Any]:
    return {
        "id": batch.id, "provider": batch.provider,
        "area": areas.get(batch.area_id, (None, None))[1] if batch.area_id else None,
        "currency": batch.currency, "payments": batch.payments,
        "instructions": batch.instructions, "total_minor": batch.total_minor,
    }  # fmt: skip
