"""Every database test runs on SQLite and, when SIJILL_TEST_DATABASE_URL is set (always in CI),
on PostgreSQL too: the same test, parametrised by backend, against a migrated database."""

import os
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text

# One keyring for the whole test session, made before any settings are read; never the
# developer's own key file.
_SECRETS = Path(tempfile.mkdtemp(prefix="sijill-test-"))
os.environ["SIJILL_KEY_FILE"] = str(_SECRETS / "keys.json")
os.environ["SIJILL_SESSION_FILE"] = str(_SECRETS / "session.json")
os.environ["SIJILL_WORK_DIR"] = str(_SECRETS / "work")  # uploads and jobs' rejects files
os.environ["SIJILL_AGGREGATES_MAX_AGE"] = "0"  # tests read figures right after writing them
# A model trained on a test's few thousand persons learns u from 300,000 random pairs, not the
# national default of 5,000,000 (nearly every pair there is, at 6 s a million).
os.environ["SIJILL_LINKAGE_U_PAIRS"] = "300000"
os.environ.pop("SIJILL_SERVICE_KEY", None)

import sijill.models  # noqa: E402, F401  (registers every table)
from sijill.core.db import Base, make_engine, session_factory, upgrade  # noqa: E402
from sijill.core.settings import Settings  # noqa: E402
from sijill.security.principal import forget_scopes  # noqa: E402


def _database_of_this_worker(url: str | None) -> str | None:
    """Under pytest-xdist each worker empties and migrates its own PostgreSQL database
    (`<name>_gw0`, ...), created here on first use; test modules read the variable after this."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    import psycopg

    base, name = url.rsplit("/", 1)
    database = f"{name}_{worker}"
    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{database}"')
    os.environ["SIJILL_TEST_DATABASE_URL"] = f"{base}/{database}"
    return os.environ["SIJILL_TEST_DATABASE_URL"]


PG_URL = _database_of_this_worker(os.environ.get("SIJILL_TEST_DATABASE_URL"))
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
# Tables that keep their rows between tests (single-row state reset below instead).
KEPT_TABLES = {"audit_head"}
TABLES_CHILD_FIRST = [
    table.name for table in reversed(Base.metadata.sorted_tables) if table.name not in KEPT_TABLES
]


def _reset_postgresql(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_url(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'registry.db'}"
    else:
        url = PG_URL
        _reset_postgresql(url)
    upgrade(url)
    return url


@pytest.fixture
def database_url(migrated_url):
    """A migrated, empty registry; emptied again after the test, whatever it committed."""
    from sijill.security.audit.models import GENESIS_HASH

    audit_tables = "'audit_record', 'audit_head'"
    engine = make_engine(migrated_url)
    postgresql = engine.dialect.name == "postgresql"
    # The audit chain's append-only triggers refuse the cleanup; SQLite has no way to disable
    # them, so they are dropped and recreated from their own definitions, read before the
    # test (which may drop them to play an attacker).
    sqlite_triggers = []
    if not postgresql:
        with engine.connect() as connection:
            sqlite_triggers = connection.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                    f"AND tbl_name IN ({audit_tables})"
                )
            ).all()
    yield migrated_url
    with engine.begin() as connection:
        if postgresql:
            for table in ("audit_record", "audit_head"):
                connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            connection.execute(text(f"TRUNCATE {', '.join(TABLES_CHILD_FIRST)} CASCADE"))
        else:
            for name, _ in sqlite_triggers:
                connection.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
            for table in TABLES_CHILD_FIRST:
                connection.execute(text(f"DELETE FROM {table}"))
        connection.execute(text("DELETE FROM audit_head"))
        connection.execute(
            text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :hash)"),
            {"hash": GENESIS_HASH},
        )
        if postgresql:
            for table in ("audit_record", "audit_head"):
                connection.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        else:
            for _, sql in sqlite_triggers:
                connection.execute(text(sql))
    engine.dispose()
    # Area ids are reused by the next test's areas: no server would see its tree emptied.
    forget_scopes()


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine):
    return session_factory(engine)


@pytest.fixture
def settings(database_url):
    return Settings(database_url=database_url)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per browser test module (they skip without it). Not one for the
    whole run: Playwright's sync API keeps an event loop running in the main thread while it
    is open, and the tests after it that call asyncio.run() would fail."""
    from browser_support import launch

    with launch() as chromium:
        yield chromium
