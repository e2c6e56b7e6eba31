"""Who got what, when and how: totals per program and cycle, one household's payments, the
ledger's proof, and the retention of payment files. Each read is limited to the user's
areas; a household outside them answers as one that does not exist."""

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, column, select, text
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.db import execute_read
from sijill.core.errors import Forbidden, NotFound
from sijill.core.ids import parse_id
from sijill.core.settings import Settings
from sijill.payments import ledger
from sijill.payments.files import batch_folder
from sijill.payments.models import RECONCILED, RELEASED, PaymentBatch, ProviderReport
from sijill.payments.prepare import version_minor_units
from sijill.registry.lookup import household_area_id
from sijill.security.audit.service import append
from sijill.security.principal import Principal
from sijill.security.roles import Permission


def totals(
    session: Session, principal: Principal, program: str | None = None, cycle: str | None = None
) -> list[dict[str, Any]]:
    """Each row says the minor units its amounts count in: its program's (latest version's)."""
    scope = principal.scope(session, Permission.PAYMENTS_READ)
    rows = ledger.program_totals(session, scope.area_ids, program, cycle)
    units = {
        name: count for (name, _version), count in sorted(version_minor_units(session).items())
    }
    for row in rows:
        row["minor_units"] = units.get(row["program"], 2)
    return rows


def write_xlsx(records: list[dict[str, Any]], columns: list[str], path: Path) -> None:
    """A report as a spreadsheet (amounts as integers of minor units, never floats), written
    beside its place and renamed in, so a reader never sees half a file."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("payments")
    sheet.append(columns)
    for record in records:
        sheet.append([record.get(column) for column in columns])
    partial = path.with_name(path.name + ".part")
    book.save(partial)
    partial.replace(path)


# A household's instructions and holds. Statements made once: built per call, a statement
# costs more Python than PostgreSQL takes to answer it. Read-only (`columns`): the session
# keeps what it knows of the household (its area) across them.
_INSTRUCTIONS = text("""
    SELECT i.id, i.program, i.cycle, i.attempt, i.amount_minor, i.currency, i.status,
           i.reason, b.provider, pi.kind, pi.masked, i.batch_id, b.released_at, i.settled_at,
           i.transfer_ref, b.minor_units
    FROM payment_instruction i
    JOIN payment_batch b ON b.id = i.batch_id
    JOIN payment_instrument pi ON pi.id = i.instrument_id
    WHERE i.household_id = :household ORDER BY i.id
    """).columns(*map(column, (
        "id", "program", "cycle", "attempt", "amount_minor", "currency", "status", "reason",
        "provider", "kind", "masked", "batch_id", "released_at", "settled_at", "transfer_ref",
        "minor_units",
    )))  # fmt: skip
_HELD = text(
    "SELECT program, cycle, reason, amount_minor FROM payment_hold "
    "WHERE household_id = :household ORDER BY cycle, program"
).columns(*map(column, ("program", "cycle", "reason", "amount_minor")))


def household_history(session: Session, principal: Principal, household: str) -> list[dict]:
    """Every instruction of one household (oldest first) with its instrument (masked),
    provider, batch and outcome; each carries the ledger's moves for it."""
    scope = principal.scope(session, Permission.PAYMENTS_READ)
    household_id = parse_id("household", household, "household")
    area_id = household_area_id(session, household_id)
    if area_id is None or not scope.allows(area_id):
        raise NotFound(f"There is no household {household}")
    rows = execute_read(session, _INSTRUCTIONS, {"household": household_id}).all()
    moves = ledger.household_moves(session, household_id)
    records = []
    for row in rows:
        records.append({
            "instruction_id": row[0], "program": row[1], "cycle": row[2], "attempt": row[3],
            "amount_minor": row[4], "currency": row[5], "status": row[6], "reason": row[7],
            "provider": row[8], "instrument": f"{row[9]} {row[10]}", "batch_id": row[11],
            "released_at": row[12], "settled_at": row[13], "transfer_ref": row[14],
            "minor_units": row[15], "moves": [m for m in moves if m["instruction_id"] == row[0]],
        })  # fmt: skip
    held = execute_read(session, _HELD, {"household": household_id}).all()
    for program, cycle, reason, amount in held:
        records.append({
            "instruction_id": None, "program": program, "cycle": cycle, "attempt": None,
            "amount_minor": amount, "currency": None, "status": "held", "reason": reason,
            "provider": None, "instrument": None, "batch_id": None, "released_at": None,
            "settled_at": None, "transfer_ref": None, "minor_units": None, "moves": [],
        })  # fmt: skip
    principal.audit(
        "payments.history", "ok", "household", str(household_id),
        permission=Permission.PAYMENTS_READ,
    )  # fmt: skip
    return records


def check_ledger(session: Session, principal: Principal) -> ledger.CheckReport:
    """The whole ledger's proof: a national scope, since it sums every account."""
    _require_national(session, principal, Permission.PAYMENTS_READ, "Checking the whole ledger")
    return ledger.check(session)


def _require_national(
    session: Session, principal: Principal, permission: Permission, what: str
) -> None:
    if not principal.scope(session, permission).national:
        raise Forbidden(f"{what} needs a scope over the whole country")


def purge(engine: Engine, settings: Settings, *, principal: Principal) -> dict[str, int]:
    """Delete the files of batches released (and reports ingested) longer ago than the
    retention period; what they decided stays in the database."""
    with Session(engine) as session:  # a purge is a payment officer's housekeeping
        _require_national(session, principal, Permission.PAYMENTS_PREPARE, "Purging payment files")
    cutoff = clock.utcnow() - timedelta(days=settings.payment_file_retention_days)
    counts = {"batches": 0, "reports": 0}
    with Session(engine) as session, session.begin():
        for batch in session.scalars(
            select(PaymentBatch).where(
                PaymentBatch.status.in_((RELEASED, RECONCILED)),
                PaymentBatch.released_at < cutoff,
                PaymentBatch.purged_at.is_(None),
            )
        ):
            _remove(batch_folder(settings, batch.id))
            for copy in (settings.payments_path / "outbox" / batch.provider).glob(f"B{batch.id}-*"):
                copy.unlink(missing_ok=True)
            batch.purged_at = clock.utcnow()
            counts["batches"] += 1
        for report in session.scalars(
            select(ProviderReport).where(
                ProviderReport.ingested_at < cutoff, ProviderReport.purged_at.is_(None)
            )
        ):
            for kept in (settings.payments_path / "reports").glob(f"{report.id}-*"):
                kept.unlink(missing_ok=True)
            report.purged_at = clock.utcnow()
            counts["reports"] += 1
        principal.audit("payments.purge", "ok", permission=Permission.PAYMENTS_PREPARE)
        append(session, principal.take_audit())
    return counts


def _remove(folder: Path) -> None:
    if folder.is_dir():
        for path in folder.iterdir():
            path.unlink(missing_ok=True)
        folder.rmdir()
