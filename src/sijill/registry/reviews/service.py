"""Listing and deciding review flags, for a national registrar.

A flag pairs records that may lie in different areas, and who is asking must be able to see
both: so these are open only to users holding `registry.review_flags` for the whole country
(anyone else gets 403, audited, as for the audit log). Every flag listed or decided is
audited by its ID; the records hold IDs and codes only, never a name or a number.
"""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from sijill.core.ids import format_id
from sijill.registry.merges.models import KEPT, PersonMerge
from sijill.registry.merges.service import merge_persons, older_of
from sijill.registry.reviews.models import DECIDED, OPEN, ReviewFlag
from sijill.registry.reviews.schemas import FlaggedRecord, ReviewFlagPublic
from sijill.security.principal import Principal
from sijill.security.roles import Permission

ACTION_LIST = "review_flag.list"
ACTION_DECIDE = "review_flag.decide"
ACTION_RAISE = "review_flag.raise"
RECORD_TYPE = "review_flag"


def require_reviewer(session: Session, principal: Principal, action: str) -> None:
    """Refuse (403, audited) anyone but a holder of `registry.review_flags` nationally."""
    permission = Permission.REVIEW_FLAGS
    principal.require(permission)
    if not principal.scope(session, permission).national:
        principal.audit(action, "denied", RECORD_TYPE, None, permission=permission)
        raise Forbidden(
            "Review flags are open to registrars of the whole country only: a flag's two "
            "records may lie in different areas"
        )


def public(flag: ReviewFlag, merge_id: int | None = None) -> ReviewFlagPublic:
    def household(value: int | None) -> str | None:
        return None if value is None else format_id(value)

    return ReviewFlagPublic(
        flag_id=flag.id,
        kind=flag.kind,
        state=flag.state,
        records=[
            FlaggedRecord(
                person_id=format_id(flag.person_a_id), household_id=household(flag.household_a_id)
            ),
            FlaggedRecord(
                person_id=format_id(flag.person_b_id), household_id=household(flag.household_b_id)
            ),
        ],
        reason=flag.reason,
        source=flag.source,
        raised_by=flag.raised_by,
        raised_at=flag.raised_at,
        decision=flag.decision,
        decided_by=flag.decided_by,
        decided_at=flag.decided_at,
        merge_id=merge_id,
    )


def list_flags(
    session: Session,
    principal: Principal,
    *,
    state: str | None = OPEN,
    kind: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[ReviewFlagPublic], int]:
    """A page of flags, oldest first (the order they should be worked through), and how many
    match on all pages."""
    require_reviewer(session, principal, ACTION_LIST)
    conditions = []
    if state is not None:
        conditions.append(ReviewFlag.state == state)
    if kind is not None:
        conditions.append(ReviewFlag.kind == kind)
    total = session.scalar(select(func.count()).select_from(ReviewFlag).where(*conditions))
    flags = session.scalars(
        select(ReviewFlag)
        .where(*conditions)
        .order_by(ReviewFlag.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    permission = Permission.REVIEW_FLAGS
    for flag in flags:
        principal.audit(ACTION_LIST, "ok", RECORD_TYPE, str(flag.id), permission=permission)
    if not flags:
        principal.audit(ACTION_LIST, "ok", RECORD_TYPE, None, permission=permission)
    merges = dict(
        session.execute(
            select(PersonMerge.review_flag_id, PersonMerge.id).where(
                PersonMerge.review_flag_id.in_([flag.id for flag in flags])
            )
        ).all()
    )
    return [public(flag, merges.get(flag.id)) for flag in flags], total or 0


def decide_flag(
    session: Session,
    principal: Principal,
    flag_id: int,
    decision: str,
    *,
    keep: int | None = None,
    keep_membership_of: str | None = None,
) -> ReviewFlagPublic:
    """Close an open flag with the reviewer's decision. A same_person decision given `keep`
    or `keep_membership_of` also merges the two records (`registry.merges`), in the same
    transaction; otherwise the records are left as they are."""
    merging = keep is not None or keep_membership_of is not None
    if merging and decision != "same_person":
        raise InvalidInput("keep and keep_membership_of go only with the decision same_person")
    require_reviewer(session, principal, ACTION_DECIDE)
    permission = Permission.REVIEW_FLAGS
    flag = session.scalars(
        select(ReviewFlag).where(ReviewFlag.id == flag_id).with_for_update()
    ).first()
    if flag is None:
        principal.audit(
            ACTION_DECIDE, "not_found", RECORD_TYPE, str(flag_id), permission=permission
        )
        raise NotFound(f"There is no review flag {flag_id}")
    if flag.state != OPEN:
        principal.audit(ACTION_DECIDE, "conflict", RECORD_TYPE, str(flag_id), permission=permission)
        raise Conflict(
            f"Review flag {flag_id} was already decided ({flag.decision}) by {flag.decided_by}"
        )
    pair = (flag.person_a_id, flag.person_b_id)
    if keep is not None and keep not in pair:
        message = f"person {keep} is not one of the flag's two persons"
        raise InvalidInput(f"Review flag {flag_id}: {message}", [FieldError("keep", message)])
    flag.state = DECIDED
    flag.decision = decision
    flag.decided_by = principal.username
    flag.decided_at = clock.utcnow()
    session.flush()
    principal.audit(ACTION_DECIDE, "ok", RECORD_TYPE, str(flag_id), permission=permission)
    merge_id = None
    if merging:
        kept, lost = older_of(session, *pair) if keep is None else (keep, sum(pair) - keep)
        merge = merge_persons(
            session,
            principal,
            kept,
            lost,
            keep_membership_of=keep_membership_of or KEPT,
            review_flag_id=flag.id,
        )
        merge_id = merge.merge_id
    return public(flag, merge_id)
