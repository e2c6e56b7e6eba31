"""Choosing one's password and reading the audit log in the pages: the same services, rules,
limits and audit records as `POST /auth/password` and `GET /audit/records`."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from factories import make_areas, make_user
from sijill.api import create_app
from sijill.core.settings import Settings
from sijill.security.audit.models import AuditRecord
from web_support import PASSWORD, csrf_of, sign_in, web_user

NEW = "another long pass phrase 7"


@pytest.fixture
def app(settings, sessions):
    make_areas(sessions)
    return create_app(Settings(database_url=settings.database_url, login_attempts_per_minute=5))


def _client(app) -> TestClient:
    return TestClient(app, follow_redirects=False)


def _choose(client, username, password, new, confirm=None, **extra):
    form = client.get("/web/password")
    assert form.status_code == 200
    confirm = new if confirm is None else confirm
    data = {"username": username, "password": password, "new_password": new,
            "confirm": confirm, "csrf": csrf_of(form.text), **extra}  # fmt: skip
    return client.post("/web/password", data=data)


def _outcomes(sessions, action: str) -> list[str]:
    with sessions() as session:
        query = select(AuditRecord.outcome).where(AuditRecord.action == action)
        return list(session.scalars(query.order_by(AuditRecord.seq)))


def test_a_one_time_password_leads_to_choosing_ones_own(app, sessions):
    one_time = make_user(sessions, "amira", "registrar", "SJ01")
    with _client(app) as client:
        refused = sign_in(client, "amira", one_time)
        assert refused.status_code == 403
        assert "one-time password: choose your own" in refused.text
        assert 'value="amira"' in refused.text and 'action="/web/password"' in refused.text
        assert "sijill_access" not in refused.headers.get("set-cookie", "")

        mismatch = _choose(client, "amira", one_time, NEW, confirm=NEW + "x")
        assert mismatch.status_code == 422
        assert 'id="confirm-error"' in mismatch.text and "are not the same" in mismatch.text
        short = _choose(client, "amira", one_time, "short 1")
        assert short.status_code == 422 and 'id="new_password-error"' in short.text
        assert "at least 12 characters" in short.text
        wrong = _choose(client, "amira", "not the one-time password", NEW)
        assert wrong.status_code == 401 and 'id="password-error"' in wrong.text
        empty = _choose(client, "", "", "", "")
        assert empty.status_code == 422 and empty.text.count("Fill in this field.") == 4

        chosen = _choose(client, "amira", one_time, NEW, next="/web/households")
        assert chosen.status_code == 303 and chosen.headers["location"] == "/web/households"
        assert client.get("/web/households").status_code == 200  # signed in with it
        client.cookies.clear()
        assert sign_in(client, "amira", one_time).status_code == 401
        assert sign_in(client, "amira", NEW).status_code == 303
    # Audited as the API's route is: the refusals and the change, never a password.
    assert _outcomes(sessions, "auth.password") == ["invalid", "denied", "ok"]
    with sessions() as session:
        logged = " ".join(str(r.__dict__) for r in session.scalars(select(AuditRecord)))
    assert one_time not in logged and NEW not in logged


def test_the_rule_is_said_in_the_pages_language(app, sessions):
    web_user(sessions, "karim", "registrar", "SJ01")
    with _client(app) as client:
        client.cookies.set("sijill_lang", "fr")
        same = _choose(client, "karim", PASSWORD, PASSWORD)
        assert same.status_code == 422
        assert "Le nouveau mot de passe doit être différent de l’ancien" in same.text
        client.cookies.set("sijill_lang", "ar")
        short = _choose(client, "karim", PASSWORD, "1234567890123")
        assert short.status_code == 422 and 'dir="rtl"' in short.text
        assert "كلمة المرور الجديدة ضعيفة" in short.text


def test_the_password_form_needs_its_csrf_token(app, sessions):
    web_user(sessions, "karim", "registrar", "SJ01")
    with _client(app) as client:
        data = {"username": "karim", "password": PASSWORD, "new_password": NEW, "confirm": NEW}
        assert client.post("/web/password", data=data).status_code == 403
    assert _outcomes(sessions, "auth.password") == []


def test_the_audit_log_page_is_for_national_auditors(app, sessions):
    web_user(sessions, "nadia", "auditor")
    web_user(sessions, "omar", "auditor", "SJ01")
    web_user(sessions, "karim", "registrar", "SJ01")
    with _client(app) as client:
        for _ in range(3):
            sign_in(client, "karim", "wrong password")
        sign_in(client, "karim")
        assert client.get("/web/audit").status_code == 403
        assert 'href="/web/audit"' not in client.get("/web/households").text
        client.cookies.clear()
        sign_in(client, "omar")
        district = client.get("/web/audit")
        assert district.status_code == 403 and "auditors of the whole country" in district.text
        client.cookies.clear()
        sign_in(client, "nadia")
        assert 'href="/web/audit"' in client.get("/web/households").text
        log = client.get("/web/audit")
        assert log.status_code == 200
        assert log.text.count("auth.sign_in") >= 6 and "Older records" not in log.text
        karim = client.get("/web/audit", params={"actor": "karim"})
        assert karim.text.count("auth.sign_in") == 4  # three refused, one signed in
        assert "nadia" not in karim.text.split("<tbody>")[1]
        refused = client.get("/web/audit", params={"before": "0"})
        assert refused.status_code == 404
    outcomes = _outcomes(sessions, "audit.read")
    assert outcomes.count("denied") == 2 and outcomes.count("ok") == 2  # 404: not read


def test_the_audit_log_pages_older_records(app, sessions, monkeypatch):
    monkeypatch.setattr("sijill.web.pages_audit.PAGE_SIZE", 4)
    web_user(sessions, "nadia", "auditor")
    with _client(app) as client:
        sign_in(client, "nadia")
        for _ in range(10):  # each read is itself a record
            client.get("/web/audit")
        first = client.get("/web/audit")
        seqs = [int(s) for s in _seqs(first.text)]
        assert len(seqs) == 4 and seqs == sorted(seqs, reverse=True)
        older = first.text.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
        second = client.get(older)
        following = [int(s) for s in _seqs(second.text)]
        assert following == list(range(seqs[-1] - 1, seqs[-1] - 5, -1))
        assert "Newest records" in second.text


def _seqs(html: str) -> list[str]:
    rows = html.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    return [row.split("<bdi>")[1].split("</bdi>")[0] for row in rows]
