"""Every command prints alike: `--output table|json|csv` on all of them, lists as rows, a single
result as one record of named values, so a script can rely on any command's output."""

import csv
import io
import json

import pytest
import typer
from typer.testing import CliRunner

from factories import make_areas, make_user
from sijill.cli import _register_commands
from sijill.cli import app as cli_app
from sijill.core.settings import get_settings
from sijill.security.cli_common import OutputOption
from test_import import household, make_folder, person, valid_national_id

COMMANDS = {
    "synth",
    "db upgrade",
    "areas load",
    "import",
    "demo",
    "login",
    "logout",
    "whoami",
    "users add",
    "users roles",
    "users disable",
    "users enable",
    "users reset",
    "users list",
    "export",
    "audit verify",
    "audit show",
    "keys show",
    "keys add",
    "keys rotate",
    "keys retire",
    "serve",
    "programs explain",
    "programs notices",
}


def _commands(command, path: tuple[str, ...] = ()):
    """Every command below `command` (a group) by its words, `users add`."""
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), command


@pytest.fixture(scope="module")
def root():
    if not cli_app.registered_commands:
        _register_commands()
    return typer.main.get_command(cli_app)


def test_every_command_takes_the_output_option(root):
    commands = dict(_commands(root))
    assert set(commands) >= COMMANDS
    for name, command in commands.items():
        option = next((p for p in command.params if "--output" in p.opts), None)
        assert option is not None, f"`sijill {name}` has no --output"
        assert "-o" in option.opts, name
        # The one shared option, not a look-alike: same help, same choices, same default.
        assert option.help == OutputOption.__metadata__[0].help, name
        assert option.default == "table", name


@pytest.fixture
def cli(root, database_url, sessions, tmp_path, monkeypatch):
    """`sijill ...` in this process as an administrator's service account; the result's
    stdout and stderr apart."""
    make_areas(sessions)
    key = make_user(sessions, "admin1", "administrator", service=True)
    monkeypatch.setenv("SIJILL_DATABASE_URL", database_url)
    monkeypatch.setenv("SIJILL_SERVICE_KEY", f"admin1:{key}")
    monkeypatch.setenv("SIJILL_SESSION_FILE", str(tmp_path / "session.json"))
    get_settings.cache_clear()

    def run(*args: str):
        result = CliRunner().invoke(cli_app, list(args))
        assert result.exit_code == 0, result.output
        return result

    yield run
    get_settings.cache_clear()


def test_whoami_as_json(cli):
    assert cli("whoami").stdout == "admin1 (administrator:national)\n"
    assert json.loads(cli("whoami", "--output", "json").stdout) == {
        "username": "admin1",
        "roles": ["administrator:national"],
    }


def test_users_list_as_json_and_csv(cli):
    cli("users", "add", "karim", "--role", "registrar:SJ0101", "-o", "json")
    users = {row["username"]: row for row in json.loads(cli("users", "list", "-o", "json").stdout)}
    assert users["karim"] == {
        "username": "karim",
        "roles": ["registrar:SJ0101"],
        "state": "active (one-time password)",
    }
    rows = list(csv.reader(io.StringIO(cli("users", "list", "--output", "csv").stdout)))
    assert rows[0] == ["username", "roles", "state"]
    assert ["karim", "registrar:SJ0101", "active (one-time password)"] in rows[1:]


def test_users_add_as_json_gives_the_secret(cli):
    added = json.loads(
        cli("users", "add", "bot", "--role", "registrar", "--service", "-o", "json").stdout
    )
    assert added["username"] == "bot" and added["secret"]
    assert added["service_key"] == f"bot:{added['secret']}"


def test_audit_show_as_json(cli):
    cli("users", "add", "karim", "--role", "registrar:SJ0101")
    records = json.loads(cli("audit", "show", "--output", "json").stdout)
    fields = "seq at actor role action outcome record purpose request_id"
    assert records and list(records[0]) == fields.split()
    assert ("admin1", "users.create") in {(r["actor"], r["action"]) for r in records}
    assert [r["seq"] for r in records] == sorted((r["seq"] for r in records), reverse=True)


def test_import_as_json(cli, tmp_path):
    folder = make_folder(
        tmp_path / "list",
        [household("H1"), household("H2", walls="plastic")],
        [person("P1", "H1", national_id=valid_national_id(1)), person("P2", "H2")],
    )
    result = cli("import", str(folder), "--output", "json")
    report = json.loads(result.stdout)
    assert report["households_added"] == 1 and report["persons_added"] == 1
    assert report["households_present"] == 0 and report["persons_present"] == 0
    assert report["rejected_rows"] >= 1 and report["rejects_path"]
    assert report["interrupted"] is False and report["seconds"] >= 0
    assert "households added" not in result.stderr  # the sentence is for `table`
    again = json.loads(cli("import", str(folder), "-o", "json").stdout)
    assert again["households_added"] == 0 and again["households_present"] == 1
