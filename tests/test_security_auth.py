"""Signing in, tokens, OIDC, consent and purpose, hardening, and what the audit trail and the
logs hold (never a name, national ID or phone)."""

import json
import logging
import time
from types import SimpleNamespace

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import text

from factories import auth_headers, household, make_areas, make_user, national_id, person
from sijill.api import create_app
from sijill.core.areas import load_areas
from sijill.core.db import transaction
from sijill.core.errors import Unauthenticated
from sijill.core.settings import Settings
from sijill.security import principal
from sijill.security.keys.keyring import current_keyring
from sijill.security.users import tokens

PASSWORD = "a new password 42"


@pytest.fixture
def app(settings, sessions):
    make_areas(sessions)
    return create_app(settings)


def audit_rows(sessions) -> list[dict]:
    with sessions() as session:
        rows = session.execute(text("SELECT * FROM audit_record ORDER BY seq"))
        return [dict(row._mapping) for row in rows]


def sign_in(client, username, password):
    return client.post("/auth/token", json={"username": username, "password": password})


# --- passwords and tokens ------------------------------------------------------------------


def test_one_time_password_must_be_replaced_then_tokens_work(app, sessions):
    one_time = make_user(sessions, "amira", "registrar", "SJ0101")
    with TestClient(app) as client:
        refused = sign_in(client, "amira", one_time)
        assert refused.status_code == 403 and "one-time password" in refused.json()["detail"]
        weak = client.post(
            "/auth/password",
            json={"username": "amira", "password": one_time, "new_password": "short"},
        )
        assert weak.status_code == 422
        changed = client.post(
            "/auth/password",
            json={"username": "amira", "password": one_time, "new_password": PASSWORD},
        )
        assert changed.status_code == 200, changed.text
        assert sign_in(client, "amira", one_time).status_code == 401
        tokens = sign_in(client, "amira", PASSWORD).json()
        assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 15 * 60
        me = client.get("/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.json() == {
            "username": "amira",
            "grants": [{"role": "registrar", "area_code": "SJ0101"}],
        }
    outcomes = [(r["action"], r["outcome"]) for r in audit_rows(sessions)]
    assert ("auth.sign_in", "denied") in outcomes and ("auth.sign_in", "ok") in outcomes


def _user_with_password(client, sessions, username="omar", role="registrar"):
    one_time = make_user(sessions, username, role)
    client.post(
        "/auth/password",
        json={"username": username, "password": one_time, "new_password": PASSWORD},
    )
    return sign_in(client, username, PASSWORD).json()


def test_wrong_password_and_unknown_user_answer_alike(app, sessions):
    with TestClient(app) as client:
        _user_with_password(client, sessions)
        wrong = sign_in(client, "omar", "not the password")
        unknown = sign_in(client, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_refresh_stops_when_the_user_is_disabled(app, sessions, settings):
    from sijill.core.db import transaction
    from sijill.security.principal import Principal
    from sijill.security.users.accounts import set_disabled

    with TestClient(app) as client:
        tokens = _user_with_password(client, sessions)
        refreshed = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200
        access = client.post("/auth/refresh", json={"refresh_token": tokens["access_token"]})
        assert access.status_code == 401
        with transaction(sessions) as session:
            set_disabled(session, Principal.system("test"), "omar", True)
        again = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert again.status_code == 401
        assert sign_in(client, "omar", PASSWORD).status_code == 401


def test_expired_and_forged_tokens_are_refused(app, sessions):
    key = current_keyring().token_key
    now = int(time.time())
    claims = {"iss": "sijill", "sub": "x", "typ": "access", "iat": now - 100, "grants": []}
    expired = jwt.encode({**claims, "exp": now - 10}, key, algorithm="HS256")
    forged = jwt.encode(
        {**claims, "exp": now + 100, "grants": [["administrator", None, None]]},
        "not the key",
        algorithm="HS256",
    )
    unsigned = jwt.encode({**claims, "exp": now + 100}, None, algorithm="none")
    with TestClient(app) as client:
        for token in (expired, forged, unsigned):
            response = client.get("/households", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, token
    assert (
        "expired"
        in client.get("/households", headers={"Authorization": f"Bearer {expired}"}).json()[
            "detail"
        ]
    )


def test_a_remembered_token_still_expires_and_dies_with_its_key(app, sessions, monkeypatch):
    """Servers remember tokens they verified; that must not stretch a token's life."""
    key = current_keyring().token_key
    now = int(time.time())
    claims = {"iss": "sijill", "sub": "x", "typ": "access", "iat": now, "exp": now + 2}
    token = jwt.encode({**claims, "grants": [["administrator", None, None]]}, key, "HS256")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        assert client.get("/households", headers=headers).status_code == 200
        assert token in tokens._verified
        monkeypatch.setattr(
            tokens,
            "current_keyring",
            lambda: SimpleNamespace(token_key=b"another signing key, 32 bytes +"),
        )
        with pytest.raises(Unauthenticated):
            tokens.access_grants(token)  # a new signing key: checked again, and refused
        monkeypatch.undo()
        time.sleep(max(0.0, now + 2.05 - time.time()))
        response = client.get("/households", headers=headers)
        assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_moving_an_area_changes_who_may_see_its_households(settings, sessions, tmp_path):
    """Scoped users' areas are remembered for a minute; loading areas forgets them at once."""
    make_areas(sessions)
    app = create_app(settings)
    north = auth_headers(sessions, settings, "registrar", "SJ01")
    with TestClient(app) as client:
        created = client.post(
            "/households", json=household(), headers=auth_headers(sessions, settings)
        )
        path = f"/households/{created.json()['household_id']}"
        assert client.get(path, headers=north).status_code == 200
        moved = tmp_path / "areas.csv"
        moved.write_text("code,parent_code,level\nSJ0101,SJ02,district\n")
        with transaction(sessions) as session:
            load_areas(session, moved)
        assert client.get(path, headers=north).status_code == 404
        # Moved back behind this server's back (another process): seen within the minute.
        with transaction(sessions) as session:
            session.execute(
                text(
                    "UPDATE area SET parent_id = (SELECT id FROM area WHERE code = 'SJ01') "
                    "WHERE code = 'SJ0101'"
                )
            )
        assert client.get(path, headers=north).status_code == 404
        later = time.monotonic() + principal.SCOPE_CACHE_SECONDS + 1
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(principal, "monotonic", lambda: later)
            assert client.get(path, headers=north).status_code == 200


def test_failed_sign_ins_are_rate_limited(settings, sessions):
    make_areas(sessions)
    app = create_app(Settings(database_url=settings.database_url, login_attempts_per_minute=3))
    with TestClient(app) as client:
        _user_with_password(client, sessions)
        for _ in range(3):
            assert sign_in(client, "omar", "wrong").status_code == 401
        limited = sign_in(client, "omar", PASSWORD)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "60"


# --- OpenID Connect ------------------------------------------------------------------------


@pytest.fixture
def identity_provider(tmp_path):
    """A test identity provider: an RSA key whose public half is published as a JWKS file."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**public, "kid": "test-key", "use": "sig"}]}))

    def token(username="omar", key=private, **claims):
        now = int(time.time())
        payload = {
            "iss": "https://idp.example.org",
            "aud": "sijill",
            "sub": "8f2c",
            "preferred_username": username,
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "test-key"})

    return jwks, token


def test_oidc_tokens_name_a_sijill_user(settings, sessions, identity_provider):
    jwks, token = identity_provider
    make_areas(sessions)
    make_user(sessions, "omar", "registrar", "SJ0101")
    oidc = Settings(
        database_url=settings.database_url,
        oidc_issuer="https://idp.example.org",
        oidc_audience="sijill",
        oidc_jwks_file=jwks,
    )
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with TestClient(create_app(oidc)) as client:

        def me(bearer):
            return client.get("/auth/me", headers={"Authorization": f"Bearer {bearer}"})

        good = me(token())
        assert good.status_code == 200, good.text
        assert good.json()["grants"] == [{"role": "registrar", "area_code": "SJ0101"}]
        assert me(token(key=other_key)).status_code == 401
        assert me(token(aud="another-app")).status_code == 401
        assert me(token(exp=int(time.time()) - 5)).status_code == 401
        assert me(token(username="stranger")).status_code == 401
        # Sijill's own tokens still work beside the provider's.
        assert client.get("/auth/me", headers=auth_headers(sessions, oidc)).status_code == 200


# --- consent and purpose -------------------------------------------------------------------


def test_a_use_without_consent_is_refused_and_audited(app, settings, sessions):
    with TestClient(app, headers=auth_headers(sessions, settings)) as admin:
        payload = household()
        payload["consent"]["purposes"] = ["payment"]
        created = admin.post("/households", json=payload).json()
    url = f"/households/{created['household_id']}"
    officer = auth_headers(sessions, settings, "program_officer", "SJ01")
    with TestClient(app, headers=officer) as client:
        refused = client.get(url)
        assert refused.status_code == 403
        assert "has not consented" in refused.json()["detail"]
        assert "eligibility_assessment" in refused.json()["detail"]
        # Declaring a consented purpose is allowed and recorded.
        assert client.get(url, headers={"X-Purpose": "payment"}).status_code == 200
        assert client.get(url, headers={"X-Purpose": "marketing"}).status_code == 422
        # Lists leave out the households whose consent does not cover the purpose.
        found = client.get("/households").json()
        assert found["count"] == 0
        assert client.get("/households", headers={"X-Purpose": "payment"}).json()["count"] == 1
    # The registrar keeps the record: a statutory purpose, no consent needed.
    registrar = auth_headers(sessions, settings, "registrar", "SJ0101")
    with TestClient(app, headers=registrar) as client:
        assert client.get(url).status_code == 200
        assert client.get(url, headers={"X-Purpose": "research"}).status_code == 403
    reads = [r for r in audit_rows(sessions) if r["action"] == "household.read"]
    assert [(r["outcome"], r["purpose"]) for r in reads] == [
        ("refused_consent", "eligibility_assessment"),
        ("ok", "payment"),
        ("ok", "registration"),
        ("refused_consent", "research"),
    ]
    assert reads[0]["actor"] == "program_officer-sj01" and reads[0]["role"] == "program_officer"


# --- hardening -----------------------------------------------------------------------------


def test_security_headers_request_ids_and_size_limit(settings, sessions):
    make_areas(sessions)
    small = Settings(database_url=settings.database_url, max_request_bytes=2048)
    with TestClient(create_app(small), headers=auth_headers(sessions, small)) as client:
        health = client.get("/health", headers={"X-Request-ID": "abc-123"})
        assert health.headers["x-request-id"] == "abc-123"
        assert health.headers["x-content-type-options"] == "nosniff"
        assert health.headers["x-frame-options"] == "DENY"
        assert health.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in health.headers["content-security-policy"]
        assert (
            len(client.get("/health", headers={"X-Request-ID": "bad id!"}).headers["x-request-id"])
            == 32
        )
        too_large = client.post("/households", json=household(address="x" * 4000))
        assert too_large.status_code == 413
        assert too_large.headers["content-type"] == "application/problem+json"

        def chunks():
            yield b'{"area_code": "'
            yield b"x" * 4000
            yield b'"}'

        streamed = client.post(
            "/households", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413


def test_cors_is_closed_unless_configured(settings, sessions):
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "GET",
    }
    with TestClient(create_app(settings)) as client:
        response = client.options("/households", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
    opened = Settings(database_url=settings.database_url, cors_origins=["https://app.example"])
    with TestClient(create_app(opened)) as client:
        allowed = client.options(
            "/households", headers={**preflight, "Origin": "https://app.example"}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        refused = client.options("/households", headers=preflight)
        assert "access-control-allow-origin" not in refused.headers


# --- no personal data in logs or audit records ---------------------------------------------


def test_no_name_national_id_or_phone_in_logs_or_audit(app, settings, sessions, caplog):
    number = national_id()
    phone = "+962791234567"
    names = {
        "given_name_lat": "Zubaydaqq",
        "family_name_lat": "Qarawiyyinzz",
        "given_name_ar": "زبيدةقق",
        "family_name_ar": "القرويينزز",
    }
    payload = household(
        members=[
            person(national_id={"type": "national_id", "number": number}, phone=phone, **names)
        ]
    )
    secrets = [number, phone, *names.values()]
    caplog.set_level(logging.DEBUG)
    with TestClient(
        app, headers=auth_headers(sessions, settings), raise_server_exceptions=False
    ) as client:
        created = client.post("/households", json=payload)
        assert created.status_code == 201
        household_id = created.json()["household_id"]
        client.get(f"/households/{household_id}")
        client.get("/households", params={"national_id": number})
        client.get("/households", params={"name": names["given_name_lat"]})
        client.post("/households", json=payload)  # refused: the national ID is registered
        client.get("/households", params={"national_id": "not a number " + number})
    scoped = auth_headers(sessions, settings, "registrar", "SJ0201")
    with TestClient(app, headers=scoped) as client:
        client.get(f"/households/{household_id}")
        client.get("/households", params={"name": names["family_name_ar"]})
    records = audit_rows(sessions)
    assert len(records) >= 7
    # The server's logs, not the test client's own (httpx logs the URLs it requests).
    server_logs = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    logged = "\n".join(server_logs) + json.dumps(records, default=str)
    for secret in secrets:
        assert secret not in logged, f"{secret!r} leaked into a log or an audit record"


# --- the command line as a signed-in user ---------------------------------------------------


@pytest.fixture
def cli(database_url, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sijill.cli import _register_commands
    from sijill.cli import app as cli_app
    from sijill.core.settings import get_settings

    monkeypatch.setenv("SIJILL_DATABASE_URL", database_url)
    monkeypatch.setenv("SIJILL_SESSION_FILE", str(tmp_path / "session.json"))
    get_settings.cache_clear()
    if not cli_app.registered_commands:
        _register_commands()
    yield lambda *args, input=None: CliRunner().invoke(cli_app, list(args), input=input)
    get_settings.cache_clear()


def test_cli_login_then_commands_run_as_that_user(cli, sessions, tmp_path):
    make_areas(sessions)
    one_time = make_user(sessions, "amira", "administrator")
    assert "Sign in first" in str(cli("whoami").exception)
    wrong = cli("login", "--user", "amira", input="not it\n")
    assert wrong.exit_code != 0 and not (tmp_path / "session.json").exists()
    signed_in = cli("login", "--user", "amira", input=f"{one_time}\n{PASSWORD}\n{PASSWORD}\n")
    assert signed_in.exit_code == 0, signed_in.output
    assert (tmp_path / "session.json").stat().st_mode & 0o077 == 0
    assert cli("whoami").output.strip() == "amira (administrator:national)"
    added = cli("users", "add", "karim", "--role", "registrar:SJ0101")
    assert added.exit_code == 0, added.output
    assert "One-time password for karim" in added.output
    listed = cli("users", "list")
    assert "karim" in listed.output and "registrar:SJ0101" in listed.output
    assert cli("users", "disable", "amira").exit_code != 0  # not yourself
    assert cli("logout").exit_code == 0
    assert "Sign in first" in str(cli("whoami").exception)
    actions = [(r["actor"], r["action"], r["outcome"]) for r in audit_rows(sessions)]
    assert ("amira", "users.create", "ok") in actions
    assert ("amira", "auth.sign_in", "ok") in actions
    assert ("amira", "auth.sign_in", "denied") in actions


def test_a_registrar_cannot_manage_users_from_the_cli(cli, sessions, monkeypatch):
    make_areas(sessions)
    key = make_user(sessions, "importer", "registrar", "SJ0101", service=True)
    monkeypatch.setenv("SIJILL_SERVICE_KEY", f"importer:{key}")
    refused = cli("users", "add", "karim", "--role", "registrar")
    assert "do not allow users.manage" in str(refused.exception)
    denied = [r for r in audit_rows(sessions) if r["outcome"] == "denied"]
    assert [(r["actor"], r["action"]) for r in denied] == [("importer", "users.manage")]


# --- reads under concurrency -------------------------------------------------------------------


def test_many_concurrent_reads_each_audited_without_stalling(app, settings, sessions):
    """More reads in flight than the read pool has connections: each waits for its audit
    commit without holding a connection, so none blocks the event loop on the pool."""
    import asyncio

    import httpx

    headers = auth_headers(sessions, settings)
    with TestClient(app, headers=headers) as client:
        household_id = client.post("/households", json=household()).json()["household_id"]
    pool = app.state.loop_engine.pool
    in_flight = pool.size() + pool._max_overflow + 10
    # Were a checkout to block the event loop, fail in a second rather than hang for 30.
    pool._timeout = 1

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as client:
            reads = [client.get(f"/households/{household_id}") for _ in range(in_flight)]
            return await asyncio.wait_for(asyncio.gather(*reads), timeout=20)

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200] * in_flight
    reads = [r for r in audit_rows(sessions) if r["action"] == "household.read"]
    assert len(reads) == in_flight
