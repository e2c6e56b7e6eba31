"""`/review-flags`: the pairs of records flagged for a reviewer who can see both (a national
registrar), and the reviewer's decision on each."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from sijill.core.problems import problem_responses
from sijill.registry.reviews import service
from sijill.registry.reviews.schemas import (
    Kind,
    ReviewDecision,
    ReviewFlagPublic,
    ReviewFlagsPublic,
    State,
)
from sijill.security.deps import PrincipalDep, SessionDep, SettingsDep

router = APIRouter(prefix="/review-flags", tags=["review flags"])


@router.get(
    "",
    operation_id="list_review_flags",
    summary="Pairs of records flagged for review, oldest first (national registrars only)",
)
def list_review_flags(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    state: Annotated[State | None, Query(description="open (the default) or decided")] = "open",
    kind: Annotated[Kind | None, Query(description="only flags of this kind")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="1 for the first page")] = 1,
    page_size: Annotated[
        int, Query(ge=1, description="flags per page, at most the server's page_size_max")
    ] = 50,
) -> ReviewFlagsPublic:
    flags, count = service.list_flags(
        session,
        principal,
        state=state,
        kind=kind,
        page=page,
        page_size=min(page_size, settings.page_size_max),
    )
    return ReviewFlagsPublic(data=flags, count=count)


@router.post(
    "/{flag_id}/decision",
    operation_id="decide_review_flag",
    responses=problem_responses(404, 409),
    summary="Decide an open flag: same person (and merge them, if asked), different persons, "
    "or dismissed",
)
def decide_review_flag(
    flag_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="the flag's ID")],
    data: ReviewDecision,
    session: SessionDep,
    principal: PrincipalDep,
) -> ReviewFlagPublic:
    return service.decide_flag(
        session,
        principal,
        flag_id,
        data.decision,
        keep=None if data.keep is None else int(data.keep),
        keep_membership_of=data.keep_membership_of,
    )
