"""`/targeting`: the feature catalogue, snapshots, PMT models (fit, read, approve), scoring
runs (PMT, MPI) and their results. Long work answers 202 with a job (`/jobs/{id}`)."""

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Path, UploadFile, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from sijill.core.errors import NotFound
from sijill.core.problems import problem_responses
from sijill.jobs.deps import StartJobDep
from sijill.jobs.schemas import JobPublic
from sijill.registry.bulk.jobs import save_upload
from sijill.security.deps import PrincipalDep, SessionDep, SettingsDep
from sijill.security.roles import Permission
from sijill.targeting.features import FEATURES
from sijill.targeting.jobs import (
    FIT_JOB,
    MPI_JOB,
    PMT_JOB,
    SNAPSHOT_JOB,
    FitParams,
    MpiParams,
    PmtParams,
    SnapshotParams,
)
from sijill.targeting.pmt_models import (
    approve_for,
    get_model,
    list_models,
    model_summary,
    require_model_reader,
)
from sijill.targeting.runs import visible_run
from sijill.targeting.starts import (
    MODEL_VERSION,
    check_models,
    check_run,
    check_selection,
    keep_upload,
    upload_folder,
)

router = APIRouter(prefix="/targeting", tags=["targeting"])
# An upload: its body limit is settings.max_upload_bytes (sijill.api, sijill.middleware).
FIT_UPLOAD_PATH = "/targeting/pmt/models"
_VERSION = MODEL_VERSION
_AREA = Field(None, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$", description="only this area")


class FeaturePublic(BaseModel):
    name: str
    type: str
    unit: str | None
    definition: str
    labels: dict[str, str]


class SnapshotRequest(BaseModel):
    as_of: date | None = Field(None, description="the registry as it was that day")
    area_code: str | None = _AREA


class ScoreRequest(SnapshotRequest):
    model_version: str = Field(..., pattern=_VERSION, description="an approved PMT model")
    snapshot_id: int | None = Field(None, ge=1, le=2**63 - 1, description="a stored snapshot")


class MpiRequest(SnapshotRequest):
    snapshot_id: int | None = Field(None, ge=1, le=2**63 - 1, description="a stored snapshot")


@router.get(
    "/features",
    operation_id="list_features",
    summary="The household feature view: every feature's name, type, unit, definition, labels",
)
def list_features(principal: PrincipalDep) -> list[FeaturePublic]:
    return [FeaturePublic(**f.as_dict()) for f in FEATURES]


@router.post(
    "/snapshots",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="start_feature_snapshot",
    responses=problem_responses(404, 429),
    summary="Compute and keep the feature view of the consenting households in scope, as a job",
)
def start_snapshot(
    session: SessionDep,
    principal: PrincipalDep,
    start: StartJobDep,
    body: Annotated[SnapshotRequest, Body()] = SnapshotRequest(),
) -> JobPublic:
    check_run(session, principal, body.area_code)
    params = SnapshotParams(body.as_of, body.area_code)
    return start(SNAPSHOT_JOB, params, principal)


@router.post(
    "/pmt/models",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="start_pmt_fit",
    responses=problem_responses(429),
    summary="Fit a proxy means test on an uploaded survey and store it for approval, as a job",
)
def start_fit(
    principal: PrincipalDep,
    settings: SettingsDep,
    start: StartJobDep,
    survey: Annotated[
        UploadFile, File(description="household_key, consumption_pc, weight, stratum")
    ],
    households: Annotated[UploadFile, File(description="exchange-format households")],
    persons: Annotated[UploadFile, File(description="exchange-format persons")],
    poverty_line: Annotated[Decimal, Form(gt=0, max_digits=18, decimal_places=3)],
    method: Annotated[str, Form(pattern="^(wls|quantile)$")] = "wls",
    regions: Annotated[bool, Form()] = False,
    folds: Annotated[int, Form(ge=2, le=20)] = 5,
    as_of: Annotated[date | None, Form(description="the survey's date, for ages")] = None,
) -> JobPublic:
    """The three files are CSV, XLSX or Parquet (docs/data-format.md for households and
    persons). The job's outcome has the model's version and its validation; another person
    approves it (`POST /targeting/pmt/models/{version}/approve`)."""
    principal.require(Permission.TARGETING_FIT)
    with upload_folder(settings) as folder:
        saved = {
            stem: keep_upload(folder, stem, upload.filename, upload.file)
            for stem, upload in (("survey", survey), ("households", households),
                                 ("persons", persons))
        }  # fmt: skip
        params = FitParams(saved["survey"], poverty_line, method, regions, folds, as_of, folder)
        return start(FIT_JOB, params, principal)


@router.get(
    "/pmt/models",
    operation_id="list_pmt_models",
    summary="The fitted PMT models, latest first: who fitted and approved each, its validation",
)
def list_pmt_models(session: SessionDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    return [model_summary(model) for model in list_models(session, principal)]


@router.get(
    "/pmt/models/{version}",
    operation_id="read_pmt_model",
    responses=problem_responses(404),
    summary="A PMT model as stored: coefficients, features, data source, validation, approval",
)
def read_model(
    version: Annotated[str, Path(pattern=_VERSION)], session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    require_model_reader(principal)
    model = get_model(session, version)
    return {
        **model.body,
        "fitted_by": model.fitted_by,
        "approved_by": model.approved_by,
        "approved_at": model.approved_at,
    }


@router.post(
    "/pmt/models/{version}/approve",
    operation_id="approve_pmt_model",
    responses=problem_responses(403, 404, 409),
    summary="Approve a fitted PMT for scoring: never by the one who fitted it",
)
def approve_model(
    version: Annotated[str, Path(pattern=_VERSION)], session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    model = approve_for(session, principal, version)
    return {"version": model.version, "fitted_by": model.fitted_by,
            "approved_by": model.approved_by, "approved_at": model.approved_at}  # fmt: skip


@router.post(
    "/pmt/score",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="start_pmt_score",
    responses=problem_responses(404, 429),
    summary="Score every consenting household in scope with an approved PMT, as a job",
)
def start_score(
    session: SessionDep,
    principal: PrincipalDep,
    start: StartJobDep,
    body: Annotated[ScoreRequest, Body()],
) -> JobPublic:
    check_run(session, principal, body.area_code)
    check_models(session, [body.model_version])
    params = PmtParams(body.model_version, body.as_of, body.area_code, body.snapshot_id)
    return start(PMT_JOB, params, principal)


@router.post(
    "/mpi",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="start_mpi",
    responses=problem_responses(404, 429),
    summary="Multidimensional poverty (the global MPI's structure) of the households in scope",
)
def start_mpi(
    session: SessionDep,
    principal: PrincipalDep,
    start: StartJobDep,
    body: Annotated[MpiRequest, Body()] = MpiRequest(),
) -> JobPublic:
    """The outcome holds H, A, M0, each indicator's contribution and the decompositions by area
    and group (small groups hidden); every household's score is kept with the run."""
    check_run(session, principal, body.area_code)
    params = MpiParams(None, body.as_of, body.area_code, body.snapshot_id)
    return start(MPI_JOB, params, principal)


EVALUATE_UPLOAD_PATH = "/targeting/evaluations"
_REPORT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".csv": "text/csv; charset=utf-8",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@router.post(
    "/evaluations",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="start_targeting_evaluation",
    responses=problem_responses(404, 429),
    summary="Evaluate targeting designs against uploaded reference welfare, as a job",
)
def start_evaluation(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    start: StartJobDep,
    reference: Annotated[UploadFile, File(description="household_key, consumption_pc [, weight]")],
    pmt: Annotated[list[str], Form(description="PMT model versions")] = [],  # noqa: B006
    mpi: Annotated[bool, Form(description="rank by the MPI's deprivation too")] = True,
    designs: Annotated[UploadFile | None, File(description="hybrid designs (YAML)")] = None,
    coverage: Annotated[float | None, Form(gt=0, le=1)] = None,
    budget: Annotated[Decimal | None, Form(gt=0, max_digits=18, decimal_places=3)] = None,
    transfer: Annotated[Decimal, Form(gt=0, max_digits=18, decimal_places=3)] = Decimal(1),
    per_person: Annotated[bool, Form()] = False,
    poverty_line: Annotated[Decimal | None, Form(gt=0, max_digits=18, decimal_places=3)] = None,
    as_of: Annotated[date | None, Form()] = None,
    area_code: Annotated[str | None, Form(max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")] = None,
    snapshot_id: Annotated[int | None, Form(ge=1, le=2**63 - 1)] = None,
    source: Annotated[str | None, Form(max_length=64)] = None,
) -> JobPublic:
    """The outcome lists the report's files; read them at
    `/targeting/evaluations/{job_id}/files/{name}` (report.html has its charts inline)."""
    from sijill.targeting.jobs import EVALUATE_JOB, EvaluateParams

    check_run(session, principal, area_code)
    check_models(session, pmt)
    check_selection(coverage, budget)
    with upload_folder(settings) as folder:
        path = keep_upload(folder, "reference", reference.filename, reference.file)
        designs_path = None
        if designs is not None:
            designs_path = folder / "designs.yaml"
            save_upload(designs.file, designs_path)
        params = EvaluateParams(
            reference=path,
            out_dir=folder / "report",
            pmt_versions=tuple(pmt),
            use_mpi=mpi,
            designs_file=designs_path,
            coverage=coverage,
            budget=budget,
            transfer=transfer,
            per_person=per_person,
            poverty_line=poverty_line,
            as_of=as_of,
            area_code=area_code,
            snapshot_id=snapshot_id,
            source=source,
            upload=folder,
        )
        return start(EVALUATE_JOB, params, principal)


@router.get(
    "/evaluations/{job_id}/files/{name}",
    operation_id="read_targeting_report",
    response_class=FileResponse,
    responses={200: {"description": "a file of the report"}, **problem_responses(404)},
    summary="A file of an evaluation's report: report.html, a chart, a table (CSV or XLSX)",
)
def read_report_file(
    job_id: Annotated[str, Path(pattern=r"^[0-9]{1,20}$")],
    name: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,100}$")],
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> FileResponse:
    from sijill.jobs.service import parse_job_id
    from sijill.targeting.report_tables import evaluation_folder

    job, folder = evaluation_folder(
        session, principal, settings.work_dir, parse_job_id(job_id), "targeting.report"
    )
    # Only a name the folder lists: never a path built from the request.
    files = {entry.name: entry for entry in folder.iterdir() if entry.is_file()}
    if name not in files or files[name].suffix not in _REPORT_TYPES:
        raise NotFound(f"The report of job {job.id} has no file {name}")
    principal.audit("targeting.report", "ok", "job", str(job.id))
    return FileResponse(files[name], media_type=_REPORT_TYPES[files[name].suffix])


@router.get(
    "/runs/{run_id}",
    operation_id="read_targeting_run",
    responses=problem_responses(404),
    summary="A scoring run: what it read (snapshot, model or configuration), its counts and "
    "aggregates",
)
def read_run(
    run_id: Annotated[int, Path(ge=1, le=2**63 - 1)], session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    run = visible_run(session, principal, run_id)
    return {
        "run_id": run.id,
        "kind": run.kind,
        "snapshot_id": run.snapshot_id,
        "as_of": run.as_of,
        "model_version": run.model_version,
        "config_digest": run.config_digest,
        "run_by": run.run_by,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "households_scored": run.households_scored,
        "households_without_consent": run.households_without_consent,
        "summary": run.summary,
    }
