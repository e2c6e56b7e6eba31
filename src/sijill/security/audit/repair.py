"""Mending a broken audit chain (`sijill audit repair`), as an administrator, audited.

Nothing is deleted or rewritten. For each break verify finds, first to last, the records it
makes untrustworthy stay where they are and are set aside (`audit_repair`: the range, what
verify said, the head as it was found), and the chain is re-anchored: it resumes after the
range from the hash the next record already carries, or, at the chain's end, from the last
good record's hash. Each repair appends its own record (action `audit.repair`), so a repair
is itself in the chain it mended. Verify then skips the ranges set aside and checks the rest
as before. Once the chain verifies intact, that is remembered (appends resume) and the
records kept in quarantine meanwhile are appended, with the times they were made.
"""

from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, select, text
from sqlalchemy.orm import Session

from sijill.core.db import session_factory, transaction
from sijill.core.errors import SijillError
from sijill.security.audit import service
from sijill.security.audit.chain import BROKEN, INTACT, remember
from sijill.security.audit.models import GENESIS_HASH, AuditQuarantine, AuditRepair
from sijill.security.audit.verify import VerifyReport, verify
from sijill.security.principal import Principal
from sijill.security.roles import Permission

# More breaks than this is not tampering to mend record by record but a chain to restore
# from a backup.
MAX_REPAIRS = 1_000
# Kinds a repair can set aside; an anchor mismatch means the chain was rewritten
# consistently, which only a backup can undo.
_REPAIRABLE = {
    "altered",
    "replaced",
    "inserted",
    "missing",
    "out_of_order",
    "outside",
    "truncated",
    "head_mismatch",
    "head_missing",
    "duplicate",
}


@dataclass
class RepairResult:
    report: VerifyReport  # the chain as verified after the repairs
    repaired: list[tuple[int, int, str]] = field(default_factory=list)  # first, last, kind
    released: int = 0  # records appended from the quarantine


def repair(engine: Engine, principal: Principal) -> RepairResult:
    """Set aside each break verify finds, then resume appends; as a national administrator."""
    sessions = session_factory(engine)
    result = RepairResult(verify(engine))
    while not result.report.ok:
        report = result.report
        if report.kind not in _REPAIRABLE:
            raise SijillError(
                f"The audit chain cannot be repaired here ({report.problem}): restore it from "
                "a backup"
            )
        if len(result.repaired) >= MAX_REPAIRS:
            raise SijillError(
                f"The audit chain has more than {MAX_REPAIRS} breaks: restore it from a backup"
            )
        with transaction(sessions) as session:
            result.repaired.append(_set_aside(session, principal, report))
        result.report = verify(engine)
    with transaction(sessions) as session:
        remember(
            session.connection(), INTACT, service.timestamp(), principal.username, result.report
        )
        waiting = list(session.scalars(select(AuditQuarantine).order_by(AuditQuarantine.id)))
        service.append_recorded(session, [_entry(row) for row in waiting])
        session.execute(
            delete(AuditQuarantine).where(AuditQuarantine.id.in_([r.id for r in waiting]))
        )
        result.released = len(waiting)
    return result


def refuse_unless_administrator(session: Session, principal: Principal) -> None:
    from sijill.core.errors import Forbidden

    permission = Permission.AUDIT_REPAIR
    if not principal.scope(session, permission).national:
        principal.audit("audit.repair", "denied", "audit", None, permission=permission)
        raise Forbidden("Only an administrator of the whole country repairs the audit chain")
    principal.audit("audit.repair", "ok", "audit", None, permission=permission)


def _entry(row: AuditQuarantine) -> tuple[str, service.AuditEntry]:
    names = ("actor", "role", "action", "outcome", "record_type", "record_id", "purpose")
    fields = {name: getattr(row, name) for name in names}
    return row.at, service.AuditEntry(**fields, request_id=row.request_id)


def _scalar(session: Session, sql: str, **params):
    return session.execute(text(sql), params).scalar()


def _range(session: Session, report: VerifyReport, head_seq: int) -> tuple[int, int]:
    """The records a break makes untrustworthy: what verify named, and for a gap or the
    chain's end, all of it."""
    bad = report.bad_seq
    last_record = _scalar(session, "SELECT max(seq) FROM audit_record") or 0
    if report.kind == "head_missing":
        return last_record + 1, last_record  # nothing set aside; the head is made again
    if report.kind == "outside":  # all beyond the head, and any gap before the first
        return head_seq + 1, last_record
    if report.kind == "truncated":
        return bad, head_seq
    if report.kind == "missing":
        following = _scalar(session, "SELECT min(seq) FROM audit_record WHERE seq > :s", s=bad)
        return bad, (following - 1) if following is not None else max(head_seq, bad)
    if report.kind == "inserted" and bad <= 0:
        return _scalar(session, "SELECT min(seq) FROM audit_record"), 0
    return bad, bad


def _set_aside(session: Session, principal: Principal, report: VerifyReport) -> tuple:
    # Locks the head (a no-op update: the head may not move back) so no append interleaves.
    head = session.execute(
        text("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
    ).one_or_none()
    if head is None:
        last_record = _scalar(session, "SELECT max(seq) FROM audit_record") or 0
        digest = _scalar(session, "SELECT hash FROM audit_record WHERE seq = :s", s=last_record)
        session.execute(
            text("INSERT INTO audit_head (id, seq, hash) VALUES (1, :s, :h)"),
            {"s": last_record, "h": digest or GENESIS_HASH},
        )
        head = (last_record, digest or GENESIS_HASH)
    head_seq, head_hash = head
    first, last = _range(session, report, head_seq)
    successor = _scalar(
        session, "SELECT min(prev_hash) FROM audit_record WHERE seq = :s", s=last + 1
    )
    if successor is not None:
        resume = successor  # the chain goes on as it was after the range
    else:
        before = _scalar(session, "SELECT hash FROM audit_record WHERE seq = :s", s=first - 1)
        resume = before if before is not None and first > 1 else GENESIS_HASH
        last_record = _scalar(session, "SELECT max(seq) FROM audit_record") or 0
        session.execute(
            text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"),
            {"s": max(head_seq, last, last_record), "h": resume},
        )
    mended = AuditRepair(
        at=service.timestamp(),
        actor=principal.username,
        kind=report.kind,
        problem=(report.problem or "")[:500],
        first_seq=first,
        last_seq=last,
        resume_hash=resume,
        found_head_seq=head_seq,
        found_head_hash=head_hash,
    )
    session.add(mended)
    session.flush()
    entry = service.AuditEntry(
        actor=principal.username,
        role=principal.roles_for(Permission.AUDIT_REPAIR),
        action="audit.repair",
        outcome="ok",
        record_type="audit_repair",
        record_id=str(mended.id),
    )
    mended.record_seq = service.append_unchecked(session, [entry])
    remember(session.connection(), BROKEN, mended.at, principal.username, report)
    return first, last, report.kind
