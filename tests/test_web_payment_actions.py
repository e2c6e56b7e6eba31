"""The payment officer's and registrar's payment actions on the pages, through the functions
the API calls: a payment instrument entered in a form (the same row, masked view and audit
record as through the API; an invalid IBAN shown at its input with nothing saved; refused
without the form's token or the permission; an out-of-scope household answered as a missing
page, byte for byte), and a cycle's run started from a form, its batch released and the
provider's report read in."""

import re
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import test_payments
from factories import OTHER_LOCALITY, auth_headers, household, make_areas
from sijill.api import create_app
from sijill.core.i18n.formats import format_amount
from sijill.core.ids import format_id, new_id
from sijill.core.settings import Settings
from sijill.jobs.models import Job
from sijill.jobs.service import wait_for_end
from sijill.payments.batches import approve
from sijill.payments.files import batch_folder
from sijill.payments.instruments import read_details
from sijill.payments.models import PaymentBatch, PaymentInstrument
from sijill.payments.providers import provider_named
from sijill.security.audit.models import AuditRecord
from sijill.security.keys.keyring import current_keyring
from test_payments import CHECKER, CYCLE, PAY_ON
from web_support import csrf_of, sign_in, web_user

country = test_payments.country
cycle = test_payments.cycle
IBAN = "TR330006100519786457841326"
HOLDER = "Ahmad Al-Khatib"
FULL_IBAN = re.compile(r"TR33\s?0006\s?1005\s?1978\s?6457\s?8413\s?26")


@pytest.fixture
def world(settings, sessions):
    """Two households in the north and one in the south; the web users."""
    make_areas(sessions)
    settings = Settings(database_url=settings.database_url)
    app = create_app(settings)
    with TestClient(app, headers=auth_headers(sessions, settings)) as api:
        made = {
            name: api.post("/households", json=household(area_code=area)).json()
            for name, area in (("north", "SJ010101"), ("north2", "SJ010101"),
                               ("south", OTHER_LOCALITY))
        }  # fmt: skip
    web_user(sessions, "amal", "payment_officer", "SJ01")
    return app, settings, sessions, made


def _client(app) -> TestClient:
    return TestClient(app, follow_redirects=False)


def _form(household_id: str) -> str:
    return f"/web/households/{household_id}/instruments/new"


def _bank(csrf: str | None, person_id: str = "", **details: str) -> dict[str, str]:
    data = {"kind": "bank", "bank.iban": IBAN, "bank.holder": HOLDER, "person_id": person_id}
    # The other kinds' inputs are sent too, as a browser sends every input of the form: unread.
    data |= {"wallet.phone": "not a phone", "card.card_number": "123"}
    data |= {f"bank.{name}": value for name, value in details.items()}
    return data | ({"csrf": csrf} if csrf else {})


def _rows(sessions) -> list[PaymentInstrument]:
    with sessions() as session:
        return list(session.scalars(select(PaymentInstrument).order_by(PaymentInstrument.id)))


def _audit(sessions, action: str) -> list[AuditRecord]:
    with sessions() as session:
        query = select(AuditRecord).where(AuditRecord.action == action)
        return list(session.scalars(query.order_by(AuditRecord.seq)))


def test_an_instrument_entered_in_the_form_is_the_one_the_api_records(world):
    app, settings, sessions, made = world
    north, north2 = made["north"], made["north2"]
    head = north["members"][0]["person_id"]
    with _client(app) as client:
        assert sign_in(client, "amal").status_code == 303
        shown = client.get(f"/web/households/{north['household_id']}")
        assert _form(north["household_id"]) in shown.text  # the household page's link
        form = client.get(_form(north["household_id"]))
        assert form.status_code == 200
        assert f'<option value="{head}"' in form.text  # the roster to choose the collector
        assert len(re.findall(r"<fieldset class=\"kind-details\"", form.text)) == 4
        sent = client.post(_form(north["household_id"]), data=_bank(csrf_of(form.text), head))
        assert sent.status_code == 303, sent.text
        assert sent.headers["location"].endswith("?done=instrument-active")
        after = client.get(sent.headers["location"])
        assert 'id="instrument-active"' in after.text and 'role="status"' in after.text
        assert not FULL_IBAN.search(after.text)  # masked, never the number back
        assert not FULL_IBAN.search(client.get(_form(north["household_id"])).text)
    # The same through the API, by a payment officer of the same area.
    with TestClient(app) as api:
        headers = auth_headers(sessions, settings, "payment_officer", "SJ01")
        body = {"kind": "bank", "details": {"iban": IBAN, "holder": HOLDER},
                "person_id": north2["members"][0]["person_id"]}  # fmt: skip
        through_api = api.post(
            f"/households/{north2['household_id']}/instruments", json=body, headers=headers
        )
        assert through_api.status_code == 201, through_api.text
        views = [
            api.get(f"/households/{h['household_id']}/instruments", headers=headers).json()
            for h in (north, north2)
        ]
    web, by_api = _rows(sessions)
    fields = ("kind", "masked", "status", "reason", "fingerprint", "decided_by")
    assert [getattr(web, f) for f in fields] == [getattr(by_api, f) for f in fields]
    assert (web.created_by, format_id(web.person_id)) == ("amal", head)
    assert read_details(current_keyring(), [web.details]) == read_details(
        current_keyring(), [by_api.details]
    )
    drop = ("id", "household_id", "person_id", "created_by", "created_at")
    assert [{k: v for k, v in view[0].items() if k not in drop} for view in views] == [
        {k: v for k, v in views[1][0].items() if k not in drop}
    ] * 2
    first, second = _audit(sessions, "payments.instrument.record")
    same = ("action", "outcome", "record_type", "role", "purpose")
    assert [getattr(first, f) for f in same] == [getattr(second, f) for f in same]
    assert (first.actor, first.outcome, first.record_id) == ("amal", "ok", str(web.id))


def test_an_invalid_iban_is_shown_at_its_input_and_nothing_is_saved(world):
    app, _, sessions, made = world
    north = made["north"]
    wrong = IBAN[:-1] + "7"
    with _client(app) as client:
        sign_in(client, "amal")
        csrf = csrf_of(client.get(_form(north["household_id"])).text)
        sent = client.post(_form(north["household_id"]), data=_bank(csrf, **{"iban": wrong}))
        assert sent.status_code == 422
        text = sent.text
        assert 'id="f-bank-iban-error"' in text and "not a valid IBAN" in text
        field = re.search(r'<input id="f-bank-iban"[^>]*>', text).group(0)
        assert f'value="{wrong}"' in field and 'aria-invalid="true"' in field
        assert "f-bank-iban-error" in field  # aria-describedby names the message
        assert 'value="bank" id="kind-bank" checked' in text
        # A detail left out: "required" at its own input, the others' values kept.
        blank = client.post(_form(north["household_id"]), data=_bank(csrf, holder=""))
        assert blank.status_code == 422 and 'id="f-bank-holder-error"' in blank.text
        assert f'value="{IBAN}"' in blank.text
        # No kind chosen: said at the choice.
        none = client.post(_form(north["household_id"]), data={"csrf": csrf})
        assert none.status_code == 422 and 'id="f-kind-error"' in none.text
        # A collector who is not a member of this household.
        other = made["north2"]["members"][0]["person_id"]
        stranger = client.post(_form(north["household_id"]), data=_bank(csrf, other))
        assert stranger.status_code == 422 and 'id="f-person_id-error"' in stranger.text
    assert _rows(sessions) == []
    invalid = _audit(sessions, "payments.instrument.record")
    assert {(a.actor, a.outcome) for a in invalid} == {("amal", "invalid")}


def test_an_instrument_needs_the_forms_token_and_the_permission(world):
    app, _, sessions, made = world
    north = made["north"]
    web_user(sessions, "hearer", "grievance_officer", "SJ01")
    with _client(app) as client:
        sign_in(client, "amal")
        client.get("/web/households")  # the CSRF seed, without the form's token
        assert client.post(_form(north["household_id"]), data=_bank(None)).status_code == 403
        assert client.post(_form(north["household_id"]), data=_bank("0" * 64)).status_code == 403
    with _client(app) as client:
        # A grievance officer reads the household, and records no instrument.
        sign_in(client, "hearer")
        shown = client.get(f"/web/households/{north['household_id']}")
        assert shown.status_code == 200 and _form(north["household_id"]) not in shown.text
        assert client.get(_form(north["household_id"])).status_code == 403
        refused = client.post(_form(north["household_id"]), data=_bank(csrf_of(shown.text)))
        assert refused.status_code == 403 and "payments.instruments.write" in refused.text
    assert _rows(sessions) == []
    assert ("hearer", "denied") in {
        (a.actor, a.outcome) for a in _audit(sessions, "payments.instruments.write")
    }


def test_an_out_of_scope_household_is_a_missing_page(world):
    app, _, sessions, made = world
    south = made["south"]["household_id"]
    missing = format_id(new_id("household"))
    with _client(app) as client:
        sign_in(client, "amal")
        csrf = csrf_of(client.get("/web/households").text)
        pages = [client.get(_form(south)), client.get(_form(missing))]
        pages += [client.post(_form(south), data=_bank(csrf)), client.post(_form(missing),
                  data=_bank(csrf))]  # fmt: skip
        pages.append(client.get(f"/web/households/{missing}"))
    assert {p.status_code for p in pages} == {404}
    assert len({p.content for p in pages}) == 1
    assert _rows(sessions) == []


# --- a cycle's run, a batch's release, the provider's report ----------------------------------


def _job(location: str) -> int:
    found = re.fullmatch(r"/web/jobs/(\d+)", location)
    assert found, location
    return int(found.group(1))


def _ended(app, engine, job_id: int) -> Job:
    assert wait_for_end(job_id, 120)
    with Session(engine) as session:
        return session.get(Job, job_id)


def test_a_run_started_released_and_reconciled_from_the_pages(cycle, tmp_path):
    engine, settings = cycle["engine"], cycle["settings"]
    sessions = sessionmaker(engine)
    web_user(sessions, "payer", "payment_officer")
    app = create_app(settings)
    with _client(app) as client:
        sign_in(client, "payer")
        form = client.get("/web/payments/runs")
        assert form.status_code == 200 and 'href="/web/payments/runs"' in form.text
        csrf = csrf_of(form.text)
        run = {"csrf": csrf, "cycle": CYCLE, "area_code": "", "value_date": PAY_ON.isoformat()}
        # Nothing approved in that cycle: said on the form, at the cycle, and no job.
        nothing = client.post("/web/payments/runs", data=run | {"cycle": "2031-01"})
        assert nothing.status_code == 404 and 'id="f-cycle-error"' in nothing.text
        assert "No approved entitlement of this cycle" in nothing.text
        assert 'value="2031-01"' in nothing.text
        malformed = client.post("/web/payments/runs", data=run | {"cycle": "2026-13"})
        assert malformed.status_code == 422 and 'id="f-cycle-error"' in malformed.text
        started = client.post("/web/payments/runs", data=run)
        assert started.status_code == 303, started.text
        job = _ended(app, engine, _job(started.headers["location"]))
        assert (job.kind, job.state, job.started_by) == ("payment_prepare", "succeeded", "payer")
        first = test_payments.largest_bank_batch(engine)
        # Not approved yet: the release is refused on the batch's page.
        page = client.get(f"/web/payments/batches/{first}")
        assert "Release to the provider" not in page.text
        early = client.post(f"/web/payments/batches/{first}/release", data={"csrf": csrf})
        assert early.status_code == 409 and 'role="alert"' in early.text
        approve(engine, settings, principal=CHECKER, batch_id=first)
        page = client.get(f"/web/payments/batches/{first}")
        assert "Release to the provider" in page.text
        assert client.post(f"/web/payments/batches/{first}/release").status_code == 403
        released = client.post(f"/web/payments/batches/{first}/release", data={"csrf": csrf})
        assert released.status_code == 303, released.text
        after = client.get(released.headers["location"])
        assert '<dd id="batch-status">released</dd>' in after.text and 'role="status"' in after.text
        # The provider's answer to the released batch, read in from the form.
        answer = provider_named(settings, "iso20022").answer(
            batch_folder(settings, first), tmp_path / "pain002.xml", fail_one_in=3, seed=2
        )
        report_form = client.get("/web/payments/reports")
        assert report_form.status_code == 200 and 'value="iso20022"' in report_form.text
        no_file = client.post("/web/payments/reports", data={"csrf": csrf, "provider": "iso20022"})
        assert no_file.status_code == 422 and 'id="f-report-error"' in no_file.text
        sent = client.post(
            "/web/payments/reports", data={"csrf": csrf, "provider": "iso20022"},
            files={"report": ("pain002.xml", answer.read_bytes(), "application/xml")},
        )  # fmt: skip
        assert sent.status_code == 303, sent.text
        job = _ended(app, engine, _job(sent.headers["location"]))
        assert (job.kind, job.state) == ("payment_reconcile", "succeeded"), job.error
        assert job.outcome["paid"] > 0 and job.outcome["unmatched"] == 0
        _totals_and_ledger_pages(client, app, sessions, settings)
    with Session(engine) as session:
        batch = session.get(PaymentBatch, first)
        assert (batch.status, batch.released_by) in {("released", "payer"), ("reconciled", "payer")}
    release_audit = [a for a in _audit(sessions, "payments.release") if a.outcome == "ok"]
    assert [(a.actor, a.record_id) for a in release_audit] == [("payer", str(first))]


def _totals_and_ledger_pages(client, app, sessions, settings) -> None:
    """What was paid, in the API's figures and the page's formats, and the ledger's proof."""
    with TestClient(app, headers=auth_headers(sessions, settings, "payment_officer")) as api:
        rows = api.get("/payments/totals").json()["data"]
    paid = [row for row in rows if row["paid_minor"] > 0]
    assert paid and all(row["minor_units"] == 2 for row in rows)  # the spec's default
    page = client.get("/web/payments/totals")
    assert page.status_code == 200 and 'href="/web/payments/totals"' in page.text
    for row in paid:
        for column in ("paid_minor", "entitled_minor", "outstanding_minor"):
            shown = format_amount(Decimal(row[column]).scaleb(-2), row["currency"])
            assert f"<bdi>{shown}</bdi>" in page.text, (column, shown)
    other = client.get("/web/payments/totals", params={"cycle": "2031-01"})
    assert other.status_code == 200 and 'id="totals"' not in other.text
    assert client.get("/web/payments/totals", params={"cycle": "2026-13"}).status_code == 404
    proof = client.get("/web/payments/ledger")
    assert proof.status_code == 200 and "The ledger is consistent." in proof.text
    # A payment officer of one governorate sees their totals, not the whole ledger's proof.
    web_user(sessions, "district", "payment_officer", "SJ01")
    client.cookies.clear()
    sign_in(client, "district")
    assert client.get("/web/payments/totals").status_code == 200
    refused = client.get("/web/payments/ledger")
    assert refused.status_code == 403 and "whole country" in refused.text
