"""The linkage review queue: the open review flags, a flagged pair side by side with what
differs, the reviewer's "same person" (which merges them) or "not the same", and a merge's
page, where it is undone. Each calls the service the API calls (`linkage.review`,
`registry.reviews`, `registry.merges`) with the signed-in user's `Principal`: the same
reviewers (national registrars), scopes, audit and refusals."""

from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from sijill.core.errors import Conflict, InvalidInput
from sijill.core.i18n import N_, current_locale, gettext
from sijill.core.ids import parse_id
from sijill.linkage.review import pair_view, review_queue
from sijill.registry import fields
from sijill.registry.merges.models import MERGED
from sijill.registry.merges.service import get_merge, unmerge
from sijill.registry.reviews.models import OPEN
from sijill.registry.reviews.service import decide_flag
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.web.render import page
from sijill.web.routing import page_router
from sijill.web.session import PREFIX, check_csrf, page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
# Out of range is a page that does not exist, as a missing one (the routing's 404).
FlagId = Annotated[int, Path(ge=1, le=2**63 - 1)]
MergeId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Csrf = Annotated[str, Form(max_length=128)]
PAGE_SIZE = 25
QUEUE = f"{PREFIX}/review"

KINDS = {
    "duplicate_national_id": N_("Same national ID in two records"),
    "possible_duplicate": N_("Possible duplicate within the registry"),
    "death_reported": N_("Death reported by the civil registry"),
}
DECISIONS = {
    "same_person": N_("Same person"),
    "different_persons": N_("Not the same"),
    "dismissed": N_("Dismissed"),
}
DECIDED = {
    "same": N_("Recorded: the same person. The two records were merged."),
    "different": N_("Recorded: not the same person. The pair will not be proposed again."),
}
ALREADY_DECIDED = N_("This pair was already decided by another reviewer.")
ALREADY_MERGED = N_(
    "One of the two records was merged into another person meanwhile: they cannot be merged "
    "as asked."
)
NO_HOUSEHOLD = N_(
    "The record whose household you chose belongs to no household: choose the other one."
)
CHOOSE_RECORD = N_("Choose which of the two records to keep.")
MERGED_NOW = N_("Recorded: the two records were merged.")
UNMERGED = N_("The merge was undone: both records are as they were before it.")
MERGE_NOTICES = {"unmerged": UNMERGED, "merged": MERGED_NOW}
CANNOT_UNMERGE = N_(
    "This merge can no longer be undone exactly: the records or their households have "
    "changed since, or it was already undone."
)

# What the pair's table shows, in this order; any other field that differs follows.
NAME_PARTS = ("given_name", "father_name", "grandfather_name", "family_name")
PAIR_FIELDS = (
    *(f"{part}_ar" for part in NAME_PARTS),
    *(f"{part}_lat" for part in NAME_PARTS),
    "sex",
    "birth_date",
    "death_date",
    "national_id",
    "relationship",
)
PLACE_FIELDS = ("area_code", "household_id")


def _label(name: str) -> str:
    if name in fields.PERSON:
        return getattr(fields.PERSON[name].labels, current_locale())
    if name in fields.HOUSEHOLD:
        return getattr(fields.HOUSEHOLD[name].labels, current_locale())
    return {"household_id": gettext("Household"), "merged_into": gettext("Merged into")}.get(
        name, name
    )


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, dict) and "number" in value:  # an identity document
        return str(value["number"])
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


def _rows(view) -> list[dict[str, Any]]:
    first, second = view.records
    differing = set(view.differing)
    names = [*PAIR_FIELDS, *PLACE_FIELDS]
    names += sorted(differing - set(names))
    return [
        {
            "name": name,
            "label": _label(name),
            "values": (_shown(first.get(name)), _shown(second.get(name))),
            "differs": name in differing,
            # Names are written in their own script and direction, whatever the page's.
            "script": "ar" if name.endswith("_ar") else "lat" if name.endswith("_lat") else None,
        }
        for name in names
        if name in differing or first.get(name) is not None or second.get(name) is not None
    ]


def _full_name(member: dict[str, Any], script: str) -> str:
    return " ".join(part for name in NAME_PARTS if (part := member.get(f"{name}_{script}")))


def _percent(probability: float | None) -> Decimal | None:
    # A score, shown as a share to a tenth of a percent (the `percent` filter): through its
    # text, so the float's binary noise never reaches the page.
    if probability is None:
        return None
    return Decimal(repr(probability)).quantize(Decimal("0.001"))


def _weight(weight: float | None) -> Decimal | None:
    return None if weight is None else Decimal(repr(weight)).quantize(Decimal("0.01"))


@router.get("/review", name="web_review_queue")
def queue(
    request: Request,
    principal: PrincipalDep,
    page_number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    decided: Annotated[str | None, Query(max_length=16)] = None,
    merge: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    with transaction(request, principal) as session:
        items, count = review_queue(session, principal, page=page_number, page_size=PAGE_SIZE)
    rows = [
        {
            "flag": item.flag,
            "kind": gettext(KINDS.get(item.flag.kind, item.flag.kind)),
            "score": _percent(item.match_probability),
            "weight": _weight(item.match_weight),
        }
        for item in items
    ]
    return page(
        request,
        "review_queue.html",
        rows=rows,
        count=count,
        page_number=page_number,
        pages=max(1, -(-count // PAGE_SIZE)),
        notice=gettext(DECIDED[decided]) if decided in DECIDED else None,
        merge_id=merge if decided == "same" else None,
    )


def _pair_page(
    request: Request, principal: Principal, flag_id: int, status: int = 200, **notes: Any
) -> Response:
    with transaction(request, principal) as session:
        view = pair_view(session, principal, flag_id)
    if "conflict" in notes:
        # Decided meanwhile by someone else, or one record merged elsewhere: the flag says.
        notes.pop("conflict")
        notes["refusal"] = gettext(ALREADY_DECIDED if view.flag.state != OPEN else ALREADY_MERGED)
    first, second = view.records
    evidence = view.evidence
    return page(
        request,
        "review_pair.html",
        status=status,
        view=view,
        kind=gettext(KINDS.get(view.flag.kind, view.flag.kind)),
        decision=gettext(DECISIONS[view.flag.decision]) if view.flag.decision else None,
        rows=_rows(view),
        households=[
            [
                {
                    "person_id": member["person_id"],
                    "ar": _full_name(member, "ar"),
                    "lat": _full_name(member, "lat"),
                    "relationship": member.get("relationship"),
                    "birth_date": member.get("birth_date"),
                }
                for member in members
            ]
            for members in (view.household_members or [[], []])
        ],
        # Which membership continues is asked only when the two live in two households.
        two_households=bool(
            first.get("household_id")
            and second.get("household_id")
            and first["household_id"] != second["household_id"]
        ),
        score=_percent(evidence.match_probability) if evidence else None,
        weight=_weight(evidence.match_weight) if evidence else None,
        levels=[
            {"name": name, "level": level.get("level"), "weight": _weight(level.get("weight"))}
            for name, level in (evidence.levels.items() if evidence else ())
            if isinstance(level, dict)
        ],
        may_read_model=principal.may(Permission.LINKAGE_RUN),
        **notes,
    )


@router.get("/review/{flag_id}", name="web_review_pair")
def pair(request: Request, principal: PrincipalDep, flag_id: FlagId) -> Response:
    return _pair_page(request, principal, flag_id)


@router.post("/review/{flag_id}/decision", name="web_review_decide")
def decide(
    request: Request,
    principal: PrincipalDep,
    flag_id: FlagId,
    csrf: Csrf = "",
    decision: Annotated[str, Form(pattern="^(same_person|different_persons)$")] = "",
    keep: Annotated[str, Form(max_length=40)] = "",
    keep_membership_of: Annotated[str, Form(pattern="^(kept|lost)?$")] = "",
) -> Response:
    check_csrf(request, csrf)
    same = decision == "same_person"
    try:
        kept = parse_id("person", keep) if same and keep else None
        with transaction(request, principal) as session:
            # "Same person" merges them, as the API's decision with `keep_membership_of` does
            # (the record registered first is kept unless the reviewer chose).
            decided = decide_flag(
                session,
                principal,
                flag_id,
                decision,
                keep=kept,
                keep_membership_of=(keep_membership_of or "kept") if same else None,
            )
    except Conflict:
        return _pair_page(request, principal, flag_id, status=409, conflict=True)
    except InvalidInput as error:
        household = any(f.field == "keep_membership_of" for f in error.errors)
        message = gettext(NO_HOUSEHOLD if household else CHOOSE_RECORD)
        return _pair_page(request, principal, flag_id, status=422, refusal=message)
    # Post, redirect, get: reloading the queue does not send the decision again.
    target = f"{QUEUE}?decided={'same' if same else 'different'}"
    if decided.merge_id is not None:
        target += f"&merge={decided.merge_id}"
    return RedirectResponse(target, status_code=303)


def _merge_page(
    request: Request, principal: Principal, merge_id: int, status: int = 200, **notes: Any
) -> Response:
    with transaction(request, principal) as session:
        merge = get_merge(session, principal, merge_id)
    return page(
        request,
        "review_merge.html",
        status=status,
        merge=merge,
        in_force=merge.state == MERGED,
        weight=_weight(merge.match_weight),
        score=_percent(merge.match_probability),
        **notes,
    )


@router.get("/review/merges/{merge_id}", name="web_merge")
def merge_page(request: Request, principal: PrincipalDep, merge_id: MergeId) -> Response:
    # What the form that led here did (post, redirect, get): `?merged=1` or `?unmerged=1`.
    said = [notice for key, notice in MERGE_NOTICES.items() if request.query_params.get(key) == "1"]
    notice = said[0] if said else None
    return _merge_page(request, principal, merge_id, notice=notice and gettext(notice))


@router.post("/review/merges/{merge_id}/unmerge", name="web_unmerge")
def unmerge_page(
    request: Request, principal: PrincipalDep, merge_id: MergeId, csrf: Csrf = ""
) -> Response:
    check_csrf(request, csrf)
    try:
        with transaction(request, principal) as session:
            unmerge(session, principal, merge_id)
    except Conflict:
        return _merge_page(
            request, principal, merge_id, status=409, refusal=gettext(CANNOT_UNMERGE)
        )
    return RedirectResponse(f"{QUEUE}/merges/{merge_id}?unmerged=1", status_code=303)
