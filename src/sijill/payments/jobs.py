"""Payment runs and report ingestion as jobs (`sijill.jobs`): the commands run them in the
foreground, the API and the pages in the background; either way `/jobs/{id}` shows them. What
the API and the pages check before starting one is here, said once."""

import secrets
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sijill.core.errors import NotFound
from sijill.core.settings import Settings
from sijill.jobs.context import JobContext
from sijill.jobs.kinds import job_kind
from sijill.payments.prepare import PrepareReport, prepare
from sijill.payments.providers import provider_named
from sijill.payments.reconcile import reconcile
from sijill.programs.entitlement_models import APPROVED, Entitlement, EntitlementCycle
from sijill.registry.bulk.jobs import private_folder, save_upload
from sijill.security.area_scope import run_area
from sijill.security.keys.keyring import current_keyring
from sijill.security.principal import Principal
from sijill.security.roles import Permission

PREPARE_JOB = "payment_prepare"
RECONCILE_JOB = "payment_reconcile"


@dataclass(frozen=True)
class PrepareParams:
    cycle: str
    area_code: str | None = None
    consolidate: bool = False
    value_date: date | None = None


@dataclass(frozen=True)
class ReconcileParams:
    path: Path
    provider: str
    upload: Path  # the uploaded report's own folder: it goes when the job ends


Started = TypeVar("Started")


def check_prepare(session: Session, principal: Principal, params: PrepareParams) -> None:
    """What is checked before a run is started, by the API and the pages alike: the
    permission, the area in the user's scope, and an approved entitlement of the cycle waiting
    (else NotFound, at once, rather than a job that finds nothing)."""
    principal.require(Permission.PAYMENTS_PREPARE)
    run_area(
        session, principal, Permission.PAYMENTS_PREPARE, params.area_code,
        whole_registry="Preparing payments for the whole registry",
    )  # fmt: skip
    waiting = session.scalar(
        select(func.count())
        .select_from(Entitlement)
        .join(EntitlementCycle, EntitlementCycle.id == Entitlement.batch_id)
        .where(Entitlement.cycle == params.cycle, EntitlementCycle.status == APPROVED)
    )
    if not waiting:
        raise NotFound(f"no approved entitlement of cycle {params.cycle} waits for payment")


def receive_report(
    settings: Settings,
    principal: Principal,
    report: BinaryIO,
    filename: str | None,
    provider: str,
    start: Callable[[ReconcileParams], Started],
) -> Started:
    """A provider's report kept in a private folder of its own and its job started with
    `start`; the folder goes with the job, or at once if it does not start."""
    principal.require(Permission.PAYMENTS_RECONCILE)
    provider_named(settings, provider)  # an unknown provider is refused at once
    folder = private_folder(settings.work_dir) / secrets.token_hex(16)
    folder.mkdir(mode=0o700)
    try:
        name = "".join(c for c in (filename or "report") if c.isalnum() or c in "._-")
        path = folder / (name[:100] or "report")
        save_upload(report, path)
        return start(ReconcileParams(path, provider, folder))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


@job_kind(PREPARE_JOB, Permission.PAYMENTS_PREPARE)
def prepare_job(ctx: JobContext, params: PrepareParams) -> PrepareReport:
    report = prepare(
        ctx.engine, ctx.settings, current_keyring(), principal=ctx.principal,
        cycle=params.cycle, area_code=params.area_code, consolidate=params.consolidate,
        value_date=params.value_date, stage=ctx.stage,
    )  # fmt: skip
    figures = asdict(report)
    figures["value_date"] = report.value_date.isoformat()
    ctx.outcome = figures  # counts and amounts, never a household
    return report


def _forget_upload(params: ReconcileParams) -> None:
    shutil.rmtree(params.upload, ignore_errors=True)


@job_kind(RECONCILE_JOB, Permission.PAYMENTS_RECONCILE, cleanup=_forget_upload)
def reconcile_job(ctx: JobContext, params: ReconcileParams) -> dict:
    ctx.stage("reading the report")
    summary = reconcile(
        ctx.engine, ctx.settings, principal=ctx.principal, path=params.path,
        provider=params.provider,
    )  # fmt: skip
    ctx.outcome = summary
    return summary
