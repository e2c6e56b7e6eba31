"""Targeting runs as jobs (`sijill.jobs`): the commands run them in the foreground, the API in
the background; either way `/jobs/{id}` shows them."""

import shutil
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sijill.jobs.context import JobContext
from sijill.jobs.kinds import job_kind
from sijill.security.roles import Permission
from sijill.targeting.runs import RunReport, fit_survey, run_mpi, score_pmt
from sijill.targeting.service import take_snapshot

SNAPSHOT_JOB, FIT_JOB, PMT_JOB, MPI_JOB = "feature_snapshot", "pmt_fit", "pmt_score", "mpi"
EVALUATE_JOB = "targeting_evaluate"


@dataclass(frozen=True)
class SnapshotParams:
    as_of: date | None = None
    area_code: str | None = None


@dataclass(frozen=True)
class FitParams:
    survey: Path
    poverty_line: Decimal
    method: str = "wls"
    regions: bool = False
    folds: int = 5
    as_of: date | None = None
    upload: Path | None = None  # an upload's own folder: its files go when the job ends


@dataclass(frozen=True)
class PmtParams:
    model_version: str
    as_of: date | None = None
    area_code: str | None = None
    snapshot_id: int | None = None


@dataclass(frozen=True)
class MpiParams:
    config: Path | None = None
    as_of: date | None = None
    area_code: str | None = None
    snapshot_id: int | None = None


@dataclass(frozen=True)
class EvaluateParams:
    reference: Path
    out_dir: Path
    pmt_versions: tuple[str, ...] = ()
    use_mpi: bool = True
    mpi_config: Path | None = None
    designs_file: Path | None = None
    coverage: float | None = None
    budget: Decimal | None = None
    transfer: Decimal = Decimal(1)
    per_person: bool = False
    poverty_line: Decimal | None = None
    as_of: date | None = None
    area_code: str | None = None
    snapshot_id: int | None = None
    source: str | None = None  # the import source the reference's keys come from
    force: bool = False
    upload: Path | None = None  # an upload's folder: the reference goes, the report stays


def run_outcome(report: RunReport) -> dict[str, Any]:
    """A run's figures as the job shows them: counts, versions and aggregates, never a
    household."""
    figures = asdict(report)
    figures["as_of"] = report.as_of.isoformat()
    figures["seconds"] = round(report.seconds, 1)
    return figures


@job_kind(SNAPSHOT_JOB, Permission.TARGETING_RUN)
def run_snapshot_job(ctx: JobContext, params: SnapshotParams) -> dict[str, Any]:
    snapshot = take_snapshot(
        ctx.engine,
        ctx.settings,
        principal=ctx.principal,
        as_of=params.as_of,
        area_code=params.area_code,
        stage=ctx.stage,
    )
    record = snapshot.record
    ctx.outcome = {
        "snapshot_id": record.id,
        "as_of": record.as_of.isoformat(),
        "households": record.households,
        "households_without_consent": record.households_without_consent,
        "catalogue_version": record.catalogue_version,
    }
    return ctx.outcome


def _forget_upload(params: FitParams) -> None:
    if params.upload is not None:
        shutil.rmtree(params.upload, ignore_errors=True)


@job_kind(FIT_JOB, Permission.TARGETING_FIT, cleanup=_forget_upload)
def run_fit_job(ctx: JobContext, params: FitParams) -> dict[str, Any]:
    artifact = fit_survey(
        ctx.engine,
        principal=ctx.principal,
        survey=params.survey,
        poverty_line=params.poverty_line,
        method=params.method,
        regions=params.regions,
        folds=params.folds,
        as_of=params.as_of,
        stage=ctx.stage,
    )
    ctx.outcome = {
        "version": artifact["version"],
        "method": artifact["method"],
        "terms": len(artifact["terms"]),
        "households": artifact["data_source"]["households"],
        "validation": artifact["validation"],
    }
    return artifact


@job_kind(PMT_JOB, Permission.TARGETING_RUN)
def run_pmt_job(ctx: JobContext, params: PmtParams) -> RunReport:
    report = score_pmt(
        ctx.engine,
        ctx.settings,
        principal=ctx.principal,
        model_version=params.model_version,
        as_of=params.as_of,
        area_code=params.area_code,
        snapshot_id=params.snapshot_id,
        job_id=ctx.job_id,
        stage=ctx.stage,
    )
    ctx.outcome = run_outcome(report)
    return report


@job_kind(MPI_JOB, Permission.TARGETING_RUN)
def run_mpi_job(ctx: JobContext, params: MpiParams) -> RunReport:
    report = run_mpi(
        ctx.engine,
        ctx.settings,
        principal=ctx.principal,
        config=params.config,
        as_of=params.as_of,
        area_code=params.area_code,
        snapshot_id=params.snapshot_id,
        job_id=ctx.job_id,
        stage=ctx.stage,
    )
    ctx.outcome = run_outcome(report)
    return report


def _forget_reference(params: EvaluateParams) -> None:
    if params.upload is not None:
        params.reference.unlink(missing_ok=True)
        for stray in params.upload.glob("*.yaml"):
            stray.unlink(missing_ok=True)


@job_kind(EVALUATE_JOB, Permission.TARGETING_RUN, cleanup=_forget_reference)
def run_evaluate_job(ctx: JobContext, params: EvaluateParams):
    from sijill.targeting.evaluate import run_evaluation

    values = asdict(params)
    values.pop("upload")
    values["pmt_versions"] = list(params.pmt_versions)
    report = run_evaluation(
        ctx.engine, ctx.settings, principal=ctx.principal, stage=ctx.stage, **values
    )
    ctx.outcome = {
        "snapshot_id": report.snapshot_id,
        "households": report.households,
        "reference_rows": report.reference_rows,
        "unmatched": report.unmatched,
        "designs": report.designs,
        "files": list(report.files),
    }
    ctx.result_path = report.folder
    return report
