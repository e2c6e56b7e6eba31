"""`/payments`: runs (prepare, as a job), batches (approve, release), providers' reports
(reconcile, as a job), totals, the ledger's check; and `/households/{id}/payments`, who got
what, when and how."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Path, Query, UploadFile, status
from pydantic import BaseModel, Field

from sijill.core.problems import problem_responses
from sijill.jobs.deps import StartJobDep
from sijill.jobs.schemas import JobPublic
from sijill.payments.batches import approve, get_batch, list_batches, release
from sijill.payments.jobs import (
    PREPARE_JOB,
    RECONCILE_JOB,
    PrepareParams,
    check_prepare,
    receive_report,
)
from sijill.payments.reports import check_ledger, household_history, totals
from sijill.programs.cycles import CYCLE_PATTERN
from sijill.registry.api import HouseholdId
from sijill.security.deps import PrincipalDep, SessionDep, SettingsDep

router = APIRouter(prefix="/payments", tags=["payments"])
household_router = APIRouter(tags=["payments"])
BatchId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a payment batch's number")]


class PrepareRequest(BaseModel):
    cycle: str = Field(..., pattern=CYCLE_PATTERN, description="2026-11 or 2026-Q4")
    area_code: str | None = Field(None, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    consolidate: bool = Field(False, description="one payment per household across programs")
    value_date: date | None = Field(None, description="default: today (next business day)")


@router.post(
    "/runs",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="start_payment_run",
    responses=problem_responses(404, 409, 429),
    summary="Prepare a cycle's payments (instructions, batches, files) as a job",
)
def start_payment_run(
    body: Annotated[PrepareRequest, Body()],
    session: SessionDep,
    principal: PrincipalDep,
    start: StartJobDep,
) -> JobPublic:
    """Refused at once (404) when no approved entitlement of the cycle exists; the job's
    outcome has the counts, the amounts and the holds by reason."""
    params = PrepareParams(body.cycle, body.area_code, body.consolidate, body.value_date)
    check_prepare(session, principal, params)
    return start(PREPARE_JOB, params, principal)


@router.get(
    "/batches",
    operation_id="list_payment_batches",
    summary="The payment batches of your areas",
)
def read_batches(
    session: SessionDep,
    principal: PrincipalDep,
    cycle: Annotated[str | None, Query(pattern=CYCLE_PATTERN)] = None,
    batch_status: Annotated[
        str | None,
        Query(alias="status", pattern="^(prepared|approved|released|reconciled)$"),
    ] = None,
) -> dict[str, Any]:
    return {"data": list_batches(session, principal, cycle, batch_status)}


@router.get(
    "/batches/{batch_id}",
    operation_id="read_payment_batch",
    responses=problem_responses(404),
    summary="One payment batch: provider, area, counts, amounts, who prepared and approved it",
)
def read_batch(batch_id: BatchId, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    return get_batch(session, principal, batch_id)


@router.post(
    "/batches/{batch_id}/approve",
    operation_id="approve_payment_batch",
    responses=problem_responses(404, 409),
    summary="Approve a prepared batch: never by the officer who prepared it (four eyes)",
)
def approve_batch(
    batch_id: BatchId, session: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> dict[str, Any]:
    return approve(session.get_bind(), settings, principal=principal, batch_id=batch_id)


@router.post(
    "/batches/{batch_id}/release",
    operation_id="release_payment_batch",
    responses=problem_responses(404, 409),
    summary="Release an approved batch to its provider, if its files are those approved",
)
def release_batch(
    batch_id: BatchId, session: SessionDep, settings: SettingsDep, principal: PrincipalDep
) -> dict[str, Any]:
    return release(session.get_bind(), settings, principal=principal, batch_id=batch_id)


@router.post(
    "/reports",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="start_payment_reconciliation",
    responses=problem_responses(422, 429),
    summary="Ingest a provider's report (pain.002, result file) as a job",
)
def start_reconciliation(
    settings: SettingsDep,
    principal: PrincipalDep,
    start: StartJobDep,
    report: Annotated[UploadFile, File(description="the provider's report")],
    provider: Annotated[str, Form(pattern=r"^[a-z0-9_]{2,32}$")],
) -> JobPublic:
    """The same file twice changes nothing; lines matching no payment are kept and counted."""
    return receive_report(
        settings, principal, report.file, report.filename, provider,
        lambda params: start(RECONCILE_JOB, params, principal),
    )  # fmt: skip


@router.get(
    "/totals",
    operation_id="read_payment_totals",
    summary="Per program and cycle: entitled, sent, paid, failed, returned, outstanding",
)
def read_totals(
    session: SessionDep,
    principal: PrincipalDep,
    program: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9-]{1,47}$")] = None,
    cycle: Annotated[str | None, Query(pattern=CYCLE_PATTERN)] = None,
) -> dict[str, Any]:
    """Amounts in minor units of each currency, for the households of your areas."""
    return {"data": totals(session, principal, program, cycle)}


@router.get(
    "/ledger/check",
    operation_id="check_payment_ledger",
    summary="Prove the ledger: balanced moves, each entitlement paid once or open",
)
def read_ledger_check(session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    report = check_ledger(session, principal)
    return {
        "ok": report.ok, "moves": report.moves, "legs": report.legs,
        "unbalanced_moves": report.unbalanced_moves, "balances": report.balances,
        "entitlements": report.entitlements, "paid_once": report.paid_once,
        "open": report.open, "wrong_entitlements": report.wrong_entitlements,
        "instructions": report.instructions, "wrong_instructions": report.wrong_instructions,
        "problems": report.problems,
    }  # fmt: skip


@household_router.get(
    "/households/{household_id}/payments",
    operation_id="read_household_payments",
    responses=problem_responses(404),
    summary="Who got what, when and how: a household's payments and the ledger's moves",
)
def read_household_payments(
    household_id: HouseholdId, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    records = household_history(session, principal, str(household_id))
    for record in records:
        for key in ("released_at", "settled_at"):
            if record[key] is not None and hasattr(record[key], "isoformat"):
                record[key] = record[key].isoformat()
    from sijill.core.ids import format_id

    return {"household_id": format_id(household_id), "payments": records}
