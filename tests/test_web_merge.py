"""Merging two records of one person from the household page, without a review flag (the page
of `POST /persons/{id}/merge`): the form's errors next to the field in the user's language,
nothing merged on error, a second submit merging nothing, and the API's permission and scopes
(a record outside the user's areas is answered as one nobody holds)."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from factories import OTHER_LOCALITY, auth_headers, household, make_areas, person
from sijill.api import create_app
from sijill.core.ids import format_id, new_id
from sijill.registry.merges.models import PersonMerge
from sijill.registry.models import Membership, Person
from sijill.security.audit.models import AuditRecord
from web_support import csrf_of, sign_in, web_user


def _registered(api, area_code: str, **fields) -> tuple[str, str]:
    made = api.post("/households", json=household(area_code=area_code, members=[person(**fields)]))
    assert made.status_code == 201, made.text
    return made.json()["household_id"], made.json()["members"][0]["person_id"]


@pytest.fixture
def world(settings, sessions):
    make_areas(sessions)
    app = create_app(settings)
    with TestClient(app, headers=auth_headers(sessions, settings)) as admin:
        # One man registered twice in the north by two offices, and a man in the south.
        north = _registered(admin, "SJ010101", national_id=None)
        twice = _registered(admin, "SJ010102", national_id=None, given_name_lat="Ahmed")
        south = _registered(admin, OTHER_LOCALITY, national_id=None)
    web_user(sessions, "registrar", "registrar")
    web_user(sessions, "clerk", "registrar", "SJ01")
    web_user(sessions, "officer", "program_officer")
    return {"app": app, "sessions": sessions, "north": north, "twice": twice, "south": south}


def _client(world, username: str, language: str | None = None) -> TestClient:
    client = TestClient(world["app"], follow_redirects=False)
    assert sign_in(client, username).status_code == 303
    if language:
        client.cookies.set("sijill_lang", language)
    return client


def _form_url(household_id: str, person_id: str) -> str:
    return f"/web/households/{household_id}/members/{person_id}/merge"


def _merges(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(PersonMerge))


def test_a_registrar_merges_a_duplicate_from_the_household_page(world):
    sessions = world["sessions"]
    (kept_household, kept), (lost_household, lost) = world["north"], world["twice"]
    url = _form_url(kept_household, kept)
    with _client(world, "registrar") as client:
        assert f'href="{url}"' in client.get(f"/web/households/{kept_household}").text
        form = client.get(url)
        assert form.status_code == 200 and 'name="lost"' in form.text
        token = csrf_of(form.text)

        # Each wrong answer comes back next to the field, with what was typed; nothing merged.
        for typed, says in (
            ("12345", "not a person&#39;s registry ID"),
            (kept, "this is the record you are merging into"),
            (format_id(new_id("person")), "no person with this registry ID in your areas"),
        ):
            wrong = client.post(url, data={"csrf": token, "lost": typed})
            assert wrong.status_code == 422, typed
            assert 'id="lost-error"' in wrong.text and says in wrong.text, typed
            assert f'value="{typed}"' in wrong.text
        assert _merges(sessions) == 0

        # The person stays in the other record's household.
        done = client.post(url, data={"csrf": token, "lost": lost, "keep_membership_of": "lost"})
        assert done.status_code == 303, done.text
        with sessions() as session:
            merge = session.scalars(select(PersonMerge)).one()
            assert session.get(Person, int(lost)).merged_into_id == int(kept)
            now_in = session.scalars(
                select(Membership.household_id).where(
                    Membership.person_id == int(kept), Membership.end_date.is_(None)
                )
            ).all()
            audited = session.scalars(
                select(AuditRecord.outcome)
                .where(AuditRecord.action == "person.merge")
                .order_by(AuditRecord.seq)
            ).all()
        assert done.headers["location"] == f"/web/review/merges/{merge.id}?merged=1"
        assert (merge.kept_person_id, merge.lost_person_id) == (int(kept), int(lost))
        assert (merge.review_flag_id, merge.keep_membership_of) == (None, "lost")
        assert now_in == [int(lost_household)]
        # The unknown ID was an attempt on the service, audited as such; the others never got there.
        assert audited == ["not_found", "ok"]
        shown = client.get(done.headers["location"]).text
        assert "the two records were merged" in shown and "Unmerge" in shown

        # The same form sent again merges nothing: the kept record left this household.
        again = client.post(url, data={"csrf": token, "lost": lost, "keep_membership_of": "lost"})
        assert again.status_code == 404
        assert _merges(sessions) == 1


def test_a_second_submit_is_refused_and_merges_nothing(world):
    (kept_household, kept), (_, lost) = world["north"], world["twice"]
    url = _form_url(kept_household, kept)
    with _client(world, "registrar") as client:
        token = csrf_of(client.get(url).text)
        assert client.post(url, data={"csrf": token, "lost": lost}).status_code == 303
        twice = client.post(url, data={"csrf": token, "lost": lost})
        assert twice.status_code == 409 and "already merged" in twice.text
    assert _merges(world["sessions"]) == 1


def test_the_forms_errors_are_in_the_users_language(world):
    (kept_household, kept) = world["north"]
    url = _form_url(kept_household, kept)
    with _client(world, "registrar", "ar") as client:
        page = client.get(url)
        assert 'dir="rtl"' in page.text
        wrong = client.post(url, data={"csrf": csrf_of(page.text), "lost": "12345"})
        assert wrong.status_code == 422
        error = wrong.text.split('id="lost-error"', 1)[1].split("</p>", 1)[0]
        assert "registry ID" not in error and any("\u0600" <= c <= "\u06ff" for c in error)


def test_the_apis_permission_and_scopes_hold_on_the_page(world):
    sessions = world["sessions"]
    (north_household, kept), (_, lost) = world["north"], world["twice"]
    south_household, south = world["south"]
    url = _form_url(north_household, kept)
    with _client(world, "officer") as client:
        household_page = client.get(f"/web/households/{north_household}").text
        assert "/merge" not in household_page  # no merge without the permission
        assert client.get(url).status_code == 403
        refused = client.post(url, data={"csrf": csrf_of(household_page), "lost": lost})
        assert refused.status_code == 403
    with _client(world, "clerk") as client:
        # A household outside the registrar's areas is the page of one that does not exist.
        hidden = client.get(_form_url(south_household, south))
        missing = client.get(_form_url(format_id(new_id("household")), south))
        assert hidden.status_code == missing.status_code == 404
        assert hidden.content == missing.content
        # And a record there is answered as one nobody holds.
        token = csrf_of(client.get(url).text)
        outside = client.post(url, data={"csrf": token, "lost": south})
        assert outside.status_code == 422 and "no person with this registry ID" in outside.text
        # Without the form's CSRF token, nothing happens.
        assert client.post(url, data={"lost": lost}).status_code == 403
    assert _merges(sessions) == 0


def test_a_services_refusal_is_marked_as_english_on_an_arabic_page(world):
    (north_household, kept) = world["north"]
    with _client(world, "officer", "ar") as client:
        refused = client.get(_form_url(north_household, kept))
    assert refused.status_code == 403 and 'dir="rtl"' in refused.text
    detail = refused.text.split('class="detail"', 1)[1].split("</p>", 1)[0]
    # Said to be English, in Arabic, and marked so: read in an English voice, kept in order.
    assert '<span lang="en" dir="ltr">' in detail
    lead = detail.split("<span", 1)[0]
    assert any("\u0600" <= c <= "\u06ff" for c in lead)
