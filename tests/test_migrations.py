"""The schema comes only from migrations: a model change without its migration fails here."""

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

import sijill.models  # noqa: F401  (registers every table)
from pg_support import PG_URL, private_database
from sijill.core.db import Base, alembic_config, make_engine, upgrade


def test_models_match_the_migrated_schema(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


# --- 0016: the person facts the region's programs need ---------------------------------------

FACTS = ["school_grade", "contributory_pension", "orphanhood", "monthly_income"]


@pytest.fixture(params=["sqlite", "postgresql"] if PG_URL else ["sqlite"])
def fresh_url(request, tmp_path):
    """An empty database of this test's own, named after the test database (private to it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    with private_database("0016") as url:
        yield url


def _state(url: str) -> tuple[dict[str, set[str]], int, int]:
    """The person tables' columns, and how many rows each holds."""
    engine = make_engine(url)
    with engine.connect() as connection:
        columns = {
            table: {column["name"] for column in inspect(connection).get_columns(table)}
            for table in ("person", "person_version")
        }
        persons = connection.scalar(text("SELECT count(*) FROM person"))
        versions = connection.scalar(text("SELECT count(*) FROM person_version"))
    engine.dispose()
    return columns, persons, versions


def test_0016_adds_the_person_facts_and_takes_them_back_without_losing_a_row(fresh_url):
    upgrade(fresh_url, "0015")
    engine = make_engine(fresh_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO person (id, given_name_lat, search_name, version, valid_from, "
                "recorded_by) VALUES (40000000001, 'Ali', 'ali', 1, :now, 'old')"
            ),
            {"now": "2024-05-01 10:00:00"},
        )
        connection.execute(
            text(
                "INSERT INTO person_version (person_id, given_name_lat, search_name, version, "
                "valid_from, valid_to, recorded_by) "
                "VALUES (40000000001, 'Aly', 'aly', 0, :now, :now, 'old')"
            ),
            {"now": "2024-05-01 10:00:00"},
        )
    engine.dispose()

    upgrade(fresh_url, "0016")
    columns, persons, versions = _state(fresh_url)
    for table in columns.values():
        assert set(FACTS) <= table
    assert (persons, versions) == (1, 1)
    engine = make_engine(fresh_url)
    with engine.begin() as connection:
        # A month's income in minor units beyond a 32-bit integer is stored as given.
        connection.execute(
            text(
                "UPDATE person SET school_grade = 12, contributory_pension = true, "
                "orphanhood = 'double', monthly_income = 5000000000"
            )
        )
        stored = connection.execute(
            text("SELECT school_grade, orphanhood, monthly_income FROM person")
        ).one()
    engine.dispose()
    assert tuple(stored) == (12, "double", 5_000_000_000)

    command.downgrade(alembic_config(fresh_url), "0015")
    columns, persons, versions = _state(fresh_url)
    for table in columns.values():
        assert not set(FACTS) & table
    assert (persons, versions) == (1, 1)


# --- 0020: household_score without a key on its run -------------------------------------------


def _score_keys(url: str) -> list[dict]:
    engine = make_engine(url)
    with engine.connect() as connection:
        keys = inspect(connection).get_foreign_keys("household_score")
    engine.dispose()
    return keys


def test_0020_drops_the_score_key_and_its_downgrade_restores_it(fresh_url):
    upgrade(fresh_url, "0019")
    assert [key["referred_table"] for key in _score_keys(fresh_url)] == ["targeting_run"]

    upgrade(fresh_url, "0020")
    assert _score_keys(fresh_url) == []
    engine = make_engine(fresh_url)
    with engine.begin() as connection:
        # A run writes its scores in the transaction that records it; nothing checks each row.
        connection.execute(
            text(
                "INSERT INTO household_score (run_id, household_id, score, poor) "
                "VALUES (7, 1000000001, 7.5, false)"
            )
        )
        connection.execute(text("DELETE FROM household_score"))
    engine.dispose()

    command.downgrade(alembic_config(fresh_url), "0019")
    keys = _score_keys(fresh_url)
    assert [(k["constrained_columns"], k["referred_table"]) for k in keys] == [
        (["run_id"], "targeting_run")
    ]
