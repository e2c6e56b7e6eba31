"""`/audit/records`: the audit log for auditors and administrators of the whole country.

An audit record names the records it is about but not their areas, so the log cannot be cut
to a district: a district auditor reads households through the registry routes (each read
audited) and the log itself is for those who audit the whole registry.
"""

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from sijill.api import PrincipalDep, SessionDep
from sijill.core.errors import Forbidden
from sijill.security.audit import latest
from sijill.security.roles import Permission

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditRecordPublic(BaseModel):
    seq: int
    at: str = Field(description="UTC, ISO 8601 with microseconds")
    actor: str
    role: str | None
    action: str
    outcome: str
    record_type: str | None
    record_id: str | None
    purpose: str | None
    request_id: str | None
    hash: str


class AuditRecordsPublic(BaseModel):
    data: list[AuditRecordPublic]


@router.get(
    "/records", operation_id="read_audit_log", summary="The latest audit records, newest first"
)
def read_audit_log(
    session: SessionDep,
    principal: PrincipalDep,
    actor: Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$")] = None,
    record_id: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditRecordsPublic:
    action = Permission.AUDIT_READ
    if not principal.scope(session, action).national:
        principal.audit(action, "denied", "audit", None)
        raise Forbidden("The audit log is open to auditors of the whole country only")
    records = latest(session, actor=actor, record_id=record_id, limit=limit)
    principal.audit(action, "ok", "audit", None)
    return AuditRecordsPublic(
        data=[AuditRecordPublic.model_validate(r, from_attributes=True) for r in records]
    )
