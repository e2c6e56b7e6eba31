"""Dedup as a job (kind "dedup", `sijill.jobs`): `sijill dedup` runs it in the foreground,
`POST /linkage/dedup` in the background of the API; either way `/jobs/{id}` shows it. Linking
an outside list likewise (kind "link": `sijill link`, `POST /linkage/link`)."""

import contextlib
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sijill.jobs.context import JobContext
from sijill.jobs.kinds import job_kind
from sijill.linkage.dedup import DedupReport, run_dedup
from sijill.linkage.link import LinkReport, run_link
from sijill.security.roles import Permission

DEDUP_JOB = "dedup"


@dataclass(frozen=True)
class DedupParams:
    area_code: str | None = None
    model: dict[str, Any] | None = None  # a saved model, read and checked before the job
    save_model: str | None = None
    threshold: float | None = None


def outcome(report: DedupReport) -> dict[str, Any]:
    """The figures of a run, as the job shows them: counts and versions, never a record."""
    figures = asdict(report)
    figures["seconds"] = round(report.seconds, 1)
    return figures


@job_kind(DEDUP_JOB, Permission.LINKAGE_RUN)
def run_dedup_job(ctx: JobContext, params: DedupParams) -> DedupReport:
    from pathlib import Path

    report = run_dedup(
        ctx.engine,
        ctx.settings,
        principal=ctx.principal,
        area_code=params.area_code,
        model=params.model,
        save_model=Path(params.save_model) if params.save_model else None,
        threshold=params.threshold,
        job_id=ctx.job_id,
        stage=ctx.stage,
    )
    ctx.outcome = outcome(report)
    return report


LINK_JOB = "link"


@dataclass(frozen=True)
class LinkParams:
    path: Path
    kind: str
    list_name: str | None = None  # as the records name the list: the file's own name
    mapping: Path | None = None
    model: dict[str, Any] | None = None
    threshold: float | None = None
    as_of: date | None = None
    report: Path | None = None  # None: next to the list
    upload: Path | None = None  # an upload's own folder: the list goes when the job ends


def _forget_upload(params: LinkParams) -> None:
    if params.upload is None:
        return
    params.path.unlink(missing_ok=True)
    if params.mapping is not None:
        params.mapping.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        params.path.parent.rmdir()
        params.upload.rmdir()  # kept when it holds the report


def link_outcome(report: LinkReport) -> dict[str, Any]:
    """The figures of a link run: counts and versions, never a line's content."""
    figures = asdict(report)
    figures["seconds"] = round(report.seconds, 1)
    figures.pop("report_path")
    return figures


@job_kind(LINK_JOB, Permission.LINKAGE_RUN, cleanup=_forget_upload)
def run_link_job(ctx: JobContext, params: LinkParams) -> LinkReport:
    report = run_link(
        ctx.engine,
        ctx.settings,
        principal=ctx.principal,
        path=params.path,
        kind=params.kind,
        list_name=params.list_name,
        mapping=params.mapping,
        model=params.model,
        threshold=params.threshold,
        as_of=params.as_of,
        report_path=params.report,
        job_id=ctx.job_id,
        stage=ctx.stage,
    )
    ctx.outcome = link_outcome(report)
    ctx.result_path = Path(report.report_path) if report.report_path else None
    return report
