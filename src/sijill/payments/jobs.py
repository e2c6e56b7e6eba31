"""Payment runs and report ingestion as jobs (`sijill.jobs`): the commands run them in the
foreground, the API in the background; either way `/jobs/{id}` shows them."""

import shutil
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from sijill.jobs.context import JobContext
from sijill.jobs.kinds import job_kind
from sijill.payments.prepare import PrepareReport, prepare
from sijill.payments.reconcile import reconcile
from sijill.security.keys.keyring import current_keyring
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
