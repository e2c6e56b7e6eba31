"""The caseworkers' and officers' actions on the pages, through the services the API calls: a
notified household's answer to a program (recorded and audited as the API records it, refused
without the form's CSRF token or the permission, and an out-of-scope household answered as a
missing page, byte for byte), and a held change of payment instrument listed for, approved
and rejected by a second officer of its area, refused to its author."""

from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from factories import LOCALITY, OTHER_LOCALITY, auth_headers, household, make_areas
from sijill.api import create_app
from sijill.core import clock
from sijill.core.db import transaction
from sijill.core.ids import format_id, new_id, parse_id
from sijill.core.settings import Settings
from sijill.payments.instruments import record_instrument
from sijill.payments.models import PaymentInstrument
from sijill.programs.models import Enrollment, EnrollmentEvent
from sijill.security.audit.models import AuditRecord
from sijill.security.cli_common import audited_transaction
from sijill.security.keys.keyring import current_keyring
from sijill.security.principal import Grant, Principal
from web_support import csrf_of, sign_in, web_user

PROGRAM = "child-grant"
BANK = {"iban": "TR330006100519786457841326", "holder": "Ahmad Al-Khatib"}
OTHER_BANK = {"iban": "TR320010009999901234567890", "holder": "Fatima Al-Khatib"}


@pytest.fixture
def world(settings, sessions):
    """Three households (two in the north, one in the south), each notified in a program; the
    web users; changes of instrument held for a second officer (the rule is `always`)."""
    areas = make_areas(sessions)
    settings = Settings(database_url=settings.database_url, instrument_change_review="always")
    app = create_app(settings)
    with TestClient(app, headers=auth_headers(sessions, settings)) as api:
        made = {
            name: api.post("/households", json=household(area_code=area)).json()
            for name, area in (("north", LOCALITY), ("north2", LOCALITY), ("south", OTHER_LOCALITY))
        }  # fmt: skip
    ids = {name: parse_id("household", found["household_id"]) for name, found in made.items()}
    now = clock.utcnow()
    with transaction(sessions) as session:
        for number in ids.values():
            # Where a run's notify step leaves a selected household (programs.enrollment).
            session.add(
                Enrollment(program=PROGRAM, household_id=number, status="notified",
                           since=date(2026, 11, 1), run_id=1)
            )  # fmt: skip
            session.add(
                EnrollmentEvent(program=PROGRAM, household_id=number, run_id=1, from_status=None,
                                to_status="notified", on_date=date(2026, 11, 1), recorded_at=now,
                                recorded_by="runner", reason="selected", by_hand=False)
            )  # fmt: skip
    return app, settings, sessions, areas, ids


# The web users, made when a test signs one in (each password costs a hash).
USERS = {
    "caseworker": ("registrar", "SJ01"),
    "hearer": ("grievance_officer", "SJ01"),
    "amal": ("payment_officer", "SJ01"),
    "badr": ("payment_officer", "SJ01"),
}


def _signed_in(client, sessions, name: str) -> None:
    web_user(sessions, name, *USERS[name])
    assert sign_in(client, name).status_code == 303


def _client(app) -> TestClient:
    return TestClient(app, follow_redirects=False)


def _status(sessions, number: int) -> str:
    with sessions() as session:
        return session.scalar(
            select(Enrollment.status).where(
                Enrollment.program == PROGRAM, Enrollment.household_id == number
            )
        )


def _audit(sessions, action: str) -> list[AuditRecord]:
    with sessions() as session:
        return list(
            session.scalars(
                select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.seq)
            )
        )


def _answer(client, number: int, answer: str, csrf: str | None):
    data = {"program": PROGRAM, "answer": answer} | ({"csrf": csrf} if csrf else {})
    return client.post(f"/web/households/{format_id(number)}/enrollment", data=data)


def test_an_enrollment_answer_is_recorded_as_through_the_api(world):
    app, settings, sessions, _, ids = world
    with _client(app) as client:
        _signed_in(client, sessions, "caseworker")
        client.get("/web/language/ar")  # answered from the Arabic page, right to left
        shown = client.get(f"/web/households/{format_id(ids['north'])}")
        assert shown.status_code == 200 and 'dir="rtl"' in shown.text
        assert 'data-status="notified"' in shown.text and 'value="enrolled"' in shown.text
        answered = _answer(client, ids["north"], "enrolled", csrf_of(shown.text))
        assert answered.status_code == 303, answered.text
        after = client.get(answered.headers["location"])
        assert 'data-status="enrolled"' in after.text and 'role="status"' in after.text
        assert 'value="enrolled"' not in after.text  # nothing left to answer
        # Answered already: refused as the API refuses it, and nothing changes.
        again = _answer(client, ids["north"], "declined", csrf_of(after.text))
        assert again.status_code == 409 and 'role="alert"' in again.text
    assert _status(sessions, ids["north"]) == "enrolled"
    with sessions() as session:
        event = session.scalars(
            select(EnrollmentEvent).where(
                EnrollmentEvent.household_id == ids["north"], EnrollmentEvent.by_hand
            )
        ).one()
    assert (event.from_status, event.to_status, event.recorded_by, event.reason) == (
        "notified", "enrolled", "caseworker", "answered",
    )  # fmt: skip
    # The same answer through the API, by a registrar of the same area: the same audit record
    # but for who made it and in which request.
    with TestClient(app) as api:
        headers = auth_headers(sessions, settings, "registrar", "SJ01")
        body = {"household_ids": [format_id(ids["north2"])], "answer": "enrolled"}
        assert api.post(f"/programs/{PROGRAM}/enrollments", json=body, headers=headers).is_success
    web, through_api = _audit(sessions, "programs.enrolled")
    fields = ("action", "outcome", "record_type", "record_id", "role", "purpose")
    assert [getattr(web, f) for f in fields] == [getattr(through_api, f) for f in fields]
    assert (web.actor, web.outcome, web.record_id) == ("caseworker", "ok", PROGRAM)


def test_an_answer_needs_the_forms_token_and_the_permission(world):
    app, _, sessions, _, ids = world
    with _client(app) as client:
        _signed_in(client, sessions, "caseworker")
        client.get("/web/households")  # the CSRF seed, without the form's token
        assert _answer(client, ids["north"], "enrolled", None).status_code == 403
        assert _answer(client, ids["north"], "enrolled", "0" * 64).status_code == 403
    with _client(app) as client:
        # A grievance officer reads where the household stands, and records no answer.
        _signed_in(client, sessions, "hearer")
        shown = client.get(f"/web/households/{format_id(ids['north'])}")
        assert 'data-status="notified"' in shown.text and 'value="enrolled"' not in shown.text
        refused = _answer(client, ids["north"], "enrolled", csrf_of(shown.text))
        assert refused.status_code == 403 and "programs.enroll" in refused.text
    assert _status(sessions, ids["north"]) == "notified"
    denied = _audit(sessions, "programs.enroll")
    assert [(a.actor, a.outcome) for a in denied] == [("hearer", "denied")]


def test_an_out_of_scope_household_is_answered_as_a_missing_page(world):
    app, _, sessions, _, ids = world
    with _client(app) as client:
        _signed_in(client, sessions, "caseworker")
        csrf = csrf_of(client.get("/web/households").text)
        outside = _answer(client, ids["south"], "enrolled", csrf)
        missing = _answer(client, new_id("household"), "enrolled", csrf)
        page = client.get(f"/web/households/{format_id(new_id('household'))}")
    assert outside.status_code == missing.status_code == page.status_code == 404
    assert outside.content == missing.content == page.content
    assert _status(sessions, ids["south"]) == "notified"


def _officer(areas, name: str, area: str) -> Principal:
    return Principal(name, (Grant("payment_officer", areas[area]),))


def _change(world, key: str, author: str = "amal", area: str = "SJ01") -> int:
    """The household's first instrument (active) and a change of it, held: its ID."""
    _, settings, sessions, areas, ids = world
    who = _officer(areas, author, area)
    with audited_transaction(sessions, who) as session:
        for details in (BANK, OTHER_BANK):
            row = record_instrument(
                session, who, current_keyring(), settings,
                household=ids[key], kind="bank", details=details,
            )  # fmt: skip
    assert row.status == "pending"
    return row.id


def _statuses(sessions, number: int) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                select(PaymentInstrument.status)
                .where(PaymentInstrument.household_id == number)
                .order_by(PaymentInstrument.id)
            )
        )


def _decide(client, instrument_id: int, decision: str, page) -> object:
    url = f"/web/payments/instruments/{instrument_id}/{decision}"
    return client.post(url, data={"csrf": csrf_of(page.text)})


def test_a_change_of_instrument_is_decided_by_a_second_officer_never_its_author(world):
    app, _, sessions, _, ids = world
    change = _change(world, "north")
    other = _change(world, "north2")
    with _client(app) as client:
        _signed_in(client, sessions, "amal")
        listed = client.get("/web/payments/instruments/pending")
        assert f'id="instrument-{change}"' in listed.text and "TR32 •••• 7890" in listed.text
        own = _decide(client, change, "approve", listed)
        assert own.status_code == 403 and 'role="alert"' in own.text
        assert f'id="instrument-{change}"' in own.text  # still waiting, still listed
    assert _statuses(sessions, ids["north"]) == ["active", "pending"]
    assert [a.outcome for a in _audit(sessions, "payments.instrument.approve")] == ["denied"]
    with _client(app) as client:
        _signed_in(client, sessions, "badr")
        house = client.get(f"/web/households/{format_id(ids['north'])}")
        assert 'id="instrument-pending"' in house.text and "TR33 •••• 1326" in house.text
        assert "Instruments awaiting approval" in house.text  # the nav link
        approved = _decide(client, change, "approve", house)
        assert approved.status_code == 303, approved.text
        listed = client.get(approved.headers["location"])
        assert f'id="instrument-{change}"' not in listed.text and 'role="status"' in listed.text
        rejected = _decide(client, other, "reject", listed)
        assert rejected.status_code == 303, rejected.text
        # Decided already: refused, as the service refuses it.
        again = _decide(client, other, "approve", listed)
        assert again.status_code == 409 and 'role="alert"' in again.text
    assert _statuses(sessions, ids["north"]) == ["replaced", "active"]
    assert _statuses(sessions, ids["north2"]) == ["active", "rejected"]
    approvals = _audit(sessions, "payments.instrument.approve")
    assert [(a.actor, a.outcome) for a in approvals][:2] == [("amal", "denied"), ("badr", "ok")]


def test_the_pending_list_shows_only_the_users_areas(world):
    app, _, sessions, _, ids = world
    north = _change(world, "north")
    south = _change(world, "south", author="south", area="SJ02")
    with _client(app) as client:
        _signed_in(client, sessions, "badr")
        listed = client.get("/web/payments/instruments/pending")
        assert f'id="instrument-{north}"' in listed.text
        assert f'id="instrument-{south}"' not in listed.text
        assert format_id(ids["south"]) not in listed.text
        # Out of the user's areas: the page of an instrument that does not exist.
        outside = _decide(client, south, "approve", listed)
        missing = _decide(client, 2**62, "approve", listed)
        assert outside.status_code == missing.status_code == 404
        assert outside.content == missing.content
    with _client(app) as client:
        # A registrar records instruments and approves none: no list, no link to it.
        _signed_in(client, sessions, "caseworker")
        assert client.get("/web/payments/instruments/pending").status_code == 403
        assert "Instruments awaiting approval" not in client.get("/web/households").text
    assert _statuses(sessions, ids["south"]) == ["active", "pending"]
