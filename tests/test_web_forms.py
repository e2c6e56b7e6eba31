"""The registration and update forms without a browser: the API's errors next to their input
in English and French, nothing saved on error, a form sent twice registering one household, a
stale version refused, a read-only role refused, and a household out of scope answered as a
missing one, byte for byte."""

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import (
    LOCALITY,
    OTHER_LOCALITY,
    as_update,
    auth_headers,
    household,
    invalid_national_id,
    make_areas,
    national_id,
)
from sijill.api import create_app
from sijill.core.ids import format_id, new_id
from sijill.registry import codes, fields
from sijill.registry.code_labels import LABELS, LISTS
from sijill.registry.models import Household, Person
from sijill.web.forms import HOUSEHOLD_INPUTS, SECTIONS
from web_support import csrf_of, sign_in, web_user


class Inputs(HTMLParser):
    """Each input, select and element with an id of a page, by id, with its attributes; and
    the text of each element with an id."""

    def __init__(self, html: str):
        super().__init__()
        self.attrs: dict[str, dict[str, str | None]] = {}
        self.text: dict[str, str] = {}
        self._open: list[tuple[str, str]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if "id" in found:
            self.attrs[found["id"]] = found
            if tag not in ("input", "meta", "link"):
                self._open.append((tag, found["id"]))
                self.text[found["id"]] = ""

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data):
        for _tag, ident in self._open:
            self.text[ident] += data


def error_at(html: str, name: str) -> str:
    """The error shown next to the input `name`: it is described by it and marked invalid."""
    page = Inputs(html)
    ident = "f-" + name.replace(".", "-")
    described = page.attrs[ident].get("aria-describedby") or ""
    assert f"{ident}-error" in described.split(), (name, page.attrs[ident])
    assert page.attrs[ident].get("aria-invalid") == "true", name
    return " ".join(page.text[f"{ident}-error"].split())


def _form_id(html: str) -> str:
    return re.search(r'name="form_id" value="([^"]+)"', html).group(1)


def _version(html: str) -> str:
    return re.search(r'name="version" value="([0-9]+)"', html).group(1)


def filled(html: str, **changes: str) -> dict[str, str | list[str]]:
    """A registration form as a registrar fills it: one head of household."""
    data: dict[str, str | list[str]] = {
        "csrf": csrf_of(html),
        "form_id": _form_id(html),
        "blocks": "1",
        "area_code": LOCALITY,
        "address": "12 Olive Street",
        "dwelling_tenure": "rented",
        "dwelling_rooms": "2",
        "assets": ["tv", "fridge"],
        "livestock.sheep": "12",
        "consent.given": "true",
        "consent.date": "2026-01-15",
        "consent.purposes": ["eligibility_assessment", "payment"],
        "members.0.relationship": "head",
        "members.0.given_name_ar": "أحمد",
        "members.0.family_name_ar": "الخطيب",
        "members.0.given_name_lat": "Ahmad",
        "members.0.family_name_lat": "Al-Khatib",
        "members.0.sex": "M",
        "members.0.birth_date": "1980-05",
        "members.0.national_id.type": "national_id",
        "members.0.national_id.number": national_id(),
    }
    data.update(changes)
    return data


@pytest.fixture
def world(settings, sessions):
    make_areas(sessions)
    app = create_app(settings)
    with TestClient(app, headers=auth_headers(sessions, settings)) as api:
        inside = api.post("/households", json=household()).json()
        outside = api.post("/households", json=household(area_code=OTHER_LOCALITY)).json()
    web_user(sessions, "clerk", "registrar", "SJ01")
    web_user(sessions, "reader", "grievance_officer", "SJ01")
    return app, sessions, inside, outside


def _client(app, user: str, language: str | None = None) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    client.__enter__()
    assert sign_in(client, user).status_code == 303
    if language:
        client.get(f"/web/language/{language}")
    return client


def _count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_every_field_and_code_of_the_catalogue_is_in_the_form():
    shown = {name for _title, names in SECTIONS for name in names}
    assert shown == {f.name for _name, f in HOUSEHOLD_INPUTS}
    coded = [
        f.name
        for catalogue in (fields.HOUSEHOLD, fields.PERSON)
        for f in catalogue.of_kind(fields.Kind.CODE, fields.Kind.CODES, fields.Kind.COUNTS)
        if f.api
    ]
    assert set(coded) <= set(LISTS)
    assert LISTS["end_reason"] == codes.MEMBERSHIP_END_REASONS
    for name, values in LISTS.items():
        assert set(LABELS[name]) == set(values), name
        for labels in LABELS[name].values():
            assert all(labels), (name, labels)


@pytest.mark.parametrize(
    ("language", "number", "given_name", "rooms"),
    [
        ("en", "write a number", "a member needs a given name, in Arabic or Latin script",
         "at most 100"),
        ("fr", "écrivez un nombre", "un membre doit avoir un prénom, en arabe ou en latin",
         "au plus 100"),
    ],
)  # fmt: skip
def test_each_error_next_to_its_input_in_the_users_language_and_nothing_saved(
    world, language, number, given_name, rooms
):
    app, sessions = world[:2]
    households, persons = _count(sessions, Household), _count(sessions, Person)
    client = _client(app, "clerk", language)
    form = client.get("/web/households/new")
    assert form.status_code == 200
    sent = filled(
        form.text,
        latitude="north",
        longitude="35.9",
        dwelling_rooms="500",
        **{"members.0.given_name_ar": "", "members.0.given_name_lat": ""},
    )
    answer = client.post("/web/households/new", data=sent)
    assert answer.status_code == 422
    assert error_at(answer.text, "latitude") == number
    assert error_at(answer.text, "dwelling_rooms") == rooms
    assert error_at(answer.text, "members.0.given_name_ar") == given_name
    # What was typed is still there, and the same one-time form ID.
    assert 'value="Al-Khatib"' in answer.text and 'value="north"' in answer.text
    assert _form_id(answer.text) == sent["form_id"]

    # The service's own checks (area, national ID): once the input itself is right.
    sent = filled(
        answer.text,
        area_code="SJ99",
        **{"members.0.national_id.number": invalid_national_id()},
    )
    answer = client.post("/web/households/new", data=sent)
    assert answer.status_code == 422
    unknown = {
        "en": "there is no area with code 'SJ99'",
        "fr": "aucune localité n'a le code 'SJ99'",
    }
    assert error_at(answer.text, "area_code") == unknown[language]
    not_valid = {
        "en": "this number is not valid for the type of document chosen",
        "fr": "ce numéro n'est pas valide pour le type de pièce choisi",
    }
    assert error_at(answer.text, "members.0.national_id.number") == not_valid[language]
    assert (_count(sessions, Household), _count(sessions, Person)) == (households, persons)


def test_a_form_sent_twice_registers_one_household(world):
    app, sessions = world[:2]
    client = _client(app, "clerk")
    # No national ID: nothing else would refuse the second registration.
    no_number = {"members.0.national_id.type": "", "members.0.national_id.number": ""}
    sent = filled(client.get("/web/households/new").text, **no_number)
    before = _count(sessions, Household)
    first = client.post("/web/households/new", data=sent)
    again = client.post("/web/households/new", data=sent)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert _count(sessions, Household) == before + 1
    page = client.get(first.headers["location"])
    assert page.status_code == 200 and "Al-Khatib" in page.text
    # A new form is a new registration.
    other = filled(client.get("/web/households/new").text)
    assert (
        client.post("/web/households/new", data=other).headers["location"]
        != first.headers["location"]
    )


def test_adding_a_member_block_saves_nothing(world):
    app, sessions = world[:2]
    client = _client(app, "clerk")
    sent = filled(client.get("/web/households/new").text, add_member="1")
    before = _count(sessions, Household)
    answer = client.post("/web/households/new", data=sent)
    assert answer.status_code == 200
    assert 'name="members.1.given_name_ar"' in answer.text and 'value="Al-Khatib"' in answer.text
    assert _count(sessions, Household) == before
    # The new block left empty is no member; a second head is refused at the relationship.
    data = filled(answer.text, blocks="2")
    assert client.post("/web/households/new", data=data).status_code == 303
    data = filled(
        client.get("/web/households/new").text,
        blocks="2",
        **{"members.1.relationship": "head", "members.1.given_name_lat": "Sara"},
    )
    answer = client.post("/web/households/new", data=data)
    assert answer.status_code == 422
    assert "exactly one member whose relationship is head" in answer.text


def _edit_form(client, household_id: str) -> tuple[str, dict[str, str]]:
    page = client.get(f"/web/households/{household_id}/edit")
    assert page.status_code == 200
    values = {}
    for match in re.finditer(r"<input ([^>]*)>", page.text):
        attrs = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', match.group(1)))
        if "name" in attrs and attrs.get("type") != "checkbox":
            values[attrs["name"]] = attrs.get("value", "")
    for match in re.finditer(r'<select [^>]*name="([^"]+)"[^>]*>(.*?)</select>', page.text, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', match.group(2))
        values[match.group(1)] = chosen.group(1) if chosen else ""
    for match in re.finditer(
        r'<input type="checkbox" name="([^"]+)" value="([^"]+)" checked', page.text
    ):
        values.setdefault(match.group(1), [])
        values[match.group(1)].append(match.group(2))  # type: ignore[union-attr]
    if 'name="consent.given" value="true" checked' in page.text:
        values["consent.given"] = "true"
    return page.text, values


def test_update_saves_a_change_and_refuses_a_stale_version(world, settings, sessions):
    app, _sessions, inside = world[:3]
    client = _client(app, "clerk")
    household_id = inside["household_id"]
    page, values = _edit_form(client, household_id)
    assert _version(page) == str(inside["version"])
    assert values["address"] == inside["address"]
    # The child leaves; the address changes.
    changed = {**values, "address": "3 Fig Lane", "members.2.end_reason": "moved"}
    answer = client.post(f"/web/households/{household_id}/edit", data=changed)
    assert answer.status_code == 303, answer.text
    with TestClient(app, headers=auth_headers(sessions, settings)) as api:
        now = api.get(f"/households/{household_id}").json()
        assert now["version"] == inside["version"] + 1 and now["address"] == "3 Fig Lane"
        assert [m["membership_end"] is None for m in now["members"]].count(True) == 2

        # Someone else changes it after the form was opened: the form is refused.
        _page, stale = _edit_form(client, household_id)
        api.put(f"/households/{household_id}", json=as_update(now, address="Elsewhere"))
        refused = client.post(
            f"/web/households/{household_id}/edit", data={**stale, "address": "Mine"}
        )
        assert refused.status_code == 409
        assert "changed by someone else since you opened the form" in refused.text
        after = api.get(f"/households/{household_id}").json()
        assert after["address"] == "Elsewhere" and after["version"] == now["version"] + 1


def test_a_read_only_role_gets_no_form_and_no_link(world):
    app, sessions, inside = world[:3]
    client = _client(app, "reader")
    assert client.get("/web/households/new").status_code == 403
    assert client.get(f"/web/households/{inside['household_id']}/edit").status_code == 403
    clerk_form = _client(app, "clerk").get("/web/households/new").text
    sent = {**filled(clerk_form), "csrf": csrf_of(client.get("/web/households").text)}
    before = _count(sessions, Household)
    assert client.post("/web/households/new", data=sent).status_code == 403
    assert _count(sessions, Household) == before
    search = client.get("/web/households").text
    assert "/web/households/new" not in search
    assert "/edit" not in client.get(f"/web/households/{inside['household_id']}").text
    clerk = _client(app, "clerk")
    assert "/web/households/new" in clerk.get("/web/households").text
    assert (
        f"{inside['household_id']}/edit"
        in clerk.get(f"/web/households/{inside['household_id']}").text
    )


def test_an_out_of_scope_household_is_a_missing_one_byte_for_byte(world):
    app, _sessions, inside, outside = world
    client = _client(app, "clerk")
    missing_id = format_id(new_id("household"))
    hidden = client.get(f"/web/households/{outside['household_id']}/edit")
    missing = client.get(f"/web/households/{missing_id}/edit")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.content == missing.content
    assert hidden.content == client.get(f"/web/households/{missing_id}").content
    _page, values = _edit_form(client, inside["household_id"])
    posted = [
        client.post(f"/web/households/{number}/edit", data=values)
        for number in (outside["household_id"], missing_id)
    ]
    assert posted[0].status_code == posted[1].status_code == 404
    assert posted[0].content == posted[1].content
