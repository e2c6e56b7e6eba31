"""The characters rule of names and free text (`identity.text`) on every path that writes them:
the API answers 422 naming the field, the import rejects the row with its reason, and neither
repeats the refused value."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import as_update, auth_headers, household, make_areas, member_update, person
from sijill.api import create_app
from sijill.registry.bulk.service import import_path
from sijill.registry.models import Household, Person
from test_import import counts, make_folder, read_rejects
from test_import import household as household_row
from test_import import person as person_row

SPOOFS = ["Ahmad\u202edemhA", "Ahmad\x1b[2J", "Ahmad\x07", "Ahmad\r\nFatima", "Ah\u200bmad"]


@pytest.fixture
def client(settings, sessions):
    make_areas(sessions)
    with TestClient(create_app(settings), headers=auth_headers(sessions, settings)) as client:
        yield client


@pytest.mark.parametrize("value", SPOOFS)
def test_api_refuses_a_spoofing_name_naming_the_field(client, sessions, value):
    payload = household(members=[person(family_name_lat=value)])
    response = client.post("/households", json=payload)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == ["members.0.family_name_lat"]
    assert "is not allowed" in errors[0]["message"]
    assert "Ahmad" not in response.text and "demhA" not in response.text
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == 0


def test_api_refuses_a_spoofing_address_and_on_update(client):
    response = client.post("/households", json=household(address="12 Olive St\u202e"))
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["address"]
    created = client.post("/households", json=household()).json()
    members = [member_update(m) for m in created["members"]]
    members[0]["given_name_ar"] = "أحمد\u2066"
    update = as_update(created, members=members)
    response = client.put(f"/households/{created['household_id']}", json=update)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["members.0.given_name_ar"]


def test_api_keeps_names_nfc_and_a_persian_zwnj(client):
    payload = household(members=[person(given_name_lat="Zoe\u0301", given_name_ar="محمد\u200cرضا")])
    response = client.post("/households", json=payload)
    assert response.status_code == 201, response.text
    member = response.json()["members"][0]
    assert member["given_name_lat"] == "Zoé"
    assert member["given_name_ar"] == "محمد\u200cرضا"


def test_import_rejects_spoofing_text_with_its_reason_never_the_value(engine, settings, tmp_path):
    spoofed_address = household_row("H2")
    spoofed_address[2] = "Street\u202e 9"
    spoofed_name = person_row("P3", "H3")
    spoofed_name[4] = "Ahmed\x1b]8;;http://x\x07"  # given_name_lat: a terminal hyperlink
    decomposed = person_row("P1", "H1")
    decomposed[4] = "Zoe\u0301"
    folder = make_folder(
        tmp_path / "src",
        [household_row("H1"), spoofed_address, household_row("H3")],
        [decomposed, person_row("P2", "H2"), spoofed_name],
    )
    report = import_path(engine, settings, folder)
    assert counts(engine) == (1, 1, 1)
    rejects = read_rejects(report.rejects_path)
    by_key = {(r["record_key"], r["field"]): r for r in rejects}
    for key, field in (("H2", "address"), ("P3", "given_name_lat")):
        line = by_key[(key, field)]
        assert line["message"].startswith("disallowed_character: ")
        assert line["value"] == ""
    text = report.rejects_path.read_text(encoding="utf-8-sig")
    assert "\x1b" not in text and "\u202e" not in text
    with Session(engine) as session:
        assert session.scalar(select(Person.given_name_lat)) == "Zoé"
        assert session.scalar(select(Household.address)) == "Street H1"


def test_rejects_file_quotes_agency_cells_inertly(engine, settings, tmp_path):
    """A rejected code quoted back in the rejects file cannot run in a spreadsheet nor act on a
    terminal that shows the file."""
    formula = household_row("H1", walls='=HYPERLINK("http://x","click")')
    escape = household_row("H2", walls="brick\x1b[2J")
    folder = make_folder(
        tmp_path / "src", [formula, escape], [person_row("P1", "H1"), person_row("P2", "H2")]
    )
    report = import_path(engine, settings, folder)
    text = report.rejects_path.read_text(encoding="utf-8-sig")
    assert "\x1b" not in text
    by_key = {(r["record_key"], r["field"]): r for r in read_rejects(report.rejects_path)}
    assert by_key[("H1", "dwelling_walls")]["value"] == '\'=HYPERLINK("http://x","click")'
    assert by_key[("H2", "dwelling_walls")]["value"] == "brick\\x1b[2J"
