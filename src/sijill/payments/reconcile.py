"""Ingesting a provider's report: each payment it names ends paid, failed (with the reason)
or returned, and the ledger moves its money accordingly.

A report is ingested once: its SHA-256 is recorded, and the same file again changes nothing.
A line that answers no instruction in the user's scope, repeats a reference, or contradicts
what is already known (a failure reported for a payment already paid) is kept in
`provider_report_unmatched` with the reason, never dropped. Everything a report changes
commits in one transaction, with one audit record.
"""

import hashlib
import shutil
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, delete, select, text
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.errors import InvalidInput
from sijill.core.pg_copy import query_frame
from sijill.core.settings import Settings
from sijill.payments import ledger
from sijill.payments.allocation import Counters, lock
from sijill.payments.files import batch_reference
from sijill.payments.models import (
    FAILED,
    PAID,
    RECONCILED,
    RELEASED,
    RETURNED,
    SENT,
    EntitlementPayment,
    PaymentBatch,
    ProviderReport,
    UnmatchedLine,
)
from sijill.payments.pause import pause_point
from sijill.payments.providers import provider_named
from sijill.programs.writes import write_rows
from sijill.security.audit.service import append
from sijill.security.principal import Principal
from sijill.security.roles import Permission

_CHUNK = 200_000
_LINE_SCHEMA = {
    "line": pl.Int64, "reference": pl.String, "outcome": pl.String, "status": pl.String,
    "reason": pl.String,
}  # fmt: skip
# (status now, outcome reported) -> (new status, ledger move); anything else is a conflict.
TRANSITIONS = {
    (SENT, PAID): (PAID, "settle"),
    (SENT, FAILED): (FAILED, "fail"),
    (SENT, RETURNED): (RETURNED, "fail"),  # given back unpaid (cash not collected)
    (PAID, RETURNED): (RETURNED, "return"),
}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def reconcile(
    engine: Engine, settings: Settings, *, principal: Principal, path: Path, provider: str
) -> dict[str, Any]:
    principal.require(Permission.PAYMENTS_RECONCILE)
    if not path.is_file():
        raise InvalidInput(f"{path.name}: no such file")
    sha = file_sha256(path)
    with Session(engine) as session:
        earlier = session.scalar(select(ProviderReport).where(ProviderReport.sha256 == sha))
        if earlier is not None:
            return {**earlier.summary, "report_id": earlier.id, "unchanged": True}
    reader = provider_named(settings, provider)
    header, lines = reader.read_report(path)
    report = _frame(lines)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        lock(session)
        if session.bind.dialect.name == "postgresql":
            # Its joins hash a million payments: in memory, not in batches spilled to disk.
            session.execute(text("SET LOCAL work_mem = '256MB'"))
        scope = principal.scope(session, Permission.PAYMENTS_RECONCILE)
        if header.rejects_whole_file:
            report = _whole_file(session, header, report)
        matched = _match(session, report, scope.area_ids)
        now = clock.utcnow()
        record = ProviderReport(
            sha256=sha, provider=provider, file_name=path.name[:200],
            message_id=(header.message_id or "")[:64] or None, ingested_by=principal.username,
            ingested_at=now, summary={},
        )  # fmt: skip
        session.add(record)
        session.flush()
        summary = _apply(session, record, report, matched, now)
        record.summary = summary
        principal.audit(
            "payments.reconcile", "ok", "provider_report", str(record.id),
            permission=Permission.PAYMENTS_RECONCILE,
        )  # fmt: skip
        append(session, principal.take_audit())
        pause_point("reconcile-before-commit")
    # Kept as received, for as long as the retention setting says (`payments purge`).
    kept = settings.payments_path / "reports"
    kept.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(path, kept / f"{record.id}-{path.name}")
    return {**summary, "report_id": record.id, "unchanged": False}


def _frame(lines) -> pl.DataFrame:
    parts, rows = [], []
    for line in lines:
        rows.append((line.line, line.reference, line.outcome, line.status, line.reason))
        if len(rows) == _CHUNK:
            parts.append(pl.DataFrame(rows, schema=_LINE_SCHEMA, orient="row"))
            rows = []
    parts.append(pl.DataFrame(rows, schema=_LINE_SCHEMA, orient="row"))
    return pl.concat(parts)


def _whole_file(session: Session, header, report: pl.DataFrame) -> pl.DataFrame:
    """A report rejecting a whole file without a line per payment: one failed line per
    payment of the batch it names."""
    batch = next(
        (
            b
            for b in session.scalars(select(PaymentBatch).where(PaymentBatch.status == RELEASED))
            if batch_reference(b) == header.original_message_id
        ),
        None,
    )
    if batch is None:
        return report
    refs = query_frame(
        session,
        f"SELECT DISTINCT transfer_ref FROM payment_instruction WHERE batch_id = {int(batch.id)}"
        f" AND status = '{SENT}' ORDER BY transfer_ref",
        {"reference": pl.String},
    )
    rejected = refs.select(
        pl.lit(0, pl.Int64).alias("line"), "reference", pl.lit(FAILED).alias("outcome"),
        pl.lit("RJCT").alias("status"), pl.lit(header.reason or "RJCT").alias("reason"),
    )  # fmt: skip
    return pl.concat([report, rejected])


def _match(session: Session, report: pl.DataFrame, area_ids) -> pl.DataFrame:
    """The instructions the report's references name, with their batch's area."""
    session.execute(
        text("CREATE TEMP TABLE IF NOT EXISTS report_reference (reference VARCHAR(35))")
    )
    _empty(session, "report_reference")
    write_rows(
        session,
        _temp_table(),
        report.select("reference").unique().filter(pl.col("reference").str.len_chars() <= 35),
    )
    found = query_frame(
        session,
        """SELECT i.id, i.transfer_ref, i.status, i.program, i.cycle, i.household_id,
                  i.amount_minor, i.currency, b.provider, COALESCE(b.area_id, -1), i.batch_id
           FROM report_reference r
           JOIN payment_instruction i ON i.transfer_ref = r.reference
           JOIN payment_batch b ON b.id = i.batch_id""",
        {"id": pl.Int64, "reference": pl.String, "current": pl.String, "program": pl.String,
         "cycle": pl.String, "household_id": pl.Int64, "amount_minor": pl.Int64,
         "currency": pl.String, "provider": pl.String, "area_id": pl.Int64,
         "batch_id": pl.Int64},
    )  # fmt: skip
    _empty(session, "report_reference")
    if area_ids is not None:
        found = found.filter(pl.col("area_id").is_in(list(area_ids)))
    return found


def _empty(session: Session, table: str) -> None:
    """Empty a temporary table of this connection (TRUNCATE frees a million rows at once)."""
    postgres = session.bind.dialect.name == "postgresql"
    session.execute(text(f"{'TRUNCATE' if postgres else 'DELETE FROM'} {table}"))


def _temp_table():
    from sqlalchemy import Column, MetaData, String, Table

    return Table("report_reference", MetaData(), Column("reference", String(35)))


def _apply(session: Session, record: ProviderReport, report: pl.DataFrame, matched, now) -> dict:
    repeated = report.filter(pl.col("reference").is_duplicated() & (pl.col("line") > 0)).filter(
        pl.int_range(pl.len()).over("reference") > 0
    )
    lines = report.join(repeated.select("line"), on="line", how="anti")
    joined = lines.join(matched, on="reference", how="left")
    unmatched = joined.filter(pl.col("id").is_null()).select(
        "line",
        "reference",
        "status",
        pl.lit("no payment with this reference in your scope").alias("why"),
    )
    known = joined.filter(pl.col("id").is_not_null())
    pending = known.filter(pl.col("outcome").is_null())
    decided = known.filter(pl.col("outcome").is_not_null())
    keys = pl.DataFrame(
        [(now_, out, new, move) for (now_, out), (new, move) in TRANSITIONS.items()],
        schema={
            "current": pl.String,
            "outcome": pl.String,
            "new_status": pl.String,
            "move": pl.String,
        },
        orient="row",
    )
    decided = decided.join(keys, on=["current", "outcome"], how="left")
    already = decided.filter(
        pl.col("new_status").is_null() & (pl.col("current") == pl.col("outcome"))
    )
    conflicts = decided.filter(
        pl.col("new_status").is_null() & (pl.col("current") != pl.col("outcome"))
    )
    changes = decided.filter(pl.col("new_status").is_not_null())
    ids = Counters.start(session)
    source = f"report:{record.id}"
    for move, part in changes.group_by("move"):
        write_rows(
            session,
            ledger.table(),
            ledger.moves(move[0], part, ids, source=source, recorded_at=now),
        )
    _update_statuses(session, changes, now)
    _free_entitlements(session, changes.filter(pl.col("new_status").is_in((FAILED, RETURNED))))
    problems = pl.concat(
        [
            unmatched,
            repeated.select(
                "line",
                "reference",
                "status",
                pl.lit("repeats an earlier line of this report").alias("why"),
            ),
            conflicts.select(
                "line",
                "reference",
                "status",
                pl.format("reported {} but the payment is {}", "outcome", "current").alias("why"),
            ),
        ]
    ).unique(subset=["line", "reference"], maintain_order=True)
    write_rows(
        session, UnmatchedLine.__table__,
        problems.select(
            pl.lit(record.id, pl.Int64).alias("report_id"), "line",
            pl.col("reference").str.slice(0, 64), pl.col("status").str.slice(0, 16),
            pl.col("why").str.slice(0, 64).alias("reason"),
        ),
    )  # fmt: skip
    for batch_id in changes["batch_id"].unique().to_list():
        left = session.scalar(
            text("SELECT COUNT(*) FROM payment_instruction WHERE batch_id = :b AND status = :s"),
            {"b": batch_id, "s": SENT},
        )
        if not left:
            session.execute(
                text("UPDATE payment_batch SET status = :r WHERE id = :b AND status = :s"),
                {"r": RECONCILED, "b": batch_id, "s": RELEASED},
            )
    outcome_counts = {
        status: int(changes.filter(pl.col("new_status") == status).height)
        for status in (PAID, FAILED, RETURNED)
    }
    return {
        "lines": report.height, **outcome_counts, "already_known": already.height,
        "pending": pending.height, "unmatched": unmatched.height,
        "repeated": repeated.height, "conflicts": conflicts.height,
    }  # fmt: skip


def _free_entitlements(session: Session, unpaid: pl.DataFrame) -> None:
    """A failed or returned payment is no longer the entitlement's live one: it may be paid
    again, by a later prepare."""
    ids = unpaid["id"].to_list()
    for start in range(0, len(ids), 10_000):
        session.execute(
            delete(EntitlementPayment).where(
                EntitlementPayment.instruction_id.in_(ids[start : start + 10_000])
            )
        )


def _update_statuses(session: Session, changes: pl.DataFrame, now) -> None:
    if not changes.height:
        return
    rows = changes.select(
        "id", pl.col("new_status").alias("status"), pl.col("reason").str.slice(0, 64)
    )
    paid_at = lambda status: now if status == PAID else None  # noqa: E731
    if session.bind.dialect.name == "postgresql":
        session.execute(text(
            "CREATE TEMP TABLE IF NOT EXISTS instruction_change "
            "(id BIGINT, status VARCHAR(10), reason VARCHAR(64))"
        ))  # fmt: skip
        _empty(session, "instruction_change")
        from sqlalchemy import BigInteger, Column, MetaData, String, Table

        table = Table(
            "instruction_change", MetaData(), Column("id", BigInteger), Column("status", String),
            Column("reason", String),
        )  # fmt: skip
        write_rows(session, table, rows)
        session.execute(
            text("""UPDATE payment_instruction i
                    SET status = c.status, reason = c.reason,
                        settled_at = CASE WHEN c.status = 'paid' THEN :now ELSE i.settled_at END
                    FROM instruction_change c WHERE c.id = i.id"""),
            {"now": now},
        )
        _empty(session, "instruction_change")
        return
    session.execute(
        text(
            "UPDATE payment_instruction SET status = :status, reason = :reason, "
            "settled_at = COALESCE(:paid_at, settled_at) WHERE id = :id"
        ),  # fmt: skip
        [{**row, "paid_at": paid_at(row["status"])} for row in rows.to_dicts()],
    )
