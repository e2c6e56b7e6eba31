"""Whether the audit chain is broken, known without walking it again.

Walking ten million records takes seconds, so neither `/health` nor an append can afford it.
What they check instead, in a few index lookups:

- the latest verification (`audit_check`): a break it found stays until a verification finds
  the chain intact, which after tampering only an administrator's repair can bring about;
- the chain's tip: no record beyond the head, and the head's hash is its last record's (or the
  start's). A record forged past the head, a head moved back or forward, or a last record
  replaced shows here at once, before any verification.

While the chain is broken no audited action is done (503, `AuditChainBroken`), except signing
in and the audit commands an administrator needs to mend it: their records wait in
`audit_quarantine`, which verify reports and the repair appends to the chain.
"""

from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from sijill.core.db import transaction
from sijill.core.errors import SijillError
from sijill.core.i18n import N_
from sijill.security.audit.models import GENESIS_HASH, AuditCheck, AuditQuarantine

# Raised by the PostgreSQL appender (migration 0009) when the chain is broken.
BROKEN_SQLSTATE = "SJA01"

INTACT, BROKEN = "intact", "broken"

# Whose records are kept aside, not refused, while the chain is broken: people must still be
# able to sign in (an administrator among them), and the repair needs its own commands.
QUARANTINED_ACTIONS = frozenset(
    {"auth.sign_in", "auth.refresh", "auth.password", "audit.verify", "audit.repair"}
)

_DETAIL = (
    "The audit chain is broken, so this action cannot be recorded and was not done. An "
    "administrator must run `sijill audit verify` and `sijill audit repair`; signing in still "
    "works."
)


class AuditChainBroken(SijillError):
    """The chain is broken: nothing that needs a new audit record may be done until repaired."""

    status = 503
    title = N_("Audit chain broken")
    type = "urn:sijill:problem:audit-chain-broken"

    def __init__(self, detail: str = _DETAIL):
        super().__init__(detail)


# The same conditions as migration 0009's audit_append, for SQLite, about the head as it was
# before this append advanced it (:seq, :hash): true when the chain may not be extended.
GATE_SQL = (
    "SELECT EXISTS (SELECT 1 FROM audit_check WHERE state = 'broken' "
    "AND id = (SELECT max(id) FROM audit_check)) "
    "OR (SELECT max(seq) FROM audit_record) > :seq "
    "OR NOT ((:seq = 0 AND :hash = :genesis) "
    "OR EXISTS (SELECT 1 FROM audit_record WHERE seq = :seq AND hash = :hash))"
)


def is_broken_error(error: BaseException) -> bool:
    """Whether a database error says the chain is broken: the appender's own refusal, or a
    record already where the next one goes (one was forged past the head)."""
    orig = getattr(error, "orig", None) or error
    code = getattr(orig, "sqlstate", None)
    if code == BROKEN_SQLSTATE:
        return True
    words = str(orig)
    return "audit_record" in words and (code == "23505" or "UNIQUE constraint failed" in words)


@dataclass(frozen=True)
class ChainHealth:
    state: str  # intact, broken
    bad_seq: int | None = None
    kind: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == INTACT


def chain_health(session: Session | Connection) -> ChainHealth:
    """The chain's state from the latest verification and its tip: a few index lookups."""
    head = session.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one_or_none()
    if head is None:
        return ChainHealth(BROKEN, 0, "head_missing", "the chain's head row is missing")
    seq, digest = head
    last = session.execute(
        select(AuditCheck.state, AuditCheck.bad_seq, AuditCheck.kind, AuditCheck.problem)
        .order_by(AuditCheck.id.desc())
        .limit(1)
    ).one_or_none()
    if last is not None and last.state == BROKEN:
        return ChainHealth(BROKEN, last.bad_seq, last.kind, last.problem)
    # max() reads one end of the primary key whatever plan is cached; naming the first record
    # beyond the head is left to when there is one.
    last_seq = session.execute(text("SELECT max(seq) FROM audit_record")).scalar()
    if last_seq is not None and last_seq > seq:
        beyond = session.execute(
            text("SELECT min(seq) FROM audit_record WHERE seq > :seq"), {"seq": seq}
        ).scalar()
        words = f"record {beyond} was written outside the chain: its head ends at record {seq}"
        return ChainHealth(BROKEN, beyond, "outside", words)
    if seq == 0:
        tip_ok = digest == GENESIS_HASH
    else:
        tip_ok = (
            session.execute(
                text("SELECT hash FROM audit_record WHERE seq = :seq"), {"seq": seq}
            ).scalar()
            == digest
        )
    if not tip_ok:
        words = f"record {seq} does not match the chain's head (missing, replaced or moved)"
        return ChainHealth(BROKEN, seq, "head_mismatch", words)
    return ChainHealth(INTACT)


def remember(connection: Connection, state: str, at: str, actor: str, report=None) -> None:
    """Note what a verification (or a repair) found, as the latest state of the chain."""
    values = {"at": at, "actor": actor[:128], "state": state, "records": 0}
    if report is not None:
        values.update(
            records=report.checked,
            head_seq=report.head_seq,
            bad_seq=report.bad_seq,
            kind=report.kind,
            problem=(report.problem or "")[:500] or None,
        )
    connection.execute(insert(AuditCheck).values(**values))


def quarantine(sessions: sessionmaker, rows: list[dict]) -> None:
    """Keep the (checked, stamped) records of sign-ins made while the chain is broken."""
    with transaction(sessions) as session:
        session.execute(insert(AuditQuarantine), rows)


def quarantined(session: Session | Connection) -> int:
    return session.execute(select(func.count()).select_from(AuditQuarantine)).scalar() or 0
