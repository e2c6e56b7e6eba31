"""Every database test runs on SQLite and, when SIJILL_TEST_DATABASE_URL is set (always in CI),
on PostgreSQL too: the same test, parametrised by backend, against a migrated database."""

import os

import pytest
from sqlalchemy import text

from sijill.core.db import make_engine, session_factory, upgrade
from sijill.core.settings import Settings

PG_URL = os.environ.get("SIJILL_TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
TABLES_CHILD_FIRST = [
    "membership",
    "person_version",
    "household_version",
    "person",
    "household",
    "area",
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
    yield migrated_url
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(TABLES_CHILD_FIRST)} CASCADE"))
        else:
            for table in TABLES_CHILD_FIRST:
                connection.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


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
