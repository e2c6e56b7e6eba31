"""A broken audit chain degrades the service, never takes it down: verify names the first bad
record of every tampering, `/health` says the chain is broken, sign-in keeps working (its
records wait in a quarantine), every other audited call answers 503 naming the cause, and an
administrator's repair (itself audited, nothing deleted) brings the chain back."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from typer.testing import CliRunner

import sijill.security.audit.cli as audit_cli
from factories import LOCALITY, auth_headers, household, make_areas, make_user
from sijill.api import create_app
from sijill.core.ids import format_id, new_id
from sijill.core.settings import Settings, get_settings
from sijill.security.audit.chain import AuditChainBroken, chain_health
from sijill.security.audit.models import (
    AuditCheck,
    AuditQuarantine,
    AuditRecord,
    AuditRepair,
)
from sijill.security.audit.repair import repair
from sijill.security.audit.service import AuditEntry, append, append_now, verify
from sijill.security.principal import Principal
from test_security_audit import TAMPERING, attacker, entries, forge, hash_at, head, rows

SIGN_IN = AuditEntry("amina", None, "auth.sign_in", "ok", "user", "amina")
BROKEN_TYPE = "urn:sijill:problem:audit-chain-broken"


def forge_past_the_head(connection):
    """The finding: one row inserted past the head, where the next append goes."""
    forge(connection, 21, hash_at(connection, 20))


def forge_past_the_head_with_a_gap(connection):
    forge(connection, 25, hash_at(connection, 20))


def move_the_head_back(connection):
    connection.execute(
        text("UPDATE audit_head SET seq = 17, hash = :h"), {"h": hash_at(connection, 17)}
    )


def move_the_head_forward(connection):
    connection.execute(text("UPDATE audit_head SET seq = 24"))


def edit_a_row_and_its_hash_only(connection):
    connection.execute(text("UPDATE audit_record SET hash = :h WHERE seq = 9"), {"h": "f" * 64})


MORE_TAMPERING = {
    forge_past_the_head: (21, "outside", "record 21 was written outside the chain"),
    forge_past_the_head_with_a_gap: (25, "outside", "record 25 was written outside the chain"),
    move_the_head_back: (18, "outside", "record 18 was written outside the chain"),
    move_the_head_forward: (21, "truncated", "records 21..24 are missing"),
    edit_a_row_and_its_hash_only: (9, "altered", "record 9 was altered"),
}
ALL_TAMPERING = {**TAMPERING, **MORE_TAMPERING}


def admin() -> Principal:
    return Principal.system("repair-test")


def count(engine, model) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(model)).scalar()


def remembered(engine) -> None:
    """What `sijill audit verify` does after walking: the result becomes the chain's state."""
    from sijill.security.audit.chain import BROKEN, INTACT, remember

    report = verify(engine)
    with engine.begin() as connection:
        remember(connection, INTACT if report.ok else BROKEN, "now", "auditor", report)


@pytest.mark.parametrize("tamper", ALL_TAMPERING, ids=lambda f: f.__name__)
def test_every_tampering_is_named_refuses_appends_and_is_repaired(engine, sessions, tamper):
    append_now(sessions, entries(20))
    with attacker(engine) as connection:
        tamper(connection)
    stored = count(engine, AuditRecord)
    report = verify(engine, chunk_rows=6)
    seq, kind, words = ALL_TAMPERING[tamper]
    assert (report.ok, report.bad_seq, report.kind) == (False, seq, kind), report.problem
    assert words in report.problem

    remembered(engine)
    with sessions() as session:
        assert chain_health(session).state == "broken"
    with pytest.raises(AuditChainBroken):
        append_now(sessions, entries(1))
    append_now(sessions, [SIGN_IN])  # kept aside, not refused
    assert count(engine, AuditQuarantine) == 1
    assert verify(engine).quarantined == 1

    result = repair(engine, admin())
    assert result.report.ok, result.report.problem
    assert result.repaired and result.repaired[0][2] == kind
    assert result.released == 1 and count(engine, AuditQuarantine) == 0
    # Nothing deleted: every stored row is still there, with one record per repair and the
    # sign-in released from the quarantine.
    assert count(engine, AuditRecord) == stored + len(result.repaired) + 1
    assert count(engine, AuditRepair) == len(result.repaired)
    chain = rows(engine)
    repairs = [r for r in chain if r.action == "audit.repair"]
    assert [r.actor for r in repairs] == ["system:repair-test"] * len(result.repaired)
    assert chain[-1].action == "auth.sign_in"
    with sessions() as session:
        assert chain_health(session).ok
    append_now(sessions, entries(2))
    report = verify(engine, chunk_rows=4)
    assert report.ok, report.problem
    assert report.repaired


def test_verify_names_a_duplicate_seq_once_the_primary_key_is_gone(engine, sessions):
    """PostgreSQL lets an owner drop the primary key (SQLite cannot): a record written twice."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite cannot drop a primary key")
    append_now(sessions, entries(20))
    try:
        with attacker(engine) as connection:
            connection.execute(text("ALTER TABLE audit_record DROP CONSTRAINT audit_record_pkey"))
            forge(connection, 12, hash_at(connection, 11))
        for chunk_rows in (1_000, 12, 6):
            report = verify(engine, chunk_rows=chunk_rows)
            assert (report.ok, report.bad_seq, report.kind) == (False, 12, "duplicate")
        result = repair(engine, admin())
        assert result.report.ok and result.repaired[0][:2] == (12, 12)
    finally:
        with attacker(engine) as connection:
            connection.execute(text("TRUNCATE audit_record"))
            connection.execute(text("ALTER TABLE audit_record ADD PRIMARY KEY (seq)"))


def test_a_row_forged_past_the_head_is_refused_at_append_time(engine, sessions):
    """Without any verification: the next append would collide with it."""
    append_now(sessions, entries(20))
    with attacker(engine) as connection:
        forge_past_the_head(connection)
    with sessions() as session:
        health = chain_health(session)
    assert (health.state, health.bad_seq, health.kind) == ("broken", 21, "outside")
    with pytest.raises(AuditChainBroken), sessions.begin() as session:
        append(session, entries(1))
    assert head(engine)[0] == 20


# --- through the API and the command line ---------------------------------------------------


@pytest.fixture
def api(database_url, sessions, tmp_path):
    make_areas(sessions)
    settings = Settings(database_url=database_url, work_dir=tmp_path / "work")
    with TestClient(create_app(settings)) as client:
        client.registrar = auth_headers(sessions, settings, "registrar")
        yield client


@pytest.fixture
def cli(database_url, monkeypatch):
    def invoke(username: str, *args):
        monkeypatch.setenv("SIJILL_SERVICE_KEY", f"{username}:{keys[username]}")
        get_settings.cache_clear()
        return CliRunner().invoke(audit_cli.audit_app, list(args))

    keys: dict[str, str] = {}
    monkeypatch.setenv("SIJILL_DATABASE_URL", database_url)
    invoke.keys = keys
    yield invoke
    get_settings.cache_clear()


def test_one_forged_row_degrades_the_service_until_an_administrator_repairs_it(
    engine, sessions, api, cli
):
    cli.keys["auditor1"] = make_user(sessions, "auditor1", "auditor", service=True)
    cli.keys["admin1"] = make_user(sessions, "admin1", "administrator", service=True)
    password_user = make_user(sessions, "amina", "registrar", LOCALITY, service=True)
    assert api.get("/health").json()["audit_chain"] == "intact"
    append_now(sessions, entries(20))
    last = head(engine)[0]
    with attacker(engine) as connection:
        forge(connection, last + 1, hash_at(connection, last))

    health = api.get("/health")
    assert health.status_code == 200
    assert (health.json()["status"], health.json()["audit_chain"]) == ("degraded", "broken")

    # Signing in keeps working; its record waits in the quarantine.
    signed_in = api.post("/auth/token", json={"username": "amina", "password": password_user})
    assert signed_in.status_code == 200, signed_in.text
    assert count(engine, AuditQuarantine) == 1

    # Every call that needs a new audit record answers 503 naming the cause.
    refused = [
        api.post("/households", json=household(), headers=api.registrar),
        api.get(f"/households/{format_id(new_id('household'))}", headers=api.registrar),
        api.post(
            "/imports",
            files={"file": ("list.csv", b"household_key\n", "text/csv")},
            headers=api.registrar,
        ),
    ]
    for response in refused:
        assert response.status_code == 503, response.text
        problem = response.json()
        assert problem["type"] == BROKEN_TYPE
        assert "audit chain is broken" in problem["detail"]

    # Verify names the record (and does not crash on its own audit record).
    result = cli("auditor1", "verify")
    assert result.exit_code == 1, result.output
    assert f"record {last + 1} was written outside the chain" in result.output
    assert "in quarantine" in result.output
    with sessions() as session:
        latest = session.scalars(select(AuditCheck).order_by(AuditCheck.id.desc())).first()
    assert (latest.state, latest.bad_seq, latest.kind) == ("broken", last + 1, "outside")

    # Only an administrator repairs, and the refusal is itself kept.
    assert cli("auditor1", "repair").exit_code != 0
    result = cli("admin1", "repair")
    assert result.exit_code == 0, result.output
    assert f"set aside: {last + 1}..{last + 1} (outside)" in result.output
    assert api.get("/health").json()["audit_chain"] == "intact"
    assert count(engine, AuditQuarantine) == 0
    assert api.post("/households", json=household(), headers=api.registrar).status_code == 201
    result = cli("auditor1", "verify")
    assert result.exit_code == 0, result.output
    assert f"set aside by repairs: record {last + 1}" in result.output
    actions = [(r.actor, r.action, r.outcome) for r in rows(engine)]
    assert ("amina", "auth.sign_in", "ok") in actions
    assert ("auditor1", "audit.repair", "denied") in actions
    assert ("admin1", "audit.repair", "ok") in actions
