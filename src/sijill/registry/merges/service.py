"""Merging two records of one person, and undoing it exactly.

A merge keeps both records, their histories and their registry IDs: the lost record points
to the kept one. When the two live in two households, the reviewer chooses whose membership
continues; the kept person ends with that one open membership (a new one, with the lost
person's relationship, when the lost person's household is chosen) and every other open
membership of the two ends with the reason `merged`. No version of a person or a household is
written: the memberships carry the dated change, so an unmerge deletes nothing but the one
membership the merge opened, and history reads as if the merge had never been.

The decision record keeps exactly what was changed, and an unmerge refuses (409) when a later
change leaves nothing exact to give back (the kept person moved again, or was merged in turn).

Scopes: both persons must be current members of households inside the user's areas (a person
with no household only for national users), as for naming a person in an update; anyone else
is answered as about a person nobody holds. Merges are the registry's own duty, so they need
no consent purpose.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.db import execute_read
from sijill.core.errors import Conflict, FieldError, InvalidInput, NotFound
from sijill.core.ids import format_id
from sijill.registry.merges.models import END_REASON, KEPT, LOST, MERGED, UNMERGED, PersonMerge
from sijill.registry.merges.schemas import MembershipEnded, MergeEvidence, MergePublic
from sijill.registry.models import Household, Membership, Person, PersonVersion
from sijill.registry.read import utc
from sijill.registry.reviews.models import ReviewFlag
from sijill.registry.roster import close_membership, open_membership
from sijill.security.principal import Principal, Scope
from sijill.security.roles import Permission

ACTION_MERGE = "person.merge"
ACTION_UNMERGE = "person.unmerge"
ACTION_READ = "person.merge.read"
RECORD_TYPE = "person_merge"
PERMISSION = Permission.MERGE


def merge_persons(
    session: Session,
    principal: Principal,
    kept_id: int,
    lost_id: int,
    *,
    keep_membership_of: str = KEPT,
    evidence: MergeEvidence | None = None,
    review_flag_id: int | None = None,
) -> MergePublic:
    """Merge `lost_id` into `kept_id`, in the caller's transaction (flushed, not committed)."""
    principal.require(PERMISSION, record_type="person", record_id=str(kept_id))
    scope = principal.scope(session, PERMISSION)
    if keep_membership_of not in (KEPT, LOST):
        raise InvalidInput(
            "keep_membership_of must be kept or lost",
            [FieldError("keep_membership_of", "must be kept or lost")],
        )
    if kept_id == lost_id:
        principal.audit(ACTION_MERGE, "invalid", "person", str(kept_id), permission=PERMISSION)
        message = "a person cannot be merged with themselves"
        raise InvalidInput(f"Person {kept_id}: {message}", [FieldError("lost", message)])
    persons = _locked_persons(session, [kept_id, lost_id])
    open_ = _open_memberships(session, [kept_id, lost_id])
    for person_id in (kept_id, lost_id):
        if person_id not in persons or not _visible(session, scope, open_.get(person_id)):
            principal.audit(
                ACTION_MERGE, "not_found", "person", str(person_id), permission=PERMISSION
            )
            raise _no_person(person_id)
    kept, lost = persons[kept_id], persons[lost_id]
    if kept.merged_into_id is not None:
        principal.audit(ACTION_MERGE, "conflict", "person", str(kept_id), permission=PERMISSION)
        raise Conflict(
            f"Person {kept_id} was merged into person {kept.merged_into_id}: merge into that "
            "person instead"
        )
    if lost.merged_into_id is not None:
        principal.audit(ACTION_MERGE, "conflict", "person", str(lost_id), permission=PERMISSION)
        raise Conflict(f"Person {lost_id} was already merged into person {lost.merged_into_id}")
    try:
        if review_flag_id is not None:
            _check_flag(session, review_flag_id, kept_id, lost_id)
        changes = _Changes.plan(open_.get(kept_id), open_.get(lost_id), keep_membership_of)
    except InvalidInput:
        principal.audit(ACTION_MERGE, "invalid", "person", str(kept_id), permission=PERMISSION)
        raise
    now = clock.utcnow()
    for membership in changes.ended:
        close_membership(membership, now.date(), END_REASON)
    # The ended memberships reach the database first: a person holds one open membership.
    session.flush()
    continuing = changes.continuing
    if changes.created_in is not None:
        household_id, relationship = changes.created_in
        continuing = open_membership(household_id, kept_id, relationship, now)
        session.add(continuing)
    lost.merged_into_id = kept_id
    evidence = evidence or MergeEvidence()
    merge = PersonMerge(
        state=MERGED,
        kept_person_id=kept_id,
        lost_person_id=lost_id,
        keep_membership_of=keep_membership_of,
        household_id=continuing.household_id if continuing else None,
        ended_memberships=[
            {"id": m.id, "person_id": m.person_id, "household_id": m.household_id}
            for m in changes.ended
        ],
        membership_created=changes.created_in is not None,
        match_weight=evidence.match_weight,
        match_probability=evidence.match_probability,
        levels=evidence.levels,
        model_version=evidence.model_version,
        review_flag_id=review_flag_id,
        merged_by=principal.username,
        merged_at=now,
    )
    session.add(merge)
    session.flush()
    merge.membership_id = continuing.id if continuing else None
    session.flush()
    principal.audit(ACTION_MERGE, "ok", RECORD_TYPE, str(merge.id), permission=PERMISSION)
    return public(merge)


def unmerge(session: Session, principal: Principal, merge_id: int) -> MergePublic:
    """Give back both records exactly as they were before the merge."""
    merge = _merge_in_scope(session, principal, merge_id, ACTION_UNMERGE, lock=True)
    if merge.state != MERGED:
        principal.audit(
            ACTION_UNMERGE, "conflict", RECORD_TYPE, str(merge_id), permission=PERMISSION
        )
        raise Conflict(f"Merge {merge_id} was already undone by {merge.unmerged_by}")
    problem = _why_not_exact(session, merge)
    if problem:
        principal.audit(
            ACTION_UNMERGE, "conflict", RECORD_TYPE, str(merge_id), permission=PERMISSION
        )
        raise Conflict(f"Merge {merge_id} cannot be undone exactly: {problem}")
    if merge.membership_created:
        session.delete(session.get(Membership, merge.membership_id))
        session.flush()
    ended = session.scalars(
        select(Membership).where(Membership.id.in_([e["id"] for e in merge.ended_memberships]))
    )
    for membership in ended:
        membership.end_date = None
        membership.end_reason = None
    lost = session.get(Person, merge.lost_person_id)
    lost.merged_into_id = None
    merge.state = UNMERGED
    merge.unmerged_by = principal.username
    merge.unmerged_at = clock.utcnow()
    session.flush()
    principal.audit(ACTION_UNMERGE, "ok", RECORD_TYPE, str(merge_id), permission=PERMISSION)
    return public(merge)


def get_merge(session: Session, principal: Principal, merge_id: int) -> MergePublic:
    merge = _merge_in_scope(session, principal, merge_id, ACTION_READ)
    principal.audit(ACTION_READ, "ok", RECORD_TYPE, str(merge_id), permission=PERMISSION)
    return public(merge)


_MEMBERS = select(Membership.person_id).where(Membership.household_id == bindparam("household"))
# Made once (every household page asks it): built per call, it costs more than it takes to run.
# Only the IDs: most households have no merge, and an ORM read costs several times a plain one
# even when it finds nothing.
_MERGES_OF_HOUSEHOLD = select(PersonMerge.id).where(
    PersonMerge.state == MERGED,
    PersonMerge.kept_person_id.in_(_MEMBERS) | PersonMerge.lost_person_id.in_(_MEMBERS),
)


def household_merges(
    session: Session, principal: Principal, household_id: int
) -> list[MergePublic]:
    """The merges still in force of persons who are or were members of a household, that the
    user may read (and so undo): what a household's page offers to unmerge. Empty for a user
    who may not merge."""
    if not principal.may(PERMISSION):
        return []
    found = [
        row.id for row in execute_read(session, _MERGES_OF_HOUSEHOLD, {"household": household_id})
    ]
    if not found:
        return []
    scope = principal.scope(session, PERMISSION)
    merges = session.scalars(
        select(PersonMerge).where(PersonMerge.id.in_(found)).order_by(PersonMerge.id)
    ).all()
    shown = [merge for merge in merges if _merge_visible(session, scope, merge)]
    for merge in shown:
        principal.audit(ACTION_READ, "ok", RECORD_TYPE, str(merge.id), permission=PERMISSION)
    return [public(merge) for merge in shown]


def older_of(session: Session, first_id: int, second_id: int) -> tuple[int, int]:
    """(kept, lost) by default: the record registered first (its first version's time), the
    smaller ID on a tie."""

    def registered(person_id: int) -> tuple[datetime, int]:
        first = session.scalar(
            select(PersonVersion.valid_from).where(
                PersonVersion.person_id == person_id, PersonVersion.version == 1
            )
        )
        if first is None:
            first = session.scalar(select(Person.valid_from).where(Person.id == person_id))
        if first is None:
            raise _no_person(person_id)
        return utc(first), person_id

    kept, lost = sorted((first_id, second_id), key=registered)
    return kept, lost


def public(merge: PersonMerge) -> MergePublic:
    return MergePublic(
        merge_id=merge.id,
        state=merge.state,
        kept_person_id=format_id(merge.kept_person_id),
        lost_person_id=format_id(merge.lost_person_id),
        keep_membership_of=merge.keep_membership_of,
        household_id=None if merge.household_id is None else format_id(merge.household_id),
        memberships_ended=[
            MembershipEnded(
                person_id=format_id(e["person_id"]), household_id=format_id(e["household_id"])
            )
            for e in merge.ended_memberships
        ],
        membership_created=merge.membership_created,
        match_weight=merge.match_weight,
        match_probability=merge.match_probability,
        levels=merge.levels,
        model_version=merge.model_version,
        review_flag_id=merge.review_flag_id,
        merged_by=merge.merged_by,
        merged_at=merge.merged_at,
        unmerged_by=merge.unmerged_by,
        unmerged_at=merge.unmerged_at,
    )


@dataclass
class _Changes:
    ended: list[Membership]
    continuing: Membership | None
    created_in: tuple[int, str] | None  # (household, relationship) of a membership to open

    @classmethod
    def plan(cls, kept: Membership | None, lost: Membership | None, side: str) -> "_Changes":
        chosen = kept if side == KEPT else lost
        if chosen is None and (kept or lost):
            whose = "kept" if side == KEPT else "lost"
            message = (
                f"the {whose} person belongs to no household: keep the membership of the "
                f"{LOST if side == KEPT else KEPT} person instead"
            )
            raise InvalidInput(
                f"The merge cannot keep that membership: {message}",
                [FieldError("keep_membership_of", message)],
            )
        if side == KEPT or lost is None:
            return cls([m for m in (lost,) if m], kept, None)
        return cls([m for m in (kept, lost) if m], None, (lost.household_id, lost.relationship))


def _why_not_exact(session: Session, merge: PersonMerge) -> str | None:
    persons = _locked_persons(session, [merge.kept_person_id, merge.lost_person_id])
    kept, lost = persons[merge.kept_person_id], persons[merge.lost_person_id]
    if kept.merged_into_id is not None:
        return (
            f"person {kept.id} has since been merged into person {kept.merged_into_id}; undo "
            "that merge first"
        )
    if lost.merged_into_id != kept.id:
        return f"person {lost.id} no longer points to person {kept.id}"
    now_open = {m.id for m in _open_memberships(session, [kept.id, lost.id], lock=True).values()}
    if now_open != ({merge.membership_id} if merge.membership_id else set()):
        return f"the households of persons {kept.id} and {lost.id} have changed since"
    ended_ids = [e["id"] for e in merge.ended_memberships]
    still = session.scalars(
        select(Membership.id).where(
            Membership.id.in_(ended_ids), Membership.end_reason == END_REASON
        )
    ).all()
    if len(still) != len(ended_ids):
        return "a membership the merge ended has changed since"
    return None


def _merge_in_scope(
    session: Session, principal: Principal, merge_id: int, action: str, *, lock: bool = False
) -> PersonMerge:
    """The merge, if every household it touched lies in the user's areas (a merge of persons
    without any household, for national users only); else the answer about a merge that does
    not exist."""
    principal.require(PERMISSION, record_type=RECORD_TYPE, record_id=str(merge_id))
    scope = principal.scope(session, PERMISSION)
    query = select(PersonMerge).where(PersonMerge.id == merge_id)
    merge = session.scalars(query.with_for_update() if lock else query).first()
    if merge is None or not _merge_visible(session, scope, merge):
        principal.audit(action, "not_found", RECORD_TYPE, str(merge_id), permission=PERMISSION)
        raise NotFound(f"There is no merge {merge_id}")
    return merge


def _merge_visible(session: Session, scope: Scope, merge: PersonMerge) -> bool:
    if scope.national:
        return True
    households = {e["household_id"] for e in merge.ended_memberships} | {merge.household_id}
    households.discard(None)
    areas = session.scalars(select(Household.area_id).where(Household.id.in_(households))).all()
    return bool(areas) and all(scope.allows(area) for area in areas)


def _visible(session: Session, scope: Scope, membership: Membership | None) -> bool:
    if scope.national:
        return True
    if membership is None:
        return False
    return scope.allows(session.get(Household, membership.household_id).area_id)


def _locked_persons(session: Session, person_ids: list[int]) -> dict[int, Person]:
    # Always in ID order, so that two merges of overlapping pairs cannot deadlock.
    query = select(Person).where(Person.id.in_(person_ids)).order_by(Person.id).with_for_update()
    return {person.id: person for person in session.scalars(query)}


def _open_memberships(
    session: Session, person_ids: list[int], *, lock: bool = True
) -> dict[int, Membership]:
    query = select(Membership).where(
        Membership.person_id.in_(person_ids), Membership.end_date.is_(None)
    )
    if lock:
        query = query.order_by(Membership.id).with_for_update()
    return {m.person_id: m for m in session.scalars(query)}


def _check_flag(session: Session, flag_id: int, kept_id: int, lost_id: int) -> None:
    flag = session.get(ReviewFlag, flag_id)
    if flag is None or {flag.person_a_id, flag.person_b_id} != {kept_id, lost_id}:
        message = f"review flag {flag_id} does not pair these two persons"
        raise InvalidInput(
            f"The merge cannot be made: {message}", [FieldError("review_flag_id", message)]
        )


def _no_person(person_id: int) -> NotFound:
    return NotFound(f"There is no person {person_id}")
