"""`/jobs`: a job's status, cancelling it, and the rows it rejected.

Long work (an import) answers 202 Accepted with `Location: /jobs/{id}`; the client polls that
until the state is succeeded, failed, cancelled or interrupted. A job is seen by whoever
started it and by national administrators; anyone else gets the 404 of a missing job.
"""

from typing import Annotated

from fastapi import APIRouter, Path, status
from fastapi.responses import FileResponse

from sijill.core.problems import problem_responses
from sijill.jobs import service
from sijill.jobs.deps import RunnerDep
from sijill.jobs.schemas import JobPublic
from sijill.security.deps import PrincipalDep, SessionDep, SettingsDep

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Annotated[
    str,
    Path(
        description="job ID: 11 digits, the last a check digit",
        examples=["48291057316"],
        max_length=40,
    ),
]


class CsvFile(FileResponse):
    media_type = "text/csv"


@router.get(
    "/{job_id}",
    operation_id="read_job",
    responses=problem_responses(404),
    summary="A job's state, progress, outcome and errors",
)
def read_job(
    job_id: JobId,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    runner: RunnerDep,
) -> JobPublic:
    job = runner.status(session, principal, service.parse_job_id(job_id))
    return service.public(job, settings.work_dir)


@router.post(
    "/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="cancel_job",
    responses=problem_responses(404, 409),
    summary="Ask a job to stop: it ends cancelled at its next checkpoint, keeping what it "
    "committed",
)
def cancel_job(
    job_id: JobId,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    runner: RunnerDep,
) -> JobPublic:
    job = runner.cancel(session, principal, service.parse_job_id(job_id))
    return service.public(job, settings.work_dir)


@router.get(
    "/{job_id}/rejects",
    operation_id="read_job_rejects",
    response_class=CsvFile,
    responses={
        200: {
            "description": "the rejected rows: file, row, record_key, field, value, message",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **problem_responses(404),
    },
    summary="Download the rows a job rejected, with the reason for each (CSV)",
)
def read_job_rejects(
    job_id: JobId,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    runner: RunnerDep,
) -> CsvFile:
    job = runner.status(session, principal, service.parse_job_id(job_id))
    path = service.rejects_file(principal, job, settings.work_dir)
    return CsvFile(path, filename=f"job-{job.id}-rejects.csv")
