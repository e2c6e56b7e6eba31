"""`/audit/records`: the audit log, for those `sijill.security.audit.log` lets read it."""

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from sijill.security.audit.log import read_log
from sijill.security.deps import PrincipalDep, SessionDep
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
    records = read_log(
        session,
        principal,
        action=Permission.AUDIT_READ,
        actor=actor,
        record_id=record_id,
        limit=limit,
    )
    return AuditRecordsPublic(
        data=[AuditRecordPublic.model_validate(r, from_attributes=True) for r in records]
    )
