"""The audit chain: appends from many writers keep one intact chain, and every way of tampering
with it (as someone with the database owner's rights) is caught and named by record."""

import asyncio
import importlib.util
import threading
from contextlib import contextmanager

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

import sijill.security.audit.cli as audit_cli
from sijill.core.db import MIGRATIONS, session_factory, transaction
from sijill.core.errors import InvalidInput
from sijill.core.settings import get_settings
from sijill.security.audit.models import HASH_SQL, HASHED_FIELDS, AuditHead, AuditRecord
from sijill.security.audit.models import record_hash as hash_of
from sijill.security.audit.service import (
    GENESIS_HASH,
    AuditEntry,
    AuditFailed,
    AuditWriter,
    append,
    append_now,
    latest,
    verify,
)

READ = AuditEntry("amina", "registrar", "household.read", "ok", "household", "1000561627")


def entries(count: int, actor: str = "amina") -> list[AuditEntry]:
    return [
        AuditEntry(
            actor,
            "registrar",
            "household.read",
            "ok",
            "household",
            str(1_000_000_000 + i),
            "case_management",
            f"req-{i}",
        )
        for i in range(count)
    ]


def rows(engine) -> list[AuditRecord]:
    with session_factory(engine)() as session:
        return list(session.scalars(select(AuditRecord).order_by(AuditRecord.seq)))


def head(engine) -> tuple[int, str]:
    with session_factory(engine)() as session:
        found = session.get(AuditHead, 1)
        return found.seq, found.hash


# --- the hash ------------------------------------------------------------------------------


def test_genesis_hash_is_the_one_the_migration_writes():
    spec = importlib.util.spec_from_file_location("m0002", MIGRATIONS / "versions/0002_audit.py")
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.GENESIS_HASH == GENESIS_HASH
    assert len(GENESIS_HASH) == 64


field_text = st.one_of(
    st.none(), st.text(st.characters(min_codepoint=32, exclude_categories=["Cs"]), max_size=12)
)


@settings(max_examples=200, deadline=None)
@given(seq=st.integers(1, 2**62), values=st.lists(field_text, min_size=10, max_size=10))
def test_python_and_duckdb_hash_the_same_text(seq, values):
    """Appending hashes in Python, verifying in DuckDB: one byte apart and nothing verifies."""
    fields = dict(zip(HASHED_FIELDS, values, strict=True))
    table = pa.table(
        {
            "seq": pa.array([seq], pa.int64()),
            **{name: pa.array([value], pa.string()) for name, value in fields.items()},
        }
    )
    connection = duckdb.connect()
    connection.register("chunk", table)
    assert connection.execute(f"SELECT {HASH_SQL} FROM chunk").fetchone()[0] == hash_of(seq, fields)


def test_null_and_empty_text_hash_differently():
    fields = dict.fromkeys(HASHED_FIELDS, "x")
    assert hash_of(1, {**fields, "role": None}) != hash_of(1, {**fields, "role": ""})
    assert hash_of(1, {**fields, "role": "a", "action": ""}) != hash_of(
        1, {**fields, "role": "", "action": "a"}
    )


# --- appending ----------------------------------------------------------------------------


def test_an_empty_chain_verifies(engine):
    report = verify(engine)
    assert report.ok and report.checked == 0
    assert (report.head_seq, report.head_hash) == (0, GENESIS_HASH)
    # `verify` prints "0:<genesis hash>" as the anchor of an empty chain.
    assert verify(engine, anchors=[(0, GENESIS_HASH)]).ok
    assert verify(engine, anchors=[(0, "a" * 64)]).kind == "anchor"


def test_appends_chain_and_verify_across_chunks(engine, sessions):
    append_now(sessions, entries(5))
    with transaction(sessions) as session:
        append(session, [READ, AuditEntry("system:demo", None, "household.register", "ok")])
    append_now(sessions, [AuditEntry("مدير", "auditor", "audit.verify", "ok", purpose="")])
    chain = rows(engine)
    assert [r.seq for r in chain] == list(range(1, 9))
    assert chain[0].prev_hash == GENESIS_HASH
    assert all(
        later.prev_hash == earlier.hash for earlier, later in zip(chain, chain[1:], strict=False)
    )
    assert chain[-1].at.endswith("Z") and len(chain[-1].at) == 27
    assert head(engine) == (8, chain[-1].hash)
    seen = []
    report = verify(engine, chunk_rows=3, progress=lambda done, total: seen.append((done, total)))
    assert report.ok, report.problem
    assert report.checked == 8 and report.head_hash == chain[-1].hash
    assert seen == [(3, 8), (6, 8), (8, 8)]


def test_an_audit_rolls_back_with_the_write_it_records(engine, sessions):
    append_now(sessions, entries(2))
    with pytest.raises(RuntimeError), transaction(sessions) as session:
        append(session, entries(3))
        raise RuntimeError("the write failed")
    assert head(engine)[0] == 2
    append_now(sessions, entries(1))
    assert [r.seq for r in rows(engine)] == [1, 2, 3]  # no gap where the rollback was
    assert verify(engine).ok


@pytest.mark.parametrize(
    "entry",
    [
        AuditEntry("amina", "registrar", "household.read", "fine"),
        AuditEntry(None, None, "household.read", "ok"),
        AuditEntry("amina", None, "household.read", "ok", record_id=1000561627),
    ],
)
def test_malformed_entries_are_refused_before_anything_is_written(engine, sessions, entry):
    with pytest.raises(ValueError):
        append_now(sessions, [READ, entry])
    assert head(engine)[0] == 0 and rows(engine) == []


def test_hostile_text_is_recorded_escaped_not_refused(engine, sessions):
    """A failed sign-in records the user name the client sent, whatever it is."""
    append_now(
        sessions,
        [
            AuditEntry("a\x1fb\x00c\ud800", None, "auth.login", "denied", request_id="r\n" * 40),
            AuditEntry("x" * 500, None, "auth.login", "denied"),
        ],
    )
    first, second = rows(engine)
    assert first.actor == "a\\x1fb\\x00c\\ud800"
    assert len(first.request_id) == 64 and first.request_id.endswith("…")
    assert len(second.actor) == 128
    assert verify(engine).ok


def test_concurrent_appenders_keep_one_chain(engine, sessions):
    writers, appends = 8, 25
    failures = []

    def write(number: int) -> None:
        try:
            for i in range(appends):
                append_now(sessions, entries(1 + i % 3, actor=f"user{number}"))
        except Exception as error:  # reported below; a thread's exception is otherwise lost
            failures.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    expected = writers * sum(1 + i % 3 for i in range(appends))
    report = verify(engine)
    assert report.ok, report.problem
    assert report.checked == expected == head(engine)[0]


def test_audit_writer_shares_commits_between_concurrent_callers(engine, sessions):
    writer = AuditWriter(sessions)
    callers = 200

    async def main() -> None:
        await asyncio.gather(*(writer.record(entries(1, actor=f"u{i}")) for i in range(callers)))
        await writer.record([READ])
        await writer.close()

    asyncio.run(main())
    assert head(engine)[0] == callers + 1
    assert writer.transactions < callers / 4
    assert verify(engine).ok


def test_audit_writer_close_flushes_what_is_queued(engine, sessions):
    writer = AuditWriter(sessions)

    async def main() -> None:
        pending = [asyncio.ensure_future(writer.record([READ])) for _ in range(10)]
        await asyncio.sleep(0)  # queued, not yet awaited to completion
        await writer.close()
        assert all(task.done() for task in pending)

    asyncio.run(main())
    assert head(engine)[0] == 10


def test_a_failed_audit_fails_every_caller_in_its_commit(tmp_path):
    # A database without the audit tables: every commit fails.
    broken = session_factory(create_engine(f"sqlite:///{tmp_path / 'empty.db'}"))
    writer = AuditWriter(broken)

    async def main() -> list:
        results = await asyncio.gather(
            *(writer.record([READ]) for _ in range(20)), return_exceptions=True
        )
        await writer.close()
        return results

    results = asyncio.run(main())
    assert len(results) == 20 and all(isinstance(r, AuditFailed) for r in results)


def test_every_append_path_hashes_what_canonical_defines(engine, sessions):
    """On PostgreSQL the chain is extended by `audit_append` in the database: its hashes must
    be byte for byte the Python definition's, for any text a field can hold."""
    awkward = [None, "", "+", "-", "\\", "'", '"', "%s", "مدير", "Ω≈ç", "🙂", "a" * 60]
    batch = [
        AuditEntry(
            actor=value or "x",
            role=value,
            action="household.read",
            outcome="ok",
            record_type=value,
            record_id=value,
            purpose=awkward[-1 - i],
            request_id=value,
        )
        for i, value in enumerate(awkward)
    ]
    append_now(sessions, batch[:4])
    with transaction(sessions) as session:
        append(session, batch[4:8])
    writer = AuditWriter(sessions)

    async def main() -> None:
        await asyncio.gather(*(writer.record([entry]) for entry in batch[8:]))
        await writer.close()

    asyncio.run(main())
    chain = rows(engine)
    assert len(chain) == len(batch)
    for record in chain:
        fields = {name: getattr(record, name) for name in HASHED_FIELDS}
        assert record.hash == hash_of(record.seq, fields), record.seq
    assert [r.purpose for r in chain[:4]] == awkward[-1:-5:-1]
    assert verify(engine).ok


def test_the_audit_writer_reconnects_after_losing_its_connection(engine, sessions):
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL appends through the writer's own connection")
    writer = AuditWriter(sessions)

    async def main() -> None:
        await writer.record([READ])
        with engine.begin() as connection:  # as a database restart would
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'SELECT audit_append%' AND pid <> pg_backend_pid()"
                )
            )
        # The batch that meets the dead connection fails (its callers get 503)...
        with pytest.raises(AuditFailed):
            for _ in range(50):
                await writer.record([READ])
                await asyncio.sleep(0.01)
        # ... and the next starts on a fresh one.
        await writer.record([READ])
        await writer.close()

    asyncio.run(main())
    assert verify(engine).ok


def test_a_failed_audit_fails_every_caller_on_postgresql(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite is tested with a database without the audit tables")
    wrong = engine.url.set(database="sijill_no_such_database")
    writer = AuditWriter(session_factory(create_engine(wrong)))

    async def main() -> list:
        results = await asyncio.gather(
            *(writer.record([READ]) for _ in range(20)), return_exceptions=True
        )
        await writer.close()
        return results

    results = asyncio.run(main())
    assert len(results) == 20 and all(isinstance(r, AuditFailed) for r in results)
    assert head(engine)[0] == 0


def test_latest_filters_by_actor_record_and_time(engine, sessions):
    append_now(sessions, entries(3, actor="amina"))
    append_now(sessions, entries(2, actor="omar"))
    with session_factory(engine)() as session:
        assert [r.seq for r in latest(session, actor="omar")] == [5, 4]
        assert [r.seq for r in latest(session, record_id="1000000001")] == [5, 2]
        assert len(latest(session, since="2000-01-01T00:00:00.000000Z", limit=2)) == 2
        assert latest(session, since="2999-01-01T00:00:00.000000Z") == []


# --- the append-only triggers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_record SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_record WHERE seq = 2",
        "DELETE FROM audit_head",
        "UPDATE audit_head SET seq = 1",
    ],
)
def test_the_database_refuses_changes_to_the_chain(engine, sessions, statement):
    append_now(sessions, entries(3))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    assert verify(engine).ok


def test_postgresql_refuses_truncating_the_chain(engine, sessions):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    append_now(sessions, entries(3))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text("TRUNCATE audit_record"))


# --- tampering ------------------------------------------------------------------------------


@contextmanager
def attacker(engine):
    """Someone with the owner's rights: the triggers are no obstacle (conftest restores them)."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            for table in ("audit_record", "audit_head"):
                connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        else:
            names = (
                connection.execute(
                    text(
                        "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                        "AND tbl_name IN ('audit_record', 'audit_head')"
                    )
                )
                .scalars()
                .all()
            )
            for name in names:
                connection.execute(text(f"DROP TRIGGER {name}"))
        yield connection


def forge(connection, seq: int, prev_hash: str, actor: str = "mallory") -> str:
    """A record made exactly as `append` makes one (the algorithm is no secret)."""
    fields = {
        "at": "2026-01-01T00:00:00.000000Z",
        "actor": actor,
        "role": "registrar",
        "action": "household.update",
        "outcome": "ok",
        "record_type": "household",
        "record_id": "1000561627",
        "purpose": None,
        "request_id": None,
        "prev_hash": prev_hash,
    }
    digest = hash_of(seq, fields)
    connection.execute(AuditRecord.__table__.insert(), [{**fields, "seq": seq, "hash": digest}])
    return digest


def hash_at(connection, seq: int) -> str:
    return connection.execute(text(f"SELECT hash FROM audit_record WHERE seq = {seq}")).scalar()


def alter(connection):
    connection.execute(text("UPDATE audit_record SET record_id = '1000000099' WHERE seq = 7"))


def alter_and_rehash(connection):
    row = connection.execute(text("SELECT * FROM audit_record WHERE seq = 7")).mappings().one()
    fields = {**{name: row[name] for name in HASHED_FIELDS}, "actor": "mallory"}
    connection.execute(
        text("UPDATE audit_record SET actor = 'mallory', hash = :h WHERE seq = 7"),
        {"h": hash_of(7, fields)},
    )


def delete(connection):
    connection.execute(text("DELETE FROM audit_record WHERE seq IN (7, 8)"))


def swap(connection):
    connection.execute(text("UPDATE audit_record SET seq = -5 WHERE seq = 5"))
    connection.execute(text("UPDATE audit_record SET seq = 5 WHERE seq = 12"))
    connection.execute(text("UPDATE audit_record SET seq = 12 WHERE seq = -5"))


def swap_neighbours(connection):
    connection.execute(text("UPDATE audit_record SET seq = -5 WHERE seq = 5"))
    connection.execute(text("UPDATE audit_record SET seq = 5 WHERE seq = 6"))
    connection.execute(text("UPDATE audit_record SET seq = 6 WHERE seq = -5"))


def insert(connection):
    # Make room at 8 (two steps: the primary key is checked row by row), forge a record there
    # chained to record 7, and move the head on by one.
    connection.execute(text("UPDATE audit_record SET seq = -(seq + 1) WHERE seq >= 8"))
    connection.execute(text("UPDATE audit_record SET seq = -seq WHERE seq < 0"))
    forge(connection, 8, hash_at(connection, 7))
    connection.execute(text("UPDATE audit_head SET seq = seq + 1"))


def truncate(connection):
    connection.execute(text("DELETE FROM audit_record WHERE seq > 15"))


def append_around_the_head(connection):
    forge(connection, 21, hash_at(connection, 20))


def forge_before_the_start(connection):
    forge(connection, 0, GENESIS_HASH)


def rewind_head(connection):
    connection.execute(text("UPDATE audit_head SET hash = :h"), {"h": "0" * 64})


TAMPERING = {
    # how: (first bad seq, kind, words the message must contain)
    alter: (7, "altered", "record 7 was altered"),
    alter_and_rehash: (7, "replaced", "record 7 was replaced"),
    delete: (7, "missing", "records 7..8 are missing"),
    swap: (5, "out_of_order", "record 5 is out of order"),
    swap_neighbours: (5, "out_of_order", "record 5 is out of order"),
    insert: (8, "inserted", "record 8 was inserted"),
    truncate: (16, "truncated", "truncated after record 15"),
    append_around_the_head: (21, "outside", "record 21 was written outside the chain"),
    forge_before_the_start: (0, "inserted", "record 0 was inserted before the chain's first"),
    rewind_head: (20, "head_mismatch", "record 20 does not match the chain's head"),
}


@pytest.mark.parametrize("tamper", TAMPERING, ids=lambda f: f.__name__)
@pytest.mark.parametrize("chunk_rows", [1_000, 6])
def test_tampering_is_caught_at_the_first_bad_record(engine, sessions, tamper, chunk_rows):
    for _ in range(4):
        append_now(sessions, entries(5))
    with attacker(engine) as connection:
        tamper(connection)
    report = verify(engine, chunk_rows=chunk_rows)
    seq, kind, words = TAMPERING[tamper]
    assert not report.ok
    assert (report.bad_seq, report.kind) == (seq, kind), report.problem
    assert words in report.problem
    assert report.checked == max(seq - 1, 0)


def test_a_chain_rewritten_whole_is_caught_by_an_anchor_kept_outside(engine, sessions):
    append_now(sessions, entries(10))
    anchor = (6, hash_at_engine(engine, 6))
    with attacker(engine) as connection:
        # Rewrite from record 4 on, every hash recomputed and the head moved along: the chain
        # is consistent again and only a hash kept outside the database can tell.
        connection.execute(text("UPDATE audit_record SET actor = 'mallory' WHERE seq = 4"))
        prev = hash_at(connection, 3)
        for seq in range(4, 11):
            row = (
                connection.execute(text(f"SELECT * FROM audit_record WHERE seq = {seq}"))
                .mappings()
                .one()
            )
            fields = {**{name: row[name] for name in HASHED_FIELDS}, "prev_hash": prev}
            new_hash = hash_of(seq, fields)
            connection.execute(
                text(f"UPDATE audit_record SET prev_hash = :p, hash = :h WHERE seq = {seq}"),
                {"p": prev, "h": new_hash},
            )
            prev = new_hash
        connection.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
    assert verify(engine).ok
    report = verify(engine, anchors=[anchor], chunk_rows=4)
    assert (report.ok, report.bad_seq, report.kind) == (False, 6, "anchor")
    assert verify(engine, anchors=[(2, hash_at_engine(engine, 2))]).ok
    report = verify(engine, anchors=[(40, "a" * 64)])
    assert (report.bad_seq, report.kind) == (40, "anchor")


def hash_at_engine(engine, seq: int) -> str:
    with engine.connect() as connection:
        return hash_at(connection, seq)


# --- the command line -----------------------------------------------------------------------


@pytest.fixture
def cli(database_url, sessions, monkeypatch):
    from factories import make_user

    key = make_user(sessions, "auditor1", "auditor", service=True)
    monkeypatch.setenv("SIJILL_DATABASE_URL", database_url)
    monkeypatch.setenv("SIJILL_SERVICE_KEY", f"auditor1:{key}")
    get_settings.cache_clear()
    app = audit_cli.audit_app
    yield lambda *args: CliRunner().invoke(app, list(args))
    get_settings.cache_clear()


def test_cli_verify_says_intact_or_names_the_first_bad_record(engine, sessions, cli):
    append_now(sessions, entries(20))
    result = cli("verify")
    assert result.exit_code == 0, result.output
    # 21: the verification itself is audited, before it walks the chain.
    last = head(engine)[1]
    assert f"audit chain intact: 21 records, last hash {last}" in result.output
    assert cli("verify", "--anchor", f"21:{last}").exit_code == 0
    with attacker(engine) as connection:
        alter(connection)
    result = cli("verify")
    assert result.exit_code == 1
    assert "record 7 was altered" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert isinstance(cli("verify", "--anchor", "7:not-a-hash").exception, InvalidInput)


def test_cli_show_lists_the_latest_records(sessions, cli):
    append_now(sessions, entries(3, actor="amina") + entries(1, actor="omar"))
    result = cli("show", "--actor", "omar", "--since", "2000-01-01")
    assert result.exit_code == 0, result.output
    assert "omar" in result.output and "amina" not in result.output


def test_the_audit_table_holds_no_personal_fields():
    columns = set(AuditRecord.__table__.c.keys())
    assert not columns & {"name", "national_id", "phone", "given_name_ar", "birth_date"}


def test_cli_audit_log_is_for_national_auditors_as_the_api(database_url, sessions, monkeypatch):
    """The rule once for both ways in: a district auditor is refused the log (and that is
    audited), as `GET /audit/records` refuses them."""
    from factories import make_areas, make_user
    from sijill.core.errors import Forbidden

    make_areas(sessions)
    key = make_user(sessions, "district-auditor", "auditor", "SJ0101", service=True)
    monkeypatch.setenv("SIJILL_DATABASE_URL", database_url)
    monkeypatch.setenv("SIJILL_SERVICE_KEY", f"district-auditor:{key}")
    get_settings.cache_clear()
    try:
        for command in ("show", "verify"):
            result = CliRunner().invoke(audit_cli.audit_app, [command])
            assert isinstance(result.exception, Forbidden), result.output
            assert "auditors of the whole country" in result.exception.detail
    finally:
        get_settings.cache_clear()
    with sessions() as session:
        refused = latest(session, actor="district-auditor")
    assert [(r.action, r.outcome) for r in refused] == [
        ("audit.verify", "denied"),
        ("audit.show", "denied"),
    ]
