"""Changing households: versions, past states, births, deaths, moves, concurrent edits."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import (
    as_update,
    auth_headers,
    child,
    household,
    make_areas,
    member_update,
    person,
    spouse,
)
from sijill.api import create_app
from sijill.core import clock as core_clock
from sijill.core.db import transaction
from sijill.core.ids import new_id
from sijill.registry import service
from sijill.registry.models import HouseholdVersion, Membership, PersonVersion
from sijill.registry.schemas import HouseholdCreate, HouseholdUpdate
from sijill.security.principal import Grant, Principal

START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch):
    pinned = Clock()
    monkeypatch.setattr(core_clock, "utcnow", lambda: pinned.now)
    return pinned


@pytest.fixture
def client(settings, sessions, clock):
    make_areas(sessions)
    with TestClient(create_app(settings), headers=auth_headers(sessions, settings)) as client:
        yield client


def register(client, payload=None) -> dict:
    response = client.post("/households", json=payload or household())
    assert response.status_code == 201, response.text
    return response.json()


def put(client, current: dict, update: dict, status: int = 200) -> dict:
    response = client.put(f"/households/{current['household_id']}", json=update)
    assert response.status_code == status, response.text
    return response.json()


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_update_household_creates_version(client, clock, sessions):
    before = register(client)
    clock.advance(days=3)
    after = put(client, before, as_update(before, dwelling_walls="brick", assets=["tv"]))
    assert after["version"] == 2
    assert after["dwelling_walls"] == "brick"
    assert after["valid_from"] == "2026-03-05T09:30:00Z"
    assert count(sessions, HouseholdVersion) == 1
    assert count(sessions, PersonVersion) == 0

    hid = before["household_id"]
    old = client.get(f"/households/{hid}", params={"as_of": "2026-03-04"}).json()
    assert old == {**before, "valid_to": "2026-03-05T09:30:00Z"}
    assert client.get(f"/households/{hid}", params={"as_of": "2026-03-05"}).json() == after
    instant = client.get(f"/households/{hid}", params={"as_of": "2026-03-05T09:29:59Z"}).json()
    assert instant["version"] == 1
    in_amman = client.get(f"/households/{hid}", params={"as_of": "2026-03-05T12:31:00+03:00"})
    assert in_amman.json()["version"] == 2


def test_update_household_without_change_keeps_version(client, clock, sessions):
    before = register(client)
    clock.advance(hours=1)
    # Lists are sets, and blank strings are unknown: neither is a change.
    update = as_update(before, assets=list(reversed(before["assets"])), enumerator="E042 ")
    after = put(client, before, update)
    assert after == before
    assert count(sessions, HouseholdVersion) == 0


def test_update_household_stale_version_conflicts(client, clock, sessions):
    before = register(client)
    clock.advance(minutes=5)
    put(client, before, as_update(before, address="first clerk"))
    response = client.put(
        f"/households/{before['household_id']}", json=as_update(before, address="second clerk")
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["errors"][0]["field"] == "version"
    assert "now at version 2" in body["detail"]
    assert client.get(f"/households/{before['household_id']}").json()["address"] == "first clerk"


def test_read_household_before_it_existed(client, clock):
    created = register(client)
    hid = created["household_id"]
    response = client.get(f"/households/{hid}", params={"as_of": "2026-03-01"})
    assert response.status_code == 404
    assert "not yet registered" in response.json()["detail"]
    response = client.get(f"/households/{hid}", params={"as_of": "2026-03-02T09:00:00"})
    assert response.status_code == 404
    response = client.get(f"/households/{hid}", params={"as_of": "yesterday"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "as_of"


def test_birth_and_death_keep_person_ids_and_history(client, clock, sessions):
    grandmother = person(
        "parent", given_name_ar="زينب", given_name_lat="Zainab", sex="F", birth_date="1940"
    )
    before = register(client, household(members=[person(), spouse(), grandmother]))
    head, wife, granny = before["members"]

    clock.advance(days=30)
    baby = child(given_name_ar="مريم", given_name_lat="Maryam", sex="F", birth_date="2026-04-01")
    update = as_update(
        before,
        members=[member_update(head), member_update(wife), baby],
        departures=[
            {"person_id": granny["person_id"], "end_reason": "death", "death_date": "2026-03-28"}
        ],
    )
    after = put(client, before, update)
    assert after["version"] == 2
    assert [m["person_id"] for m in after["members"][:2]] == [head["person_id"], wife["person_id"]]
    newborn = after["members"][2]
    assert newborn["given_name_lat"] == "Maryam" and newborn["membership_start"] == "2026-04-01"

    hid = before["household_id"]
    old = client.get(f"/households/{hid}", params={"as_of": "2026-03-31"}).json()
    assert [m["person_id"] for m in old["members"]] == [m["person_id"] for m in before["members"]]
    assert old["members"][2]["death_date"] is None  # her record as it was then

    history = client.get(f"/households/{hid}/history").json()
    assert [v["version"] for v in history["data"]] == [1, 2]
    assert history["count"] == 2
    ended = [m for m in history["memberships"] if m["end_reason"]]
    assert ended == [
        {
            "person_id": granny["person_id"],
            "relationship": "parent",
            "start_date": "2026-03-02",
            "end_date": "2026-04-01",
            "end_reason": "death",
            "recorded_at": "2026-03-02T09:30:00Z",
            "merged_into": None,
        }
    ]
    with sessions() as session:
        versions = session.scalars(select(PersonVersion)).all()
        assert [(v.person_id, v.death_date) for v in versions] == [(int(granny["person_id"]), None)]


def test_move_member_between_households(client, clock):
    first = register(client)
    head, wife, son = first["members"]
    second = register(client, household(members=[person(given_name_lat="Omar")], address="B"))

    clock.advance(days=10)
    moved = put(
        client,
        second,
        as_update(
            second,
            members=[
                member_update(second["members"][0]),
                member_update(son, relationship="other_relative"),
            ],
        ),
    )
    assert [m["person_id"] for m in moved["members"]] == [
        second["members"][0]["person_id"],
        son["person_id"],
    ]
    left = client.get(f"/households/{first['household_id']}").json()
    assert left["version"] == 2
    assert [m["person_id"] for m in left["members"]] == [head["person_id"], wife["person_id"]]

    history = client.get(f"/households/{first['household_id']}/history").json()
    assert history["memberships"][2]["end_reason"] == "moved"
    assert history["memberships"][2]["end_date"] == "2026-03-12"
    day_before = client.get(
        f"/households/{first['household_id']}", params={"as_of": "2026-03-11"}
    ).json()
    assert day_before["members"][2]["person_id"] == son["person_id"]

    # The first household's clerk still holds version 1: their next change must re-read.
    stale = as_update(first, members=[member_update(m) for m in first["members"][:2]])
    put(client, first, stale, status=409)


def test_update_household_requires_reason_for_leavers(client, clock, sessions):
    before = register(client)
    head, wife, son = before["members"]
    update = as_update(before, members=[member_update(head), member_update(wife)])
    body = put(client, before, update, status=422)
    assert [e["field"] for e in body["errors"]] == ["departures"]
    assert son["person_id"] in body["errors"][0]["message"]

    update["departures"] = [
        {"person_id": son["person_id"], "end_reason": "moved"},
        {"person_id": head["person_id"], "end_reason": "split"},
        {"person_id": str(new_id("person")), "end_reason": "death"},
    ]
    body = put(client, before, update, status=422)
    fields = [e["field"] for e in body["errors"]]
    assert fields == ["departures.1.person_id", "departures.2.person_id"]
    assert "is in members" in body["errors"][0]["message"]

    update["departures"][2]["person_id"] = "123456789012"
    body = put(client, before, update, status=422)
    assert [e["field"] for e in body["errors"]] == ["departures.2.person_id"]
    assert "check digit does not match" in body["errors"][0]["message"]
    assert count(sessions, HouseholdVersion) == 0


def test_update_household_unknown_person(client, clock):
    before = register(client)
    stranger = member_update(before["members"][2], person_id=str(new_id("person")))
    update = as_update(before, members=[*as_update(before)["members"], stranger])
    update["members"][3]["national_id"] = None
    body = put(client, before, update, status=422)
    assert [e["field"] for e in body["errors"]] == ["members.3.person_id"]


def test_relationship_change_is_a_new_membership(client, clock):
    before = register(client)
    head, wife, son = before["members"]
    clock.advance(days=2)
    update = as_update(
        before,
        members=[member_update(wife, relationship="head"), member_update(son)],
        departures=[{"person_id": head["person_id"], "end_reason": "death"}],
    )
    after = put(client, before, update)
    assert [(m["person_id"], m["relationship"]) for m in after["members"]] == [
        (wife["person_id"], "head"),
        (son["person_id"], "child"),
    ]
    hid = before["household_id"]
    old = client.get(f"/households/{hid}", params={"as_of": "2026-03-03"}).json()
    assert [m["relationship"] for m in old["members"]] == ["head", "spouse", "child"]


def test_update_person_makes_person_version(client, clock, sessions):
    before = register(client)
    head, wife, son = before["members"]
    clock.advance(days=1)
    update = as_update(
        before,
        members=[
            member_update(head, employment_status="unemployed", employment_sector=None),
            member_update(wife),
            member_update(son),
        ],
    )
    after = put(client, before, update)
    assert after["version"] == 2
    assert after["members"][0]["version"] == 2
    assert after["members"][1]["version"] == 1
    old = client.get(
        f"/households/{before['household_id']}", params={"as_of": "2026-03-02T23:00:00Z"}
    ).json()
    assert old["members"][0]["employment_status"] == "employed"
    assert old["members"][0]["version"] == 1
    assert count(sessions, PersonVersion) == 1


def clerk(number: int) -> Principal:
    return Principal(f"clerk:{number}", (Grant("registrar", None),))


def test_service_functions_directly(sessions, settings, clock):
    make_areas(sessions)
    with transaction(sessions) as session:
        created = service.register_household(
            session, clerk(7), HouseholdCreate.model_validate(household()), settings=settings
        )
    clock.advance(days=1)
    with transaction(sessions) as session:
        data = as_update(created.model_dump(mode="json"), dwelling_rooms=3)
        changed = service.update_household(
            session,
            clerk(9),
            int(created.household_id),
            HouseholdUpdate.model_validate(data),
            settings=settings,
        )
    assert (changed.version, changed.recorded_by) == (2, "clerk:9")
    with sessions() as session:
        old = service.get_household(session, clerk(1), int(created.household_id), START.date())
        assert (old.dwelling_rooms, old.recorded_by) == (2, "clerk:7")
        history = service.household_history(session, clerk(1), int(created.household_id))
        assert [v.valid_to for v in history.data] == [clock.now, None]
        open_memberships = session.scalar(
            select(func.count()).select_from(Membership).where(Membership.end_date.is_(None))
        )
        assert open_memberships == 3
