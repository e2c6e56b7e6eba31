"""Migration 0004 brings a registry with identifiers in clear forward without losing a row:
every number and phone encrypted, the blind index filled, nothing left in clear."""

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.orm import Session

from pg_support import PG_URL, private_database
from sijill.core.db import alembic_config, make_engine, upgrade
from sijill.registry import identifiers
from sijill.security.keys import keyring as keys
from sijill.security.keys.keyring import Keyring

BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
PERSONS = 1_234
NOW = "2024-05-01 10:00:00"


@pytest.fixture(params=BACKENDS)
def fresh_url(request, tmp_path):
    """An empty database of this test's own (migrations run from scratch)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old-registry.db'}"
        return
    with private_database("encryption") as url:
        yield url


@pytest.fixture
def key_file(tmp_path, monkeypatch):
    """The migration reads SIJILL_KEY_FILE; here a file that does not exist yet."""
    path = tmp_path / "keys" / "keys.json"
    monkeypatch.setenv("SIJILL_KEY_FILE", str(path))
    monkeypatch.setattr(keys, "_current", None)
    return path


def clear_rows() -> tuple[list[tuple], list[tuple]]:
    persons, versions = [], []
    for i in range(PERSONS):
        number = f"{20_000_000_000 + i * 104_729}" if i % 7 else None
        kind = "national_id" if number else None
        if i % 11 == 0:
            number, kind = f"N{i:07d}", "passport"
        phone = f"+96279{1_000_000 + i}" if i % 3 else None
        persons.append((30_000_000_000 + i, kind, number, phone))
        if i % 4 == 0:
            versions.append((30_000_000_000 + i, kind, number, f"+96277{2_000_000 + i}"))
    return persons, versions


def insert_clear(url: str, persons, versions) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO person (id, national_id_type, national_id, phone, version, "
                "valid_from, recorded_by) VALUES (:id, :kind, :number, :phone, 2, :now, 'old')"
            ),
            [
                dict(zip(("id", "kind", "number", "phone"), row, strict=True), now=NOW)
                for row in persons
            ],
        )
        connection.execute(
            text(
                "INSERT INTO person_version (person_id, version, national_id_type, national_id, "
                "phone, valid_from, valid_to, recorded_by) "
                "VALUES (:id, 1, :kind, :number, :phone, :now, :now, 'old')"
            ),
            [
                dict(zip(("id", "kind", "number", "phone"), row, strict=True), now=NOW)
                for row in versions
            ],
        )
    engine.dispose()


def raw(url: str, table: str, key: str) -> list[tuple]:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text(f"SELECT * FROM {table} ORDER BY {key}")).all()
    engine.dispose()
    return rows


def test_upgrade_encrypts_every_identifier_without_losing_a_row(fresh_url, key_file):
    upgrade(fresh_url, "0003")
    persons, versions = clear_rows()
    insert_clear(fresh_url, persons, versions)

    upgrade(fresh_url)

    assert key_file.exists()
    keyring = Keyring.load(key_file)
    engine = make_engine(fresh_url)
    with engine.connect() as connection:
        stored = connection.execute(
            text(
                "SELECT id, national_id_type, national_id, phone, national_id_index "
                "FROM person ORDER BY id"
            )
        ).all()
        stored_versions = connection.execute(
            text(
                "SELECT person_id, national_id_type, national_id, phone, national_id_index "
                "FROM person_version ORDER BY person_id"
            )
        ).all()
        # Migration 0011 notes the key the values are under, for servers to check at start.
        noted = connection.execute(text("SELECT key_id FROM key_in_use")).scalars().all()
    assert noted == [keyring.active]
    assert len(stored) == len(persons) and len(stored_versions) == len(versions)
    for before, after in ((persons, stored), (versions, stored_versions)):
        for (pid, kind, number, phone), row in zip(sorted(before), after, strict=True):
            assert (row.id if hasattr(row, "id") else row.person_id) == pid
            assert row.national_id_type == kind
            assert keyring.decrypt_many("national_id", [row.national_id]) == [number]
            assert keyring.decrypt_many("phone", [row.phone]) == [phone]
            assert row.national_id_index == (number and keyring.blind_index(number))

    # Not one identifier is left in clear anywhere in either table.
    dump = repr(raw(fresh_url, "person", "id")) + repr(
        raw(fresh_url, "person_version", "person_id")
    )
    for _, _, number, phone in persons + versions:
        assert number is None or number not in dump
        assert phone is None or phone not in dump

    # The blind index finds a person by the number as typed.
    pid, _, number, _ = next(row for row in persons if row[1] == "national_id")
    with Session(engine) as session:
        found = identifiers.find_by_national_id(session, f"{number[:4]} {number[4:]}")
        assert [p.id for p in found] == [pid]
        assert identifiers.read(found[0]).national_id == number
    engine.dispose()

    # And back: the downgrade restores the identifiers in clear.
    command.downgrade(alembic_config(fresh_url), "0003")
    restored = raw(fresh_url, "person", "id")
    assert [(r.id, r.national_id_type, r.national_id, r.phone) for r in restored] == sorted(persons)
    upgrade(fresh_url)
    assert len(raw(fresh_url, "person", "id")) == len(persons)


def test_upgrade_of_an_empty_registry_makes_no_key_file(fresh_url, key_file):
    upgrade(fresh_url)
    assert not key_file.exists()
