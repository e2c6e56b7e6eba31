"""Migration 0010 refolds the stored name-search keys so compound names written in one word or
two find each other, and its downgrade gives back the keys of before."""

import pytest
from alembic import command
from sqlalchemy import text

from pg_support import PG_URL, private_database
from sijill.core.db import alembic_config, make_engine, upgrade
from sijill.identity.names import search_name

BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
NOW = "2024-05-01 10:00:00"
# (name parts, the key the fold of revision 0009 stored)
PERSONS = [
    ({"given_name_ar": "عبد الرحمن", "family_name_ar": "الخطيب"}, "عبد الرحمن الخطيب"),
    ({"given_name_ar": "عبدالرحمن", "family_name_ar": "الخطيب"}, "عبدالرحمن الخطيب"),
    ({"given_name_lat": "Abdel Rahman", "family_name_lat": "Saleh"}, "abdel rahman saleh"),
    ({"given_name_lat": "Abd el-Rahman"}, "abd el rahman"),
    ({"given_name_lat": "Abdin", "family_name_lat": "Rahman"}, "abdin rahman"),
    ({"given_name_ar": "أحمد", "given_name_lat": "Ahmad"}, "احمد ahmad"),
]


@pytest.fixture(params=BACKENDS)
def fresh_url(request, tmp_path):
    """An empty database of this test's own, named after the test database (private to it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    with private_database("fold") as url:
        yield url


def stored_keys(url: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as connection:
        keys = connection.scalars(text("SELECT search_name FROM person ORDER BY id")).all()
    engine.dispose()
    return list(keys)


def test_upgrade_refolds_compound_names_and_downgrade_restores(fresh_url):
    upgrade(fresh_url, "0009")
    engine = make_engine(fresh_url)
    with engine.begin() as connection:
        for number, (parts, key) in enumerate(PERSONS):
            columns = ", ".join(parts)
            values = ", ".join(f":{part}" for part in parts)
            connection.execute(
                text(
                    f"INSERT INTO person (id, {columns}, search_name, version, valid_from, "
                    f"recorded_by) VALUES (:id, {values}, :key, 1, :now, 'old')"
                ),
                {"id": 40_000_000_000 + number, "key": key, "now": NOW, **parts},
            )
    engine.dispose()

    upgrade(fresh_url, "0010")
    keys = stored_keys(fresh_url)
    assert keys == [search_name(parts) for parts, _ in PERSONS]
    assert keys[0] == keys[1] == "عبدالرحمن الخطيب"
    assert keys[3] == "abdelrahman"

    command.downgrade(alembic_config(fresh_url), "0009")
    assert stored_keys(fresh_url) == [key for _, key in PERSONS]
