"""Merging two records of one person and undoing it: both records kept, the lost one pointing
to the kept one, one membership continuing, and an unmerge that gives back every column of
both persons, their versions and their memberships exactly."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import or_, select
from typer.testing import CliRunner

from factories import (
    LOCALITY,
    OTHER_LOCALITY,
    as_update,
    auth_headers,
    child,
    household,
    make_areas,
    make_user,
    member_update,
    national_id,
    person,
    spouse,
)
from sijill.api import create_app
from sijill.cli import _register_commands
from sijill.cli import app as cli_app
from sijill.core import clock as core_clock
from sijill.core.db import transaction
from sijill.core.errors import NotFound
from sijill.core.ids import format_id, new_id
from sijill.core.settings import get_settings
from sijill.registry.merges.models import PersonMerge
from sijill.registry.merges.schemas import MergeEvidence
from sijill.registry.merges.service import merge_persons
from sijill.registry.models import (
    Household,
    HouseholdVersion,
    Membership,
    Person,
    PersonVersion,
)
from sijill.registry.reviews.models import ReviewFlag
from sijill.security.audit.models import AuditRecord
from sijill.security.principal import Principal

DISTRICT = "SJ0101"  # holds LOCALITY, not OTHER_LOCALITY
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    pinned = Clock()
    monkeypatch.setattr(core_clock, "utcnow", lambda: pinned.now)
    return pinned


@pytest.fixture
def world(settings, sessions, clock):
    make_areas(sessions)
    app = create_app(settings)
    with (
        TestClient(app, headers=auth_headers(sessions, settings)) as admin,
        TestClient(app, headers=auth_headers(sessions, settings, "registrar")) as national,
        TestClient(app, headers=auth_headers(sessions, settings, "registrar", DISTRICT)) as local,
        TestClient(app, headers=auth_headers(sessions, settings, "auditor")) as auditor,
    ):
        yield admin, national, local, auditor


def _register(client, payload) -> dict:
    response = client.post("/households", json=payload)
    assert response.status_code == 201, response.text
    return response.json()


def _ids(public: dict) -> list[str]:
    return [member["person_id"] for member in public["members"]]


def _pair(client, clock, *, other_area: str = LOCALITY) -> tuple[dict, dict]:
    """Household A (a head and a spouse) and, a day later, household B whose head is the same
    man registered again (and then corrected once, so he has a history of his own)."""
    first = _register(client, household(members=[person(), spouse()]))
    clock.advance(days=1)
    second = _register(
        client,
        household(area_code=other_area, members=[person(given_name_lat="Ahmed"), child()]),
    )
    clock.advance(days=1)
    changed = as_update(second)
    changed["members"][0] = member_update(second["members"][0], given_name_lat="Ahmad")
    response = client.put(f"/households/{second['household_id']}", json=changed)
    assert response.status_code == 200, response.text
    clock.advance(days=1)
    return first, response.json()


def _snapshot(sessions, person_ids: list[int]) -> dict:
    """Every column of the persons, their versions, every membership of theirs or of their
    households, and the households with their versions."""
    with sessions() as session:
        households = set(
            session.scalars(
                select(Membership.household_id).where(Membership.person_id.in_(person_ids))
            )
        )

        def rows(table, condition, order):
            query = select(table).where(condition).order_by(*order)
            return [dict(row) for row in session.execute(query).mappings()]

        p, pv, m = Person.__table__, PersonVersion.__table__, Membership.__table__
        h, hv = Household.__table__, HouseholdVersion.__table__
        return {
            "persons": rows(p, p.c.id.in_(person_ids), [p.c.id]),
            "person_versions": rows(
                pv, pv.c.person_id.in_(person_ids), [pv.c.person_id, pv.c.version]
            ),
            "memberships": rows(
                m,
                or_(m.c.person_id.in_(person_ids), m.c.household_id.in_(households)),
                [m.c.id],
            ),
            "households": rows(h, h.c.id.in_(households), [h.c.id]),
            "household_versions": rows(
                hv, hv.c.household_id.in_(households), [hv.c.household_id, hv.c.version]
            ),
        }


def _open(sessions, person_id: int) -> list[tuple[int, str]]:
    with sessions() as session:
        return session.execute(
            select(Membership.household_id, Membership.relationship).where(
                Membership.person_id == person_id, Membership.end_date.is_(None)
            )
        ).all()


@pytest.mark.parametrize("side", ["kept", "lost"])
def test_a_merge_and_its_unmerge_give_back_both_records_exactly(world, sessions, clock, side):
    admin, national, local, auditor = world
    first, second = _pair(national, clock)
    kept, lost = int(_ids(first)[0]), int(_ids(second)[0])
    household_a, household_b = int(first["household_id"]), int(second["household_id"])
    before = _snapshot(sessions, [kept, lost])
    assert len(before["person_versions"]) == 1  # the lost man's correction

    merged = national.post(
        f"/persons/{kept}/merge", json={"lost": str(lost), "keep_membership_of": side}
    )
    assert merged.status_code == 201, merged.text
    body = merged.json()
    continuing = household_a if side == "kept" else household_b
    assert (body["state"], body["kept_person_id"], body["lost_person_id"]) == (
        "merged",
        str(kept),
        str(lost),
    )
    assert body["household_id"] == str(continuing)
    assert body["membership_created"] == (side == "lost")
    ended = {(e["person_id"], e["household_id"]) for e in body["memberships_ended"]}
    if side == "kept":
        assert ended == {(str(lost), str(household_b))}
    else:
        assert ended == {(str(kept), str(household_a)), (str(lost), str(household_b))}
    assert (body["match_weight"], body["levels"], body["model_version"]) == (None, None, None)

    # The kept man has one open membership, in the chosen household (as head, as the lost
    # record was there); every other ends "merged" on the day of the merge.
    assert _open(sessions, kept) == [(continuing, "head")]
    assert _open(sessions, lost) == []
    with sessions() as session:
        assert session.get(Person, lost).merged_into_id == kept
        assert session.get(Person, kept).merged_into_id is None
        closed = session.execute(
            select(Membership.person_id, Membership.end_date, Membership.end_reason).where(
                Membership.end_reason == "merged"
            )
        ).all()
    assert sorted(closed) == sorted(
        (int(person_id), clock.now.date(), "merged") for person_id, _ in ended
    )
    # Nothing else of the two was rewritten: persons' and households' versions as they were.
    after = _snapshot(sessions, [kept, lost])
    assert after["person_versions"] == before["person_versions"]
    assert after["household_versions"] == before["household_versions"]
    assert after["households"] == before["households"]

    # Reads: the household no longer lists the lost record as a current member; as it was
    # before, and in its history, the lost record says whose it is now.
    now_b = national.get(f"/households/{household_b}").json()
    assert str(lost) not in _ids(now_b)
    assert (str(kept) in _ids(now_b)) == (side == "lost")
    earlier = national.get(f"/households/{household_b}", params={"as_of": "2026-03-04"}).json()
    shown = {m["person_id"]: m["merged_into"] for m in earlier["members"]}
    assert shown[str(lost)] == str(kept)
    assert shown[_ids(second)[1]] is None
    history = national.get(f"/households/{household_b}/history").json()
    merged_rows = [m for m in history["memberships"] if m["person_id"] == str(lost)]
    assert [(m["end_reason"], m["merged_into"]) for m in merged_rows] == [("merged", str(kept))]
    # Searches find the lost record's number no more as a member of its own.
    found = national.get("/households", params={"registry_id": str(lost)}).json()
    assert found["count"] == 0

    clock.advance(hours=2)
    undone = national.post(f"/merges/{body['merge_id']}/unmerge")
    assert undone.status_code == 200, undone.text
    assert (undone.json()["state"], undone.json()["unmerged_by"]) == (
        "unmerged",
        "registrar-national",
    )
    assert _snapshot(sessions, [kept, lost]) == before

    again = national.post(f"/merges/{body['merge_id']}/unmerge")
    assert again.status_code == 409
    assert "already undone" in again.json()["detail"]
    read = national.get(f"/merges/{body['merge_id']}").json()
    assert read["state"] == "unmerged"

    with sessions() as session:
        audited = session.execute(
            select(AuditRecord.action, AuditRecord.outcome, AuditRecord.record_type).where(
                AuditRecord.record_id == str(body["merge_id"])
            )
        ).all()
        texts = [
            json.dumps(list(row), default=str, ensure_ascii=False)
            for row in session.execute(select(AuditRecord.__table__)).all()
        ]
    assert ("person.merge", "ok", "person_merge") in audited
    assert ("person.unmerge", "ok", "person_merge") in audited
    assert not any("Ahmad" in text or "أحمد" in text for text in texts)


def test_merges_are_refused_when_they_make_no_sense(world, sessions, clock):
    admin, national, local, auditor = world
    first, second = _pair(national, clock)
    third = _register(national, household(members=[person(given_name_lat="Ahmet")]))
    kept, lost, other = int(_ids(first)[0]), int(_ids(second)[0]), int(_ids(third)[0])

    itself = national.post(f"/persons/{kept}/merge", json={"lost": str(kept)})
    assert itself.status_code == 422
    assert "themselves" in itself.json()["detail"]

    assert national.post(f"/persons/{kept}/merge", json={"lost": str(lost)}).status_code == 201
    twice = national.post(f"/persons/{other}/merge", json={"lost": str(lost)})
    assert twice.status_code == 409
    assert twice.json()["detail"] == f"Person {lost} was already merged into person {kept}"
    into_merged = national.post(f"/persons/{lost}/merge", json={"lost": str(other)})
    assert into_merged.status_code == 409
    assert f"merged into person {kept}" in into_merged.json()["detail"]

    # A merged-away record cannot be listed as a member again.
    now_a = national.get(f"/households/{first['household_id']}").json()
    listed = as_update(now_a)
    listed["members"].append(member_update(second["members"][0], relationship="other_relative"))
    listed["members"][-1]["person_id"] = str(lost)
    refused = national.put(f"/households/{first['household_id']}", json=listed)
    assert refused.status_code == 422, refused.text
    assert f"merged into person {kept}" in refused.text

    # Whose membership continues must be someone's.
    homeless = _register(national, household(members=[person(), spouse()]))
    departure = as_update(homeless)
    departure["members"] = departure["members"][:1]
    departure["departures"] = [
        {"person_id": homeless["members"][1]["person_id"], "end_reason": "moved"}
    ]
    assert national.put(f"/households/{homeless['household_id']}", json=departure).is_success
    wrong_side = national.post(
        f"/persons/{homeless['members'][1]['person_id']}/merge",
        json={"lost": homeless["members"][0]["person_id"], "keep_membership_of": "kept"},
    )
    assert wrong_side.status_code == 422
    assert "belongs to no household" in wrong_side.json()["detail"]

    assert national.post("/merges/999999/unmerge").status_code == 404
    bad = national.post(f"/persons/{kept}/merge", json={"lost": "12345"})
    assert bad.status_code == 422


def test_an_unmerge_is_refused_once_the_kept_person_moved_on(world, sessions, clock):
    admin, national, local, auditor = world
    first, second = _pair(national, clock)
    kept, lost = int(_ids(first)[0]), int(_ids(second)[0])
    merge_id = national.post(f"/persons/{kept}/merge", json={"lost": str(lost)}).json()["merge_id"]
    clock.advance(days=1)
    # The kept man moves into a third household.
    third = _register(national, household(members=[person(given_name_lat="Omar")]))
    moved = as_update(third)
    head = national.get(f"/households/{first['household_id']}").json()["members"][0]
    moved["members"].append(member_update(head, relationship="other_relative"))
    assert national.put(f"/households/{third['household_id']}", json=moved).is_success
    before = _snapshot(sessions, [kept, lost])

    refused = national.post(f"/merges/{merge_id}/unmerge")
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith(f"Merge {merge_id} cannot be undone exactly")
    assert _snapshot(sessions, [kept, lost]) == before
    with sessions() as session:
        assert session.get(PersonMerge, merge_id).state == "merged"


def test_area_scopes_answer_as_if_the_person_did_not_exist(world, sessions, clock):
    admin, national, local, auditor = world
    first, across = _pair(national, clock, other_area=OTHER_LOCALITY)
    inside = _register(national, household(members=[person(given_name_lat="Ahmed")]))
    kept, lost_across, lost_inside = (int(_ids(h)[0]) for h in (first, across, inside))
    nobody = int(format_id(new_id("person")))

    def seen(response, person_id):
        return response.status_code, response.text.replace(str(person_id), "<id>")

    outside = local.post(f"/persons/{kept}/merge", json={"lost": str(lost_across)})
    missing = local.post(f"/persons/{kept}/merge", json={"lost": str(nobody)})
    assert outside.status_code == 404
    assert seen(outside, lost_across) == seen(missing, nobody)
    reversed_outside = local.post(f"/persons/{lost_across}/merge", json={"lost": str(kept)})
    reversed_missing = local.post(f"/persons/{nobody}/merge", json={"lost": str(kept)})
    assert seen(reversed_outside, lost_across) == seen(reversed_missing, nobody)

    # Roles that do not review may not merge at all.
    assert auditor.post(f"/persons/{kept}/merge", json={"lost": str(lost_inside)}).status_code == (
        403
    )

    # A pair across areas is for a registrar whose scope covers both; its merge is then
    # invisible to the district registrar, exactly as a merge that does not exist.
    across_merge = national.post(f"/persons/{kept}/merge", json={"lost": str(lost_across)})
    assert across_merge.status_code == 201
    merge_id = across_merge.json()["merge_id"]
    missing_id = merge_id + 1000
    for path in ("/merges/{}", "/merges/{}/unmerge"):
        method = local.get if "unmerge" not in path else local.post
        hidden, absent = method(path.format(merge_id)), method(path.format(missing_id))
        assert hidden.status_code == 404
        assert hidden.text.replace(str(merge_id), "<id>") == absent.text.replace(
            str(missing_id), "<id>"
        )
    assert national.post(f"/merges/{merge_id}/unmerge").status_code == 200

    within = local.post(f"/persons/{kept}/merge", json={"lost": str(lost_inside)})
    assert within.status_code == 201, within.text
    assert local.get(f"/merges/{within.json()['merge_id']}").status_code == 200


def _flagged_pair(world, clock) -> tuple[int, int, int]:
    """One number registered twice across areas: (the flag, the older holder, the newer)."""
    admin, national, local, auditor = world
    number = national_id()
    document = {"type": "national_id", "number": number}
    older = _register(
        admin, household(area_code=OTHER_LOCALITY, members=[person(national_id=document)])
    )
    clock.advance(days=1)
    newer = _register(local, household(members=[person(national_id=document), child()]))
    flag_id = national.get("/review-flags").json()["data"][0]["flag_id"]
    return flag_id, int(_ids(older)[0]), int(_ids(newer)[0])


def test_deciding_a_flag_same_person_can_merge_in_the_same_transaction(world, sessions, clock):
    admin, national, local, auditor = world
    flag_id, older, newer = _flagged_pair(world, clock)
    clock.advance(days=1)

    wrong = national.post(
        f"/review-flags/{flag_id}/decision", json={"decision": "dismissed", "keep": str(older)}
    )
    assert wrong.status_code == 422
    stranger = int(_ids(_register(national, household(members=[person()])))[0])
    not_in_pair = national.post(
        f"/review-flags/{flag_id}/decision",
        json={"decision": "same_person", "keep": str(stranger)},
    )
    assert not_in_pair.status_code == 422
    # A merge that fails leaves the flag open: the decision and the merge are one.
    with transaction(sessions) as session:
        session.get(Person, older).merged_into_id = stranger
    failed = national.post(
        f"/review-flags/{flag_id}/decision",
        json={"decision": "same_person", "keep_membership_of": "lost"},
    )
    assert failed.status_code == 409, failed.text
    with sessions() as session:
        assert session.get(ReviewFlag, flag_id).state == "open"
    with transaction(sessions) as session:
        session.get(Person, older).merged_into_id = None

    decided = national.post(
        f"/review-flags/{flag_id}/decision",
        json={"decision": "same_person", "keep_membership_of": "lost"},
    )
    assert decided.status_code == 200, decided.text
    merge_id = decided.json()["merge_id"]
    assert merge_id is not None
    merge = national.get(f"/merges/{merge_id}").json()
    # The older record is kept by default; it moves into the newer one's household.
    assert (merge["kept_person_id"], merge["lost_person_id"]) == (str(older), str(newer))
    assert merge["review_flag_id"] == flag_id
    newer_household = national.get("/households", params={"registry_id": str(older)}).json()
    assert newer_household["data"][0]["area_code"] == LOCALITY
    listed = national.get("/review-flags", params={"state": "decided"}).json()["data"]
    assert [(f["flag_id"], f["merge_id"]) for f in listed] == [(flag_id, merge_id)]

    # The other decisions are as they were: no merge.
    flag_two, _, _ = _flagged_pair(world, clock)
    plain = national.post(f"/review-flags/{flag_two}/decision", json={"decision": "same_person"})
    assert plain.status_code == 200
    assert plain.json()["merge_id"] is None


def test_the_linkage_stage_merges_through_the_service_with_its_evidence(
    world, sessions, settings, clock
):
    admin, national, local, auditor = world
    first, second = _pair(national, clock)
    kept, lost = int(_ids(first)[0]), int(_ids(second)[0])
    evidence = MergeEvidence(
        match_weight=14.25,
        match_probability=0.9993,
        levels={"given_name": 3, "birth_date": 4, "national_id": -1},
        model_version="splink-5:3f9a",
    )
    principal = Principal.system("linkage")
    with transaction(sessions) as session:
        merge = merge_persons(
            session, principal, kept, lost, keep_membership_of="lost", evidence=evidence
        )
    read = national.get(f"/merges/{merge.merge_id}").json()
    assert (read["match_weight"], read["match_probability"], read["model_version"]) == (
        14.25,
        0.9993,
        "splink-5:3f9a",
    )
    assert read["levels"] == {"given_name": 3, "birth_date": 4, "national_id": -1}
    assert read["merged_by"] == "system:linkage"
    assert [entry.action for entry in principal.take_audit()] == ["person.merge"]


@pytest.fixture
def cli(database_url, sessions, tmp_path, monkeypatch):
    if not cli_app.registered_commands:
        _register_commands()
    keys: dict[str, str] = {}

    def run(user: str, role: str, area: str | None, *args: str):
        if user not in keys:
            keys[user] = make_user(sessions, user, role, area, service=True)
        monkeypatch.setenv("SIJILL_DATABASE_URL", database_url)
        monkeypatch.setenv("SIJILL_SERVICE_KEY", f"{user}:{keys[user]}")
        monkeypatch.setenv("SIJILL_SESSION_FILE", str(tmp_path / "session.json"))
        get_settings.cache_clear()
        return CliRunner().invoke(cli_app, list(args))

    yield run
    get_settings.cache_clear()


def test_merge_and_unmerge_from_the_command_line(world, cli, sessions, clock):
    admin, national, local, auditor = world
    first, second = _pair(national, clock, other_area=OTHER_LOCALITY)
    kept, lost = _ids(first)[0], _ids(second)[0]
    before = _snapshot(sessions, [int(kept), int(lost)])

    merged = cli(
        "ana", "registrar", None, "persons", "merge", kept, lost,
        "--keep-membership-of", "lost", "-o", "json",
    )  # fmt: skip
    assert merged.exit_code == 0, merged.output
    row = json.loads(merged.stdout)
    assert (row["state"], row["kept_person_id"], row["lost_person_id"]) == ("merged", kept, lost)
    assert row["household_id"] == second["household_id"]
    assert _open(sessions, int(kept)) == [(int(second["household_id"]), "head")]

    # Out of the district registrar's areas: the answer about a person nobody holds.
    hidden = cli("bob", "registrar", DISTRICT, "persons", "unmerge", str(row["merge_id"]))
    assert isinstance(hidden.exception, NotFound)
    assert hidden.exception.detail == f"There is no merge {row['merge_id']}"

    bad = cli("ana", "registrar", None, "persons", "merge", kept, "12")
    assert bad.exit_code == 2
    assert "LOST" in bad.output and "person registry ID" in bad.output
    side = cli(
        "ana", "registrar", None, "persons", "merge", kept, lost, "--keep-membership-of", "x"
    )
    assert side.exit_code == 2

    undone = cli("ana", "registrar", None, "persons", "unmerge", str(row["merge_id"]), "-o", "json")
    assert undone.exit_code == 0, undone.output
    assert json.loads(undone.stdout)["state"] == "unmerged"
    assert _snapshot(sessions, [int(kept), int(lost)]) == before
