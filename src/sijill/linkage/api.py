"""`/linkage/dedup`: run deduplication as a job (202, then `/jobs/{id}`); `/linkage/models`:
the stored models, by version, as the reviewable JSON each run was scored with;
`/linkage/review-flags/{id}`: a flagged pair side by side, for its reviewer."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Path, UploadFile, status
from pydantic import BaseModel, Field

from sijill.core.errors import NotFound
from sijill.core.problems import problem_responses
from sijill.jobs.deps import StartJobDep
from sijill.jobs.schemas import JobPublic
from sijill.linkage.dedup import resolve_area
from sijill.linkage.jobs import DEDUP_JOB, LINK_JOB, DedupParams
from sijill.linkage.lists import LIST_KINDS
from sijill.linkage.models import LinkageModel
from sijill.linkage.review import PairView, pair_view
from sijill.security.deps import PrincipalDep, SessionDep, SettingsDep
from sijill.security.roles import Permission

router = APIRouter(prefix="/linkage", tags=["linkage"])
# An upload: its body limit is settings.max_upload_bytes (sijill.api, sijill.middleware).
LINK_UPLOAD_PATH = "/linkage/link"


class DedupRequest(BaseModel):
    area_code: str | None = Field(
        None, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$", description="only this area"
    )
    model_version: str | None = Field(
        None,
        max_length=32,
        pattern=r"^m-[0-9a-f]{16}$",
        description="score with this stored model instead of training one",
    )
    threshold: float | None = Field(None, gt=0, lt=1, description="default: the setting")


def _stored_model(session, version: str) -> dict[str, Any]:
    stored = session.get(LinkageModel, version)
    if stored is None:
        raise NotFound(f"There is no linkage model {version}")
    return stored.body


@router.post(
    "/dedup",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="start_dedup",
    responses=problem_responses(404, 429),
    summary="Find persons registered twice and propose them for review, as a job",
)
def start_dedup(
    session: SessionDep,
    principal: PrincipalDep,
    start: StartJobDep,
    body: Annotated[DedupRequest, Body()] = DedupRequest(),
) -> JobPublic:
    """Answers 202 at once; follow `Location` (`/jobs/{id}`) until the job has ended. Its
    outcome counts the pairs proposed and the review flags raised (`GET /review-flags`)."""
    principal.require(Permission.LINKAGE_RUN)
    # Refused now rather than by the job: an area outside the user's scope, or the whole
    # registry without a national scope.
    resolve_area(session, principal, body.area_code)
    model = _stored_model(session, body.model_version) if body.model_version else None
    params = DedupParams(body.area_code, model, None, body.threshold)
    return start(DEDUP_JOB, params, principal)


@router.post(
    "/link",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="start_link",
    responses=problem_responses(404, 429),
    summary="Match another agency's list to registry persons and record what it says, as a job",
)
def start_link(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    start: StartJobDep,
    file: Annotated[
        UploadFile,
        File(description="CSV, XLSX or Parquet, a person a row; at most max_upload_bytes"),
    ],
    kind: Annotated[str, Form(pattern="^(" + "|".join(LIST_KINDS) + ")$")],
    mapping: Annotated[
        UploadFile | None,
        File(description="YAML mapping of the list's columns (docs/import-mapping.md)"),
    ] = None,
    model_version: Annotated[str | None, Form(max_length=32, pattern=r"^m-[0-9a-f]{16}$")] = None,
    threshold: Annotated[float | None, Form(gt=0, lt=1)] = None,
    as_of: Annotated[date | None, Form(description="the day the list describes")] = None,
) -> JobPublic:
    """Answers 202 at once; follow `Location` (`/jobs/{id}`). civil: deaths recorded and
    flagged for review; payroll, tax, beneficiaries: dated facts on the persons. The job's
    `rejects` link serves the unmatched lines, each with its line and reason."""
    from sijill.linkage.link import may_link
    from sijill.linkage.uploads import receive_list

    may_link(session, principal)
    model = _stored_model(session, model_version) if model_version else None
    params = receive_list(
        principal,
        settings,
        file.filename,
        file.file,
        kind=kind,
        mapping=mapping.file if mapping is not None else None,
        model=model,
        threshold=threshold,
        as_of=as_of,
    )
    return start(LINK_JOB, params, principal)


@router.get(
    "/models/{version}",
    operation_id="read_linkage_model",
    responses=problem_responses(404),
    summary="A stored linkage model: its comparisons, levels, m and u, as saved",
)
def read_model(version: str, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    principal.require(Permission.LINKAGE_RUN)
    return _stored_model(session, version)


@router.get(
    "/review-flags/{flag_id}",
    operation_id="read_flagged_pair",
    responses=problem_responses(404),
    summary="A flagged pair side by side: both records, what differs, the model's evidence",
)
def read_flagged_pair(
    flag_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="the flag's ID")],
    session: SessionDep,
    principal: PrincipalDep,
) -> PairView:
    """Decide it with `POST /review-flags/{flag_id}/decision` (same_person may merge them)."""
    return pair_view(session, principal, flag_id)
