"""The audit log (`GET /audit/records`), for those `security.audit.log` lets read it: auditors
and administrators of the whole country. Newest first, by user or by record, a page at a
time; reading it is itself audited, as through the API and the CLI."""

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from sijill.security.audit.log import read_log
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.web.render import page
from sijill.web.routing import page_router
from sijill.web.session import page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
PAGE_SIZE = 100
Filter = Annotated[str, Query(max_length=128, pattern=r"^[^\x00]*$")]


@router.get("/audit", name="web_audit")
def audit_log(
    request: Request,
    principal: PrincipalDep,
    actor: Filter = "",
    record_id: Filter = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    actor, record_id = actor.strip(), record_id.strip()
    # A refusal (403) leaves the transaction with its own audit record appended.
    with transaction(request, principal) as session:
        records = read_log(
            session,
            principal,
            action=Permission.AUDIT_READ,
            actor=actor or None,
            record_id=record_id or None,
            before=before,
            limit=PAGE_SIZE + 1,
        )
    older = records[PAGE_SIZE - 1].seq if len(records) > PAGE_SIZE else None
    return page(
        request,
        "audit.html",
        records=records[:PAGE_SIZE],
        actor=actor,
        record_id=record_id,
        older=older,
        first=before is None,
    )
