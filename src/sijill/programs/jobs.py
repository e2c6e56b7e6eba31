"""Program runs as jobs (`sijill.jobs`): the commands run them in the foreground, the API in
the background; either way `/jobs/{id}` shows them."""

import shutil
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sijill.jobs.context import JobContext
from sijill.jobs.kinds import job_kind
from sijill.programs.service import ELIGIBILITY, ProgramReport, run_program
from sijill.security.roles import Permission

PROGRAM_JOB = "program_run"


@dataclass(frozen=True)
class ProgramParams:
    spec: Path
    as_of: date | None = None
    area_code: str | None = None
    snapshot_id: int | None = None
    dry_run: bool = False
    kind: str = ELIGIBILITY
    upload: Path | None = None  # an uploaded spec's own folder: it goes when the job ends


def _forget_upload(params: ProgramParams) -> None:
    if params.upload is not None:
        shutil.rmtree(params.upload, ignore_errors=True)


def report_outcome(report: ProgramReport) -> dict[str, Any]:
    """A run's figures as the job shows them: counts and versions, never a household."""
    figures = asdict(report)
    figures["as_of"] = report.as_of.isoformat()
    return figures


@job_kind(PROGRAM_JOB, Permission.PROGRAMS_RUN, cleanup=_forget_upload)
def run_program_job(ctx: JobContext, params: ProgramParams) -> ProgramReport:
    report = run_program(
        ctx.engine,
        ctx.settings,
        principal=ctx.principal,
        spec_path=params.spec,
        as_of=params.as_of,
        area_code=params.area_code,
        snapshot_id=params.snapshot_id,
        dry_run=params.dry_run,
        kind=params.kind,
        job_id=ctx.job_id,
        stage=ctx.stage,
    )
    ctx.outcome = report_outcome(report)
    return report
