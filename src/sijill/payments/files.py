"""Writing a prepared batch's files, streamed from its instructions.

The instructions are read in transfer order through a server-side cursor and the instruments'
details decrypted a few thousand at a time, so writing a million payments holds a few
thousand in memory. Each batch has its own folder (`<payments_dir>/batch-<id>`), emptied
before writing: a file half written by a killed process is never mistaken for the batch's.
"""

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from sijill.core.settings import Settings
from sijill.payments.models import PREPARED, PaymentBatch
from sijill.payments.pause import pause_point
from sijill.payments.providers import BatchHeader, PaymentLine, folder_digest, provider_named
from sijill.security.keys.keyring import Keyring

DECRYPT_CHUNK = 5_000
DETAILS_FIELD = "payment_instrument"


def batch_folder(settings: Settings, batch_id: int) -> Path:
    return settings.payments_path / f"batch-{batch_id}"


def batch_reference(batch: PaymentBatch) -> str:
    """The batch's message ID in its files (<= 35 characters), which reports answer with."""
    return f"SIJILL-{batch.cycle}-B{batch.id}"


def write_batch_files(
    engine: Engine, settings: Settings, keyring: Keyring, *, stage: Callable[[str], None]
) -> int:
    """Write the files of every prepared batch that has none yet; return how many batches."""
    with Session(engine) as session:
        pending = list(
            session.scalars(
                select(PaymentBatch.id)
                .where(PaymentBatch.status == PREPARED, PaymentBatch.file_hash.is_(None))
                .order_by(PaymentBatch.id)
            )
        )
    for batch_id in pending:
        _write_one(engine, settings, keyring, batch_id, stage)
    return len(pending)


def _write_one(engine: Engine, settings: Settings, keyring: Keyring, batch_id: int, stage) -> None:
    with Session(engine) as session:
        batch = session.get(PaymentBatch, batch_id)
        provider = provider_named(settings, batch.provider)
        folder = batch_folder(settings, batch.id)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(mode=0o700, parents=True)
        area = session.scalar(text("SELECT code FROM area WHERE id = :id"), {"id": batch.area_id})
        header = BatchHeader(
            reference=batch_reference(batch), provider=batch.provider, currency=batch.currency,
            minor_units=batch.minor_units, value_date=batch.value_date,
            created_at=batch.prepared_at, payments=batch.payments,
            total_minor=batch.total_minor, remittance=f"SIJILL {batch.cycle}", area=area,
        )  # fmt: skip
        stage(f"batch {batch.id}: {batch.payments} payments to {batch.provider}")
        with engine.connect() as connection:
            names = provider.write(
                header, _lines(connection, keyring, batch.id, batch.payments), folder
            )
        batch.file_name = ",".join(names)[:200]
        batch.file_hash = folder_digest(folder)
        session.commit()


def _lines(connection, keyring: Keyring, batch_id: int, payments: int) -> Iterator[PaymentLine]:
    rows = connection.execution_options(stream_results=True, yield_per=DECRYPT_CHUNK).execute(
        text("""
        SELECT i.transfer_ref, SUM(i.amount_minor), MIN(i.household_id), MIN(pi.details)
        FROM payment_instruction i JOIN payment_instrument pi ON pi.id = i.instrument_id
        WHERE i.batch_id = :batch
        GROUP BY i.transfer_ref ORDER BY i.transfer_ref
        """),
        {"batch": batch_id},
    )
    written = 0
    for chunk in rows.partitions(DECRYPT_CHUNK):
        details = keyring.decrypt_many(DETAILS_FIELD, [row[3] for row in chunk])
        for (reference, amount, household, _), clear in zip(chunk, details, strict=True):
            yield PaymentLine(
                transfer_ref=reference, amount_minor=int(amount),
                registry_id=str(household), details=json.loads(clear),
            )  # fmt: skip
            written += 1
            if written == max(1, payments // 2):
                pause_point("file-half-written")
