"""A flagged pair side by side: what a reviewer needs to say "same" or "not the same".

Both records as the registry shows them now (each in its household and area), the fields on
which they differ, and, for a pair the linkage model proposed, what it was proposed from: the
match weight and probability, every comparison's level and weight, the model's version. Open to
the reviewers of review flags (national registrars: the two records may lie in different
areas), and audited as a read of both records.
"""

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from sijill.core.errors import NotFound
from sijill.linkage.models import LinkageRun, MatchPair
from sijill.registry.merges.models import PersonMerge
from sijill.registry.read import households_public
from sijill.registry.reviews.models import OPEN, ReviewFlag
from sijill.registry.reviews.schemas import ReviewFlagPublic
from sijill.registry.reviews.service import RECORD_TYPE, list_flags, public, require_reviewer
from sijill.security.principal import Principal
from sijill.security.roles import Permission

ACTION_READ_PAIR = "review_flag.read_pair"
# Bookkeeping, not what a person is: never reported as a difference.
_NOT_COMPARED = {"person_id", "version", "valid_from", "membership_start", "membership_end"}


class Evidence(BaseModel):
    match_weight: float
    match_probability: float
    levels: dict[str, Any] = Field(description="comparison → its level and weight for the pair")
    model_version: str
    run_id: int


class PairView(BaseModel):
    flag: ReviewFlagPublic
    records: list[dict[str, Any]] = Field(
        description="the two persons as the registry shows them, with household and area"
    )
    differing: list[str] = Field(description="the fields on which the two records differ")
    evidence: Evidence | None = Field(
        None, description="what the linkage model proposed the pair from (its latest run)"
    )
    household_members: list[list[dict[str, Any]]] = Field(
        default_factory=list,
        description="the other current members of each record's household, in the records' "
        "order: the household context a reviewer weighs",
    )


class QueueItem(BaseModel):
    flag: ReviewFlagPublic
    match_probability: float | None = Field(None, description="the model's, if it scored it")
    match_weight: float | None = None


def _record(
    session: Session, person_id: int, household_id: int | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    households = households_public(session, [household_id]) if household_id else []
    for household in households:
        for member in household.members:
            if member.person_id == str(person_id):
                shown = member.model_dump(mode="json")
                shown.update(household_id=household.household_id, area_code=household.area_code)
                others = [
                    other.model_dump(mode="json")
                    for other in household.members
                    if other.person_id != member.person_id
                ]
                return shown, others
    # No longer a member there (moved, merged): the person alone.
    return {"person_id": str(person_id), "household_id": None, "area_code": None}, []


def review_queue(
    session: Session, principal: Principal, *, page: int = 1, page_size: int = 50
) -> tuple[list[QueueItem], int]:
    """A page of open flags as `GET /review-flags` lists them (same reviewers, same audit,
    same order), each with the score the linkage model gave its pair, if it scored it; and
    how many are open on all pages."""
    flags, count = list_flags(session, principal, state=OPEN, page=page, page_size=page_size)
    scores: dict[int, tuple[float, float]] = {}
    # Oldest run first, so a later run's score of the same flag replaces an earlier one.
    for flag_id, weight, probability in session.execute(
        select(MatchPair.review_flag_id, MatchPair.match_weight, MatchPair.match_probability)
        .where(MatchPair.review_flag_id.in_([flag.flag_id for flag in flags]))
        .order_by(MatchPair.id)
    ):
        scores[flag_id] = (weight, probability)
    items = []
    for flag in flags:
        weight, probability = scores.get(flag.flag_id, (None, None))
        items.append(QueueItem(flag=flag, match_weight=weight, match_probability=probability))
    return items, count


def pair_view(session: Session, principal: Principal, flag_id: int) -> PairView:
    require_reviewer(session, principal, ACTION_READ_PAIR)
    flag = session.get(ReviewFlag, flag_id)
    if flag is None:
        principal.audit(
            ACTION_READ_PAIR,
            "not_found",
            RECORD_TYPE,
            str(flag_id),
            permission=Permission.REVIEW_FLAGS,
        )
        raise NotFound(f"There is no review flag {flag_id}")
    first, first_household = _record(session, flag.person_a_id, flag.household_a_id)
    second, second_household = _record(session, flag.person_b_id, flag.household_b_id)
    differing = sorted(
        key
        for key in (first.keys() | second.keys()) - _NOT_COMPARED
        if first.get(key) != second.get(key)
    )
    match = session.scalars(
        select(MatchPair).where(MatchPair.review_flag_id == flag.id).order_by(MatchPair.id.desc())
    ).first()
    evidence = None
    if match is not None:
        run = session.get(LinkageRun, match.run_id)
        evidence = Evidence(
            match_weight=match.match_weight,
            match_probability=match.match_probability,
            levels=match.levels,
            model_version=run.model_version,
            run_id=run.id,
        )
    principal.audit(
        ACTION_READ_PAIR, "ok", RECORD_TYPE, str(flag.id), permission=Permission.REVIEW_FLAGS
    )
    # A same_person decision that merged them: the merge, to read or undo.
    merge_id = session.scalar(
        select(PersonMerge.id)
        .where(PersonMerge.review_flag_id == flag.id)
        .order_by(PersonMerge.id.desc())
        .limit(1)
    )
    return PairView(
        flag=public(flag, merge_id),
        records=[first, second],
        differing=differing,
        evidence=evidence,
        household_members=[first_household, second_household],
    )
