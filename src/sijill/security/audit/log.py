"""Who may read the audit log, decided once for the API and the CLI: auditors and
administrators of the whole country.

An audit record names the records it is about but not their areas, so the log cannot be cut
to a district: a district auditor reads households through the registry routes (each read
audited) and the log itself is for those who audit the whole registry.
"""

from sqlalchemy.orm import Session

from sijill.core.errors import Forbidden
from sijill.security.audit.models import AuditRecord
from sijill.security.audit.service import latest
from sijill.security.principal import Principal
from sijill.security.roles import Permission


def require_log_reader(session: Session, principal: Principal, action: str) -> None:
    """Refuse (403, audited) anyone but a national auditor or administrator; note `action`."""
    permission = Permission.AUDIT_READ
    if not principal.scope(session, permission).national:
        principal.audit(action, "denied", "audit", None, permission=permission)
        raise Forbidden("The audit log is open to auditors of the whole country only")
    principal.audit(action, "ok", "audit", None, permission=permission)


def read_log(
    session: Session,
    principal: Principal,
    *,
    action: str,
    actor: str | None = None,
    record_id: str | None = None,
    since: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[AuditRecord]:
    """The latest records, newest first, for a reader `require_log_reader` lets in."""
    require_log_reader(session, principal, action)
    return latest(
        session, actor=actor, record_id=record_id, since=since, before=before, limit=limit
    )
