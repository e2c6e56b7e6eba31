"""Key rotation: every stored identifier re-encrypted in batches, readable all along; a key is
retired only when nothing needs it any more; `sijill keys` on top of it."""

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from factories import make_user
from sijill.core.settings import get_settings
from sijill.registry import identifiers
from sijill.registry.identifiers import Identifiers
from sijill.registry.models import Person, PersonVersion
from sijill.security.keys import keyring as keys
from sijill.security.keys.keyring import Keyring, KeyringError, add_key
from sijill.security.keys.rotation import retire_key, rotate, update_rows, usage
from sijill.security.keys.usage import key_ids_in_use as noted_key_ids

NOW = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def keyring(tmp_path, monkeypatch):
    """A key file of this test's own, current for its duration; servers (here: every keyring)
    notice a key file change at once. Its first key is named `k1`, as key files were before
    key ids were fingerprints: rotating away from such a key works as from any other."""
    fresh = json.loads(Keyring.load(tmp_path / "fresh.json").path.read_text())
    path = tmp_path / "keys.json"
    path.write_text(
        json.dumps({**fresh, "active": "k1", "keys": {"k1": fresh["keys"].popitem()[1]}})
    )
    path.chmod(0o600)
    keyring = Keyring.load(path)
    monkeypatch.setattr(keys, "_current", keyring)
    monkeypatch.setattr(keys, "REFRESH_SECONDS", 0.0)
    return keyring


def number(i: int) -> str:
    return f"{10_000_000_000 + i * 7919}"


def phone(i: int) -> str:
    return f"+9627{9_000_000 + i}"


def make_persons(sessions, count: int) -> dict[int, Identifiers]:
    """`count` persons with identifiers (some missing), every third with an older version."""
    expected = {}
    with sessions() as session, session.begin():
        for i in range(count):
            person_id = 100_000_000_000 + i
            ids = Identifiers(
                "national_id" if i % 5 else None,
                number(i) if i % 5 else None,
                phone(i) if i % 4 else None,
            )
            person = Person(id=person_id, version=1, valid_from=NOW, recorded_by="test")
            identifiers.write(person, ids)
            session.add(person)
            expected[person_id] = ids
            if i % 3 == 0:
                old = PersonVersion(
                    person_id=person_id, version=0, valid_from=NOW, valid_to=NOW, recorded_by="t"
                )
                identifiers.write(old, Identifiers("passport", f"N{i:07d}", phone(i + 1)))
                session.add(old)
                expected[(person_id, 0)] = Identifiers("passport", f"N{i:07d}", phone(i + 1))
    return expected


def read_all(sessions) -> dict:
    with sessions() as session:
        found = {p.id: identifiers.read(p) for p in session.scalars(select(Person))}
        for version in session.scalars(select(PersonVersion)):
            found[(version.person_id, version.version)] = identifiers.read(version)
    return found


def key_ids_in_use(engine) -> set[str]:
    with engine.connect() as connection:
        tokens = connection.execute(
            text(
                "SELECT national_id, phone FROM person UNION ALL "
                "SELECT national_id, phone FROM person_version"
            )
        ).all()
    return {token.split(".")[0] for row in tokens for token in row if token is not None}


def test_rotation_reencrypts_everything_and_reads_work_before_during_after(
    engine, sessions, keyring
):
    expected = make_persons(sessions, 230)
    assert read_all(sessions) == expected
    new = add_key(keyring.path)
    seen_during = []

    def progress(done: int, total: int) -> None:
        seen_during.append((done, total))
        assert read_all(sessions) == expected  # half old key, half new: all readable

    report = rotate(engine, keyring, progress, batch_rows=40)
    in_table = {
        "person": _rows_with_identifiers(v for k, v in expected.items() if isinstance(k, int)),
        "person_version": sum(1 for key in expected if isinstance(key, tuple)),
    }
    assert report.rows == in_table
    assert report.total_rows == _rows_with_identifiers(expected) and report.left == 0
    assert len(seen_during) > 3 and seen_during[-1][0] == seen_during[-1][1]
    assert key_ids_in_use(engine) == {new}
    assert read_all(sessions) == expected
    assert usage(engine) == {new: sum(_values(ids) for ids in expected.values())}
    # Nothing left to do: a second rotation changes nothing.
    assert rotate(engine, keyring).total_rows == 0


def _values(ids: Identifiers) -> int:
    return (ids.national_id is not None) + (ids.phone is not None)


def _rows_with_identifiers(expected) -> int:
    values = expected.values() if isinstance(expected, dict) else expected
    return sum(1 for ids in values if _values(ids))


def test_interrupted_rotation_continues_where_it_stopped(engine, sessions, keyring):
    expected = make_persons(sessions, 120)
    new = add_key(keyring.path)

    class Stop(Exception):
        pass

    def stop_after_first_batch(done: int, total: int) -> None:
        if done:
            raise Stop

    with pytest.raises(Stop):
        rotate(engine, keyring, stop_after_first_batch, batch_rows=50)
    assert key_ids_in_use(engine) == {"k1", new}
    assert read_all(sessions) == expected
    report = rotate(engine, keyring, batch_rows=50)
    assert report.total_rows == _rows_with_identifiers(expected) - 50
    assert key_ids_in_use(engine) == {new}


def test_retire_refuses_while_rows_use_the_key(engine, sessions, keyring):
    expected = make_persons(sessions, 30)
    new = add_key(keyring.path)
    with pytest.raises(KeyringError, match="rotate"):
        retire_key(engine, keyring.path, "k1")
    with pytest.raises(KeyringError, match="active key"):
        retire_key(engine, keyring.path, new)
    with pytest.raises(KeyringError, match="not a key id"):
        retire_key(engine, keyring.path, "k1' OR '1'='1")
    rotate(engine, keyring)
    # What servers check their keyring against: the new key noted before rotation wrote
    # under it, the old one until it is retired.
    with engine.connect() as connection:
        assert set(noted_key_ids(connection)) == {"k1", new}
    retire_key(engine, keyring.path, "k1")
    assert Keyring.load(keyring.path).key_ids == [new]
    with engine.connect() as connection:
        assert noted_key_ids(connection) == [new]
    assert read_all(sessions) == expected


def test_retire_waits_until_servers_can_have_noticed_the_new_key(engine, keyring, monkeypatch):
    new = add_key(keyring.path)
    monkeypatch.setattr(keys, "REFRESH_SECONDS", 30.0)
    with pytest.raises(KeyringError, match="retire it in"):
        retire_key(engine, keyring.path, "k1")
    assert Keyring.load(keyring.path).key_ids == ["k1", new]


def test_rotation_leaves_a_row_changed_meanwhile_to_the_next_pass(engine, sessions, keyring):
    make_persons(sessions, 3)
    with sessions() as session:
        person = session.get(Person, 100_000_000_001)
        stale = {"national_id": [person.national_id], "phone": [person.phone]}
    with sessions() as session, session.begin():
        identifiers.write(session.get(Person, 100_000_000_001), Identifiers(None, None, None))
    with engine.begin() as connection:
        changed = update_rows(
            connection,
            "person",
            (("id", "bigint"),),
            [(100_000_000_001,)],
            {"national_id": ["k1.x"], "phone": ["k1.y"]},
            stale,
        )
    assert changed == 0
    with sessions() as session:
        assert identifiers.read(session.get(Person, 100_000_000_001)) == Identifiers()


def test_keys_commands(engine, sessions, keyring, monkeypatch, database_url):
    from sijill.security.keys.cli import keys_app

    expected = make_persons(sessions, 25)
    key = make_user(sessions, "keyadmin", "administrator", service=True)
    monkeypatch.setenv("SIJILL_DATABASE_URL", database_url)
    monkeypatch.setenv("SIJILL_KEY_FILE", str(keyring.path))
    monkeypatch.setenv("SIJILL_SERVICE_KEY", f"keyadmin:{key}")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        shown = runner.invoke(keys_app, ["show"])
        assert shown.exit_code == 0, shown.output
        assert "k1" in shown.output and "yes" in shown.output
        assert keyring.token_key.hex() not in shown.output
        assert runner.invoke(keys_app, ["add"]).exit_code == 0
        new = Keyring.load(keyring.path).active
        refused = runner.invoke(keys_app, ["retire", "k1"])
        assert refused.exit_code != 0 and isinstance(refused.exception, KeyringError)
        rotated = runner.invoke(keys_app, ["rotate"])
        assert rotated.exit_code == 0, rotated.output
        assert f"{_rows_with_identifiers(expected)} rows re-encrypted under key {new}" in " ".join(
            rotated.output.split()
        )
        assert runner.invoke(keys_app, ["retire", "k1"]).exit_code == 0
        assert Keyring.load(keyring.path).key_ids == [new]
        for command in ("show", "add", "rotate", "retire"):
            helped = runner.invoke(keys_app, [command, "--help"])
            assert "Example: sijill keys" in helped.output or "sijill keys" in helped.output
    finally:
        get_settings.cache_clear()
    assert read_all(sessions) == expected
