"""`/programs`: a program run's record, and a household's decision explained in plain words."""

import secrets
import shutil
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Path, Query, UploadFile, status
from pydantic import BaseModel, Field

from sijill.core.i18n import current_locale
from sijill.core.problems import problem_responses
from sijill.jobs.deps import StartJobDep
from sijill.jobs.schemas import JobPublic
from sijill.programs.checks import check_spec
from sijill.programs.enrollment import record_answers
from sijill.programs.explain import explain
from sijill.programs.jobs import PROGRAM_JOB, ProgramParams
from sijill.programs.service import ELIGIBILITY, get_run, run_record
from sijill.registry.api import HouseholdId
from sijill.registry.bulk.jobs import private_folder, save_upload
from sijill.security.area_scope import run_area
from sijill.security.deps import PrincipalDep, SessionDep, SettingsDep
from sijill.security.roles import Permission

router = APIRouter(prefix="/programs", tags=["programs"])
RunId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a program run's ID")]


@router.get(
    "/runs/{run_id}",
    operation_id="read_program_run",
    responses=problem_responses(404),
    summary="A program run: spec version, rule hash, parameters, snapshot, scores and counts",
)
def read_program_run(run_id: RunId, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    principal.require(Permission.PROGRAMS_READ)
    return run_record(get_run(session, principal, run_id))


@router.get(
    "/runs/{run_id}/households/{household_id}/explanation",
    operation_id="explain_program_decision",
    responses=problem_responses(404),
    summary="Why a run chose a household or not: each clause, the values it read, in words",
)
def explain_decision(
    run_id: RunId,
    household_id: HouseholdId,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    language: Annotated[
        str | None,
        Query(pattern="^(ar|fr|en)$", description="ar, fr or en (default: the request's)"),
    ] = None,
) -> dict[str, Any]:
    """Replayed from the run's record (clauses, parameters in force, feature snapshot, scoring
    runs), never from today's registry. A household outside your areas answers as one without
    a decision. Each read is audited."""
    chosen = language or current_locale()
    return explain(session, settings, principal, run_id, household_id, chosen).as_dict()


class EnrollmentAnswer(BaseModel):
    household_ids: list[Annotated[int, Field(ge=10**9, lt=10**10)]] = Field(
        ..., min_length=1, max_length=10_000, description="notified households' IDs"
    )
    answer: str = Field(..., pattern="^(enrolled|declined)$")
    on: date | None = Field(None, description="the day of the answer (default today)")


@router.post(
    "/runs",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="start_program_run",
    responses=problem_responses(404, 409, 429),
    summary="Run a program's spec over the consenting households in scope, as a job",
)
def start_program_run(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    start: StartJobDep,
    spec: Annotated[UploadFile, File(description="the program's spec (YAML)")],
    as_of: Annotated[date | None, Form(description="the registry and rules of that day")] = None,
    area_code: Annotated[str | None, Form(max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")] = None,
    snapshot_id: Annotated[int | None, Form(ge=1, le=2**63 - 1)] = None,
    dry_run: Annotated[bool, Form(description="count and cost, write nothing")] = False,
    kind: Annotated[str, Form(pattern="^(eligibility|recertification)$")] = ELIGIBILITY,
) -> JobPublic:
    """The spec is checked before the job starts (a bad one answers 422 with its place); the
    job's outcome has the run's counts (`GET /programs/runs/{run_id}` for the rest)."""
    principal.require(Permission.PROGRAMS_RUN)
    run_area(
        session, principal, Permission.PROGRAMS_RUN, area_code,
        whole_registry="Running a program over the whole registry",
    )  # fmt: skip
    folder = private_folder(settings.work_dir) / secrets.token_hex(16)
    folder.mkdir(mode=0o700)
    try:
        path = folder / "spec.yaml"
        save_upload(spec.file, path)
        check_spec(path)
        params = ProgramParams(path, as_of, area_code, snapshot_id, dry_run, kind, folder)
        return start(PROGRAM_JOB, params, principal)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


@router.post(
    "/{program}/enrollments",
    operation_id="answer_enrollment",
    responses=problem_responses(404, 409),
    summary="Record notified households' answers: enrolled or declined",
)
def answer_enrollment(
    program: Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]{1,47}$")],
    body: Annotated[EnrollmentAnswer, Body()],
    session: SessionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """Every household must be notified in the program and lie in your areas, or nothing is
    recorded."""
    count = record_answers(
        session,
        principal=principal,
        program=program,
        household_ids=body.household_ids,
        answer=body.answer,
        on=body.on,
    )
    return {"program": program, "households": count, "answer": body.answer}
