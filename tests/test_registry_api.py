"""Registering and reading households through the API, and how it answers mistakes."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from factories import (
    LOCALITY,
    auth_headers,
    child,
    household,
    invalid_national_id,
    make_areas,
    national_id,
    person,
    spouse,
)
from sijill.api import create_app
from sijill.core.ids import format_id, new_id
from sijill.registry.models import Household, HouseholdVersion, Membership, Person, PersonVersion

PROBLEM = "application/problem+json"


@pytest.fixture
def client(settings, sessions):
    make_areas(sessions)
    with TestClient(create_app(settings), headers=auth_headers(sessions, settings)) as client:
        yield client


def row_counts(sessions) -> dict[str, int]:
    with sessions() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Household, HouseholdVersion, Person, PersonVersion, Membership)
        }


def assert_problem(response, status: int, fields: list[str] | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"] == "about:blank"
    if fields is not None:
        assert [error["field"] for error in body["errors"]] == fields, body
    return body


def test_register_household(client):
    payload = household()
    response = client.post("/households", json=payload)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"].endswith(f"/households/{created['household_id']}")
    assert len(created["household_id"]) == 10
    assert created["version"] == 1
    assert created["area_code"] == LOCALITY
    assert created["valid_to"] is None
    assert created["recorded_by"] == "administrator-national"
    assert created["consent"] == payload["consent"]
    assert created["livestock"] == {"poultry": 6}
    head, wife, son = created["members"]
    assert head["relationship"] == "head"
    assert len(head["person_id"]) == 12
    assert head["national_id"] == payload["members"][0]["national_id"]
    assert head["membership_start"] is not None and head["membership_end"] is None
    assert (wife["birth_date"], son["birth_date"]) == ("1984", "2015-03")

    read = client.get(response.headers["location"]).json()
    assert read == created


def test_read_household_is_one_statement(settings, sessions):
    make_areas(sessions)
    app = create_app(settings)
    statements: list[str] = []
    with TestClient(app, headers=auth_headers(sessions, settings)) as client:
        small = client.post("/households", json=household(members=[person()])).json()
        large = household(members=[person(), spouse(), *(child() for _ in range(8))])
        large = client.post("/households", json=large).json()
        event.listen(
            app.state.loop_engine,
            "before_cursor_execute",
            lambda *args: statements.append(args[2]),
        )
        for created in (small, large):
            statements.clear()
            read = client.get(f"/households/{created['household_id']}").json()
            assert len(read["members"]) == len(created["members"])
            assert len(statements) == 1


def test_read_household_round_trips_every_field(client):
    payload = household(
        members=[
            person(
                grandfather_name_ar="علي",
                grandfather_name_lat="Ali",
                phone="+962 79-123 4567",
                wg_seeing=1,
                wg_hearing=2,
                wg_walking=3,
                wg_cognition=1,
                wg_selfcare=4,
                wg_communication=1,
            )
        ],
        assets=["mobile_phone", "tv", "tv"],
        livestock={"sheep": 12, "goats": 0},
    )
    created = client.post("/households", json=payload).json()
    read = client.get(f"/households/{created['household_id']}").json()
    head = read["members"][0]
    for field, value in payload["members"][0].items():
        expected = "+962791234567" if field == "phone" else value
        assert head[field] == expected, field
    assert read["assets"] == ["tv", "mobile_phone"]
    assert read["livestock"] == {"sheep": 12}
    for field in ("address", "dwelling_rooms", "latitude", "registration_date", "enumerator"):
        assert read[field] == payload[field]


def test_person_facts_round_trip_and_grade_needs_enrollment(client, sessions):
    facts = {
        "contributory_pension": True,
        "monthly_income": 4_500_000_000,  # minor units, beyond a 32-bit integer
    }
    pupil = {"school_grade": 4, "orphanhood": "paternal"}
    payload = household(members=[person(**facts), child(**pupil)])
    created = client.post("/households", json=payload).json()
    read = client.get(f"/households/{created['household_id']}").json()
    head, pupil_read = read["members"]
    assert {name: head[name] for name in facts} == facts
    assert {name: pupil_read[name] for name in pupil} == pupil

    truant = household(members=[person(), child(enrolled=False, school_grade=4)])
    body = assert_problem(client.post("/households", json=truant), 422, ["members.1"])
    assert "school_grade is given only when enrolled is true" in body["errors"][0]["message"]
    assert row_counts(sessions)["household"] == 1


def test_register_household_normalises_phone_digits(client):
    payload = household(members=[person(phone="٠٠٩٦٢ ٧٩١ ٢٣٤ ٥٦٧")])
    created = client.post("/households", json=payload).json()
    assert created["members"][0]["phone"] == "+962791234567"


def test_register_household_bad_phone(client, sessions):
    payload = household(members=[person(phone="+962 (79) 1234567")])
    body = assert_problem(client.post("/households", json=payload), 422, ["members.0.phone"])
    assert "only digits, spaces and dashes" in body["errors"][0]["message"]
    assert row_counts(sessions)["person"] == 0


def test_register_household_invalid_national_id_writes_nothing(client, sessions):
    members = [person(), spouse(national_id={"type": "national_id", "number": "12345678901"})]
    members[0]["national_id"]["number"] = invalid_national_id()
    response = client.post("/households", json=household(members=members))
    body = assert_problem(
        response, 422, ["members.0.national_id.number", "members.1.national_id.number"]
    )
    assert "not valid" in body["errors"][0]["message"]
    assert body["instance"] == "/households"
    assert set(row_counts(sessions).values()) == {0}


def test_register_household_other_document_types(client):
    members = [
        person(national_id={"type": "unhcr", "number": "123-45c67890"}),
        spouse(national_id={"type": "passport", "number": "n1234567"}),
    ]
    created = client.post("/households", json=household(members=members)).json()
    assert [m["national_id"]["number"] for m in created["members"]] == ["123-45C67890", "N1234567"]

    members = [person(national_id={"type": "unhcr", "number": "12345"})]
    response = client.post("/households", json=household(members=members))
    assert_problem(response, 422, ["members.0.national_id.number"])


def test_register_household_duplicate_national_id(client, sessions):
    number = national_id()
    first = household(members=[person(national_id={"type": "national_id", "number": number})])
    client.post("/households", json=first).raise_for_status()
    again = household(members=[person(national_id={"type": "national_id", "number": number})])
    body = assert_problem(
        client.post("/households", json=again), 422, ["members.0.national_id.number"]
    )
    assert "already registered" in body["errors"][0]["message"]
    twice = household(
        members=[
            person(national_id={"type": "national_id", "number": national_id()}),
            spouse(),
        ]
    )
    twice["members"][1]["national_id"] = twice["members"][0]["national_id"]
    assert_problem(client.post("/households", json=twice), 422, ["members.1.national_id.number"])
    assert row_counts(sessions)["household"] == 1


@pytest.mark.parametrize("heads", [0, 2])
def test_register_household_needs_one_head(client, sessions, heads):
    members = [person("head" if i < heads else "child") for i in range(3)]
    body = assert_problem(client.post("/households", json=household(members=members)), 422)
    assert body["errors"][0]["field"] == "members"
    assert "exactly one member with relationship head" in body["errors"][0]["message"]
    assert row_counts(sessions)["household"] == 0


def test_register_household_unknown_area(client, sessions):
    response = client.post("/households", json=household(area_code="XX99"))
    body = assert_problem(response, 422, ["area_code"])
    assert "XX99" in body["errors"][0]["message"]
    response = client.post("/households", json=household(area_code="SJ0101"))
    assert "district" in assert_problem(response, 422, ["area_code"])["errors"][0]["message"]
    assert row_counts(sessions)["household"] == 0


def test_register_household_field_errors_are_dotted_paths(client):
    members = [person(birth_date="1980-13"), child(relationship="cousin", wg_seeing=5)]
    response = client.post(
        "/households", json=household(members=members, dwelling_walls="glass", extra_field=1)
    )
    body = assert_problem(response, 422)
    fields = {error["field"] for error in body["errors"]}
    assert {
        "dwelling_walls",
        "extra_field",
        "members.0.birth_date",
        "members.1.relationship",
        "members.1.wg_seeing",
    } <= fields
    message = next(e["message"] for e in body["errors"] if e["field"] == "members.0.birth_date")
    assert message == "'1980-13' is not a date in the calendar"


def test_register_household_not_json(client):
    response = client.post(
        "/households", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, ["body"])


def test_read_household_mistyped_id(client):
    created = client.post("/households", json=household()).json()
    good = created["household_id"]
    typo = good[:3] + good[4] + good[3] + good[5:]
    if typo == good:
        typo = good[:-1] + str((int(good[-1]) + 1) % 10)
    body = assert_problem(client.get(f"/households/{typo}"), 422, ["household_id"])
    assert "check digit does not match" in body["detail"]
    assert "check digit does not match" in body["errors"][0]["message"]
    assert_problem(client.get("/households/12ab"), 422, ["household_id"])


def test_read_household_unknown(client):
    body = assert_problem(client.get(f"/households/{format_id(new_id('household'))}"), 404, [])
    assert "no household" in body["detail"]


def test_routing_errors_are_problems(client):
    assert_problem(client.get("/nowhere"), 404)
    body = assert_problem(client.delete("/households"), 405)
    assert body["title"] == "Method Not Allowed"


def test_unexpected_error_is_a_problem_without_internals(settings, sessions, monkeypatch):
    from sijill.registry import service

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals: national id 12345678901")

    monkeypatch.setattr(service, "get_household", broken)
    with TestClient(
        create_app(settings),
        raise_server_exceptions=False,
        headers=auth_headers(sessions, settings),
    ) as client:
        response = client.get(f"/households/{format_id(new_id('household'))}")
    body = assert_problem(response, 500, [])
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert body["title"] == "Internal Server Error"


def test_openapi_and_docs_served(client):
    spec = client.get("/openapi.json").json()
    operations = {
        operation["operationId"] for path in spec["paths"].values() for operation in path.values()
    }
    assert {
        "register_household",
        "read_household",
        "update_household",
        "search_households",
        "read_household_history",
        "health",
    } <= operations
    put = spec["paths"]["/households/{household_id}"]["put"]
    assert PROBLEM in put["responses"]["409"]["content"]
    assert "Problem" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200


def test_health(client):
    assert client.get("/health").json()["status"] == "ok"
