"""`/persons/{kept}/merge` and `/merges/{merge_id}`: merging two records of one person, reading
a merge, and undoing it."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from sijill.core.errors import FieldError, InvalidInput
from sijill.core.ids import parse_id
from sijill.core.problems import problem_responses
from sijill.registry.merges import service
from sijill.registry.merges.schemas import MergePublic, MergeRequest
from sijill.security.deps import PrincipalDep, SessionDep

router = APIRouter(tags=["merges"])


async def person_id_path(
    person_id: Annotated[
        str,
        Path(
            description="the kept person's registry ID: 12 digits, the last a check digit",
            max_length=40,
        ),
    ],
) -> int:
    try:
        return parse_id("person", person_id)
    except InvalidInput as error:
        raise InvalidInput(error.detail, [FieldError("person_id", error.detail)]) from None


PersonId = Annotated[int, Depends(person_id_path)]
MergeId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the merge's ID")]


@router.post(
    "/persons/{person_id}/merge",
    status_code=status.HTTP_201_CREATED,
    operation_id="merge_persons",
    responses=problem_responses(404, 409),
    summary="Merge another record of the same person into this one (reversible)",
)
def merge_persons(
    person_id: PersonId, data: MergeRequest, session: SessionDep, principal: PrincipalDep
) -> MergePublic:
    return service.merge_persons(
        session,
        principal,
        person_id,
        int(data.lost),
        keep_membership_of=data.keep_membership_of,
        evidence=data.evidence(),
        review_flag_id=data.review_flag_id,
    )


@router.get(
    "/merges/{merge_id}",
    operation_id="read_merge",
    responses=problem_responses(404),
    summary="A merge: what it was decided from and what it changed",
)
def read_merge(merge_id: MergeId, session: SessionDep, principal: PrincipalDep) -> MergePublic:
    return service.get_merge(session, principal, merge_id)


@router.post(
    "/merges/{merge_id}/unmerge",
    operation_id="unmerge_persons",
    responses=problem_responses(404, 409),
    summary="Undo a merge: both records exactly as they were before it",
)
def unmerge_persons(merge_id: MergeId, session: SessionDep, principal: PrincipalDep) -> MergePublic:
    return service.unmerge(session, principal, merge_id)
