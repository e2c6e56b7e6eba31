"""A wrong keyring is refused where it is met (serve, import, /health) with one line naming the
keys it lacks, instead of a 500 on every read; the registry notes the keys its values use."""

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from factories import auth_headers, household, make_areas, make_user, person
from sijill.api import create_app
from sijill.core.settings import Settings
from sijill.security.keys import keyring as keys
from sijill.security.keys.keyring import Keyring, current_keyring
from sijill.security.keys.usage import WrongKeyring, check_keyring, key_ids_in_use

SIJILL = [sys.executable, "-m", "sijill"]


@pytest.fixture
def registered(settings, sessions, engine):
    """A registry holding one household's encrypted identifiers, written through the API."""
    make_areas(sessions)
    with TestClient(create_app(settings), headers=auth_headers(sessions, settings)) as client:
        created = client.post("/households", json=household([person(phone="+962791234567")]))
        assert created.status_code == 201, created.text
    return current_keyring().active


def test_writes_note_their_key_and_a_server_checks_its_keyring(registered, engine, tmp_path):
    with engine.connect() as connection:
        assert key_ids_in_use(connection) == [registered]
    check_keyring(engine, current_keyring())  # the registry's own keyring: no complaint
    other = Keyring.load(tmp_path / "other.json")
    with pytest.raises(WrongKeyring) as refused:
        check_keyring(engine, other)
    message = str(refused.value)
    assert registered in message and "SIJILL_KEY_FILE" in message and "\n" not in message


def test_health_fails_naming_the_missing_key(registered, settings, tmp_path, monkeypatch):
    with TestClient(create_app(settings)) as client:
        healthy = client.get("/health")
        assert healthy.status_code == 200 and healthy.json()["keys"] == "ok"
    wrong = Settings(database_url=settings.database_url, key_file=tmp_path / "other.json")
    # create_app installs its keyring for the process: the test's own comes back afterwards.
    monkeypatch.setattr(keys, "_current", keys._current)
    with TestClient(create_app(wrong)) as client:
        failing = client.get("/health")
    assert failing.status_code == 503
    body = failing.json()
    assert body["status"] == "failing" and registered in body["keys"]


def _cli(args, env):
    return subprocess.run(
        [*SIJILL, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


@pytest.mark.parametrize("command", [["serve"], ["import", "README.md"]])
def test_serve_and_import_refuse_another_keyring_in_one_line(
    command, registered, sessions, database_url, tmp_path
):
    key = make_user(sessions, "importer", "administrator", service=True)
    env = {
        "SIJILL_DATABASE_URL": database_url,
        "SIJILL_KEY_FILE": str(tmp_path / "other.json"),
        "SIJILL_SERVICE_KEY": f"importer:{key}",
        "SIJILL_PORT": "1",  # never reached: refused before listening
    }
    result = _cli(command, env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert registered in lines[0] and "SIJILL_KEY_FILE" in lines[0]
