"""Approving a prepared batch (four eyes, its files' hash recorded) and releasing it to its
provider (the hash checked again, the money moved to the provider's clearing account).

A payment officer sees and acts on the batches of the governorates in their scope; a batch
outside it answers as one that does not exist.
"""

import shutil
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.areas import Area
from sijill.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from sijill.core.pg_copy import query_frame
from sijill.core.settings import Settings
from sijill.payments import ledger
from sijill.payments.allocation import Counters, lock
from sijill.payments.files import batch_folder
from sijill.payments.models import (
    APPROVED,
    PREPARED,
    RECONCILED,
    RELEASED,
    SENT,
    PaymentBatch,
    PaymentInstruction,
)
from sijill.payments.pause import pause_point
from sijill.payments.providers import folder_digest, provider_named
from sijill.programs.writes import write_rows
from sijill.security.audit.service import append
from sijill.security.principal import Principal
from sijill.security.roles import Permission

RECORD = "payment_batch"


def _visible(
    session: Session, principal: Principal, permission: Permission, batch_id: int, *,
    for_update: bool = True,
):  # fmt: skip
    """The batch, if it lies in the user's areas for `permission`; else the answer about a
    batch that does not exist."""
    batch = session.get(PaymentBatch, batch_id, with_for_update=for_update)
    scope = principal.scope(session, permission)
    if batch is None or not (
        scope.national if batch.area_id is None else scope.allows(batch.area_id)
    ):
        raise NotFound(f"There is no payment batch {batch_id}")
    return batch


def approve(engine: Engine, settings: Settings, *, principal: Principal, batch_id: int) -> dict:
    """A second payment officer approves a prepared batch: its files are validated again and
    their hash recorded; release will refuse files that differ from it."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        principal.require(Permission.PAYMENTS_APPROVE)
        batch = _visible(session, principal, Permission.PAYMENTS_APPROVE, batch_id)
        if batch.status != PREPARED:
            raise Conflict(f"payment batch {batch_id} is {batch.status}, not prepared")
        if batch.prepared_by == principal.username:
            raise Forbidden(
                f"you prepared payment batch {batch_id}: another payment officer approves it "
                "(four eyes)"
            )
        if batch.file_hash is None:
            raise Conflict(
                f"payment batch {batch_id} has no file yet: run `sijill payments prepare` "
                "again to write it"
            )
        folder = batch_folder(settings, batch.id)
        digest = folder_digest(folder)
        if digest != batch.file_hash:
            raise Conflict(
                f"the files of payment batch {batch_id} changed after they were written: refused"
            )
        provider_named(settings, batch.provider).validate(folder)
        batch.status = APPROVED
        batch.approved_by = principal.username
        batch.approved_at = clock.utcnow()
        batch.approved_hash = digest
        principal.audit(
            "payments.approve", "ok", RECORD, str(batch.id), permission=Permission.PAYMENTS_APPROVE
        )
        append(session, principal.take_audit())
    return describe(batch)


def release(engine: Engine, settings: Settings, *, principal: Principal, batch_id: int) -> dict:
    """Hand an approved batch to its provider: refused if its files are not exactly those
    approved. Its instructions become sent and their money moves to the provider's clearing
    account; the files are copied to `<payments_dir>/outbox/<provider>/` for transfer.
    Releasing a released batch changes nothing."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        principal.require(Permission.PAYMENTS_PREPARE)
        lock(session)
        batch = _visible(session, principal, Permission.PAYMENTS_PREPARE, batch_id)
        unchanged = batch.status in (RELEASED, RECONCILED)
        folder = batch_folder(settings, batch.id)
        if not unchanged:
            if batch.status != APPROVED:
                raise Conflict(f"payment batch {batch_id} is {batch.status}: approve it first")
            if folder_digest(folder) != batch.approved_hash:
                raise Conflict(
                    f"the files of payment batch {batch_id} are not those approved: refused"
                )
            _send(session, batch, principal)
            pause_point("release-before-commit")
    # After the commit, and again on a repeated release: a process killed in between leaves
    # the batch released, and the outbox is filled by the next release of it.
    if batch.purged_at is None and folder.is_dir():
        outbox = settings.payments_path / "outbox" / batch.provider
        outbox.mkdir(mode=0o700, parents=True, exist_ok=True)
        for path in sorted(folder.iterdir()):
            target = outbox / f"B{batch.id}-{path.name}"
            if not target.exists():
                shutil.copyfile(path, target.with_suffix(".part"))
                target.with_suffix(".part").replace(target)
    return {**describe(batch), "unchanged": unchanged}


def _send(session: Session, batch: PaymentBatch, principal: Principal) -> None:
    """The batch's instructions sent: the money of each moves to the provider's clearing."""
    instructions = query_frame(
        session,
        "SELECT id, program, cycle, household_id, amount_minor, currency "
        f"FROM payment_instruction WHERE batch_id = {int(batch.id)} AND status = '{PREPARED}'",
        {"id": pl.Int64, "program": pl.String, "cycle": pl.String,
         "household_id": pl.Int64, "amount_minor": pl.Int64, "currency": pl.String},
    )  # fmt: skip
    legs = ledger.moves(
        "instruct", instructions.with_columns(pl.lit(batch.provider).alias("provider")),
        Counters.start(session), source=f"batch:{batch.id}", recorded_at=clock.utcnow(),
    )  # fmt: skip
    write_rows(session, ledger.table(), legs)
    session.execute(
        update(PaymentInstruction)
        .where(PaymentInstruction.batch_id == batch.id, PaymentInstruction.status == PREPARED)
        .values(status=SENT)
    )
    batch.status = RELEASED
    batch.released_by = principal.username
    batch.released_at = clock.utcnow()
    principal.audit(
        "payments.release", "ok", RECORD, str(batch.id), permission=Permission.PAYMENTS_PREPARE
    )
    append(session, principal.take_audit())


def describe(batch: PaymentBatch, area: str | None = None) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": batch.id, "run_id": batch.run_id, "cycle": batch.cycle, "provider": batch.provider,
        "area": area, "currency": batch.currency, "minor_units": batch.minor_units,
        "value_date": batch.value_date.isoformat(), "status": batch.status,
        "payments": batch.payments, "instructions": batch.instructions,
        "total_minor": batch.total_minor, "files": (batch.file_name or "").split(",")
        if batch.file_name else [], "file_hash": batch.file_hash,
        "prepared_by": batch.prepared_by, "prepared_at": when(batch.prepared_at),
        "approved_by": batch.approved_by, "approved_at": when(batch.approved_at),
        "released_by": batch.released_by, "released_at": when(batch.released_at),
    }  # fmt: skip


def list_batches(
    session: Session, principal: Principal, cycle: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    principal.require(Permission.PAYMENTS_READ)
    scope = principal.scope(session, Permission.PAYMENTS_READ)
    query = select(PaymentBatch, Area.code).outerjoin(Area, Area.id == PaymentBatch.area_id)
    if cycle:
        query = query.where(PaymentBatch.cycle == cycle.strip())
    if status:
        query = query.where(PaymentBatch.status == status)
    found = []
    for batch, area in session.execute(query.order_by(PaymentBatch.id)):
        if scope.national if batch.area_id is None else scope.allows(batch.area_id):
            found.append(describe(batch, area))
    return found


def get_batch(session: Session, principal: Principal, batch_id: int) -> dict[str, Any]:
    principal.require(Permission.PAYMENTS_READ)
    batch = _visible(session, principal, Permission.PAYMENTS_READ, batch_id, for_update=False)
    area = session.scalar(select(Area.code).where(Area.id == batch.area_id))
    return describe(batch, area)


def parse_batch_id(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise InvalidInput(f"{text!r} is not a payment batch number") from None
