"""The command line as a clerk meets it: help with an example on every command, one clear
line and a non-zero exit for a mistake, and an interrupted import that can simply be re-run."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import polars as pl
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from factories import make_user
from sijill.core.db import alembic_config, make_engine, session_factory, upgrade
from sijill.registry.models import Person
from sijill.synth.service import generate

SIJILL = [sys.executable, "-m", "sijill"]
COMMANDS = [
    [],
    ["synth"],
    ["import"],
    ["review-flags"],
    ["review-flags", "list"],
    ["review-flags", "decide"],
    ["serve"],
    ["demo"],
    ["db"],
    ["db", "upgrade"],
    ["areas"],
    ["areas", "load"],
    ["login"],
    ["logout"],
    ["whoami"],
    ["users"],
    ["users", "add"],
    ["users", "roles"],
    ["users", "disable"],
    ["users", "enable"],
    ["users", "reset"],
    ["users", "list"],
    ["export"],
    ["audit"],
    ["audit", "verify"],
    ["audit", "show"],
    ["keys"],
    ["keys", "rotate"],
    ["keys", "add"],
    ["keys", "retire"],
    ["keys", "show"],
]


def run(args, env=None, **kwargs):
    return subprocess.run(
        [*SIJILL, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        **kwargs,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "sijill")
def test_every_command_has_help(command):
    result = run([*command, "--help"])
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    if command and command not in (
        ["db"],
        ["areas"],
        ["users"],
        ["audit"],
        ["keys"],
        ["review-flags"],
    ):
        assert "Example" in result.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["import", "/no/such/file.csv"], "no such file or folder"),
        (["import", "README.md"], "cannot read '.md' files"),
        (["synth", "--households", "0", "--out", "/tmp/x"], "households"),
        (["areas", "load", "/no/such/areas.csv"], "areas.csv: no such file"),
    ],
)
def test_a_mistake_is_one_line_and_a_non_zero_exit(args, message, tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    sessions = session_factory(make_engine(url))
    key = make_user(sessions, "importer", "administrator", service=True)
    result = run(args, env={"SIJILL_DATABASE_URL": url, "SIJILL_SERVICE_KEY": f"importer:{key}"})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_a_database_behind_the_code_is_one_line_and_a_non_zero_exit(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url, "0006")
    sessions = session_factory(make_engine(url))
    key = make_user(sessions, "importer", "administrator", service=True)
    result = run(
        ["whoami"], env={"SIJILL_DATABASE_URL": url, "SIJILL_SERVICE_KEY": f"importer:{key}"}
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: The registry database is at revision 0006; this version of Sijill needs "
        f"revision {ScriptDirectory.from_config(alembic_config(url)).get_current_head()}: "
        "run `sijill db upgrade` first"
    ]


def test_commands_on_personal_data_need_a_signed_in_user(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    result = run(["import", "README.md"], env={"SIJILL_DATABASE_URL": url})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: Sign in first with `sijill login`, or set SIJILL_SERVICE_KEY=<user>:<key> for "
        "a service account"
    ]


def test_db_upgrade_creates_one_administrator_once(tmp_path):
    env = {"SIJILL_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    first = run(["db", "upgrade"], env=env)
    assert first.returncode == 0, first.stderr
    assert "One-time password" in first.stdout
    again = run(["db", "upgrade"], env=env)
    assert again.returncode == 0 and "password" not in again.stdout


@pytest.fixture(scope="module")
def country(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("country") / "synth"
    generate(5_000, 5, out)
    return out


def _source_sizes(country: Path, source: str) -> dict[str, int]:
    persons = pl.read_parquet(country / "persons.parquet", columns=["household_key"])
    sizes = persons.group_by("household_key").len()
    return {f"{source}:{k}": n for k, n in sizes.iter_rows()}


def _imported_sizes(database_url) -> dict[str, int]:
    from sijill.core.db import make_engine

    engine = make_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT h.source_key, count(m.id) FROM household h "
                "LEFT JOIN membership m ON m.household_id = h.id GROUP BY h.source_key"
            )
        ).all()
    engine.dispose()
    return dict(rows)


def _importer_env(sessions, database_url, **extra) -> dict[str, str]:
    """An administrator's service account importing in batches of 100 households."""
    key = make_user(sessions, "importer", "administrator", service=True)
    return {
        **os.environ,
        "SIJILL_DATABASE_URL": database_url,
        "SIJILL_IMPORT_BATCH_SIZE": "100",
        "SIJILL_SERVICE_KEY": f"importer:{key}",
        **extra,
    }


def _start_paused_import(country: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """Start `sijill import` and wait until it has written its first batch and paused with the
    next one in hand (SIJILL_IMPORT_PAUSE_AFTER_BATCH), so a signal sent now always finds it
    part way; return the process and what it has said on stderr so far."""
    process = subprocess.Popen(
        [*SIJILL, "import", str(country)],
        env={**env, "SIJILL_IMPORT_PAUSE_AFTER_BATCH": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    said = ""
    watchdog = threading.Timer(120, process.kill)  # an import that never pauses fails the test
    watchdog.start()
    try:
        for line in process.stderr:
            said += line
            if line.startswith("paused after batch 1"):
                return process, said
    finally:
        watchdog.cancel()
    process.wait()
    pytest.fail(f"the import ended (exit {process.returncode}) without pausing:\n{said}")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_interrupted_import_leaves_whole_batches_and_resumes(stop, country, database_url, sessions):
    # The batch path; an initial load is stopped in the next test.
    env = _importer_env(sessions, database_url, SIJILL_IMPORT_INITIAL_LOAD="false")
    # Stop it once the first batch is committed: a 5,000-household source in batches of 100
    # is then far from done.
    process, said = _start_paused_import(country, env)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    stderr = said + stderr
    assert "Traceback" not in stderr
    if stop == signal.SIGINT:
        assert process.returncode == 130
        assert "run the same command again" in stderr.replace("\n", " ")
    expected = _source_sizes(country, "synth-5")
    imported = _imported_sizes(database_url)
    assert 0 < len(imported) < len(expected), "the import was stopped part way"
    assert all(imported[key] == expected[key] for key in imported), "a household lost members"
    resumed = run(["import", str(country)], env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert _imported_sizes(database_url) == expected
    from sijill.core.db import make_engine

    engine = make_engine(database_url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Person)) == sum(expected.values())
    engine.dispose()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_interrupted_initial_load_keeps_whole_batches_or_nothing(
    stop, country, database_url, sessions
):
    """Ctrl-C during an initial load commits the batches loaded so far, indexes built; a kill
    leaves the registry empty with its schema whole. Either way the same command finishes."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the initial load is PostgreSQL's bulk path")
    env = _importer_env(sessions, database_url)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        indexes = connection.execute(text("SELECT indexdef FROM pg_indexes")).scalars().all()
    # Stop it once its first batch is sent, inside the load's one transaction (the registry is
    # locked until the end, so the test cannot look).
    process, said = _start_paused_import(country, env)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    stderr = said + stderr
    assert "Traceback" not in stderr
    expected = _source_sizes(country, "synth-5")
    imported = _imported_sizes(database_url)
    if stop == signal.SIGINT:
        assert process.returncode == 130
        assert 0 < len(imported) < len(expected), "the import was stopped part way"
        assert all(imported[key] == expected[key] for key in imported), "a household lost members"
    else:
        assert imported == {}
    with engine.connect() as connection:
        after = connection.execute(text("SELECT indexdef FROM pg_indexes")).scalars().all()
    engine.dispose()
    assert sorted(after) == sorted(indexes)
    resumed = run(["import", str(country)], env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert _imported_sizes(database_url) == expected
