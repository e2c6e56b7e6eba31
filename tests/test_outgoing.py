"""What Sijill prints or writes for a spreadsheet cannot act there: no terminal escapes, no
reordering, no formula (`core.outgoing`, through `core.cli_output` and the rejects file)."""

import csv
import io
import json

import pytest
import typer

from sijill.core.cli_output import Output, emit, emit_one, fail
from sijill.core.outgoing import for_terminal, json_for_terminal, spreadsheet_cell

ACTING = ["\x1b", "\x07", "\r", "\x08", "\x9b", "\u202e", "\u2066", "\u200b", "\u2028", "\ufeff"]
STORED = {
    "name": "Ahmad\x1b[2J\x1b]0;owned\x07\u202edemhA\r\nFatima",
    "note": '=HYPERLINK("http://x","click")',
    "count": -5,
    "phone": "+962791234567",
    "link": "[link=http://x]click[/link]",
}


def assert_inert(text: str) -> None:
    for char in ACTING:
        assert char not in text, repr(char)


@pytest.mark.parametrize("char", ACTING)
def test_for_terminal_writes_acting_characters_visibly(char):
    shown = for_terminal(f"a{char}b")
    assert_inert(shown)
    assert shown.startswith("a\\") and shown.endswith("b")


def test_for_terminal_keeps_text_and_lines_when_asked():
    assert for_terminal("محمد\u200cرضا Zoé") == "محمد\u200cرضا Zoé"
    assert for_terminal("one\ntwo") == "one\\x0atwo"
    assert for_terminal("one\ntwo\r", newlines=True) == "one\ntwo\\x0d"


def test_json_for_terminal_is_the_same_data():
    dumped = json.dumps(STORED, ensure_ascii=False)
    safe = json_for_terminal(dumped + json.dumps(["\U000e0041"], ensure_ascii=False))
    assert_inert(safe)
    assert "\U000e0041" not in safe
    assert json.loads(json_for_terminal(dumped)) == STORED


@pytest.mark.parametrize(
    "cell,safe",
    [
        ("=1+1", "'=1+1"),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-5", "-5"),
        ("+962791234567", "+962791234567"),
        ("-12.5", "-12.5"),
        ("Ahmad", "Ahmad"),
        ("", ""),
    ],
)
def test_spreadsheet_cell(cell, safe):
    assert spreadsheet_cell(cell) == safe


def test_emit_table_json_and_csv_print_stored_data_inertly(capsys):
    columns = list(STORED)
    emit([STORED], columns, Output.table)
    table = capsys.readouterr().out
    assert_inert(table)
    assert "[link=http://x]" in table  # shown as written, not made a link

    emit([STORED], columns, Output.json)
    printed = capsys.readouterr().out
    assert_inert(printed)
    assert json.loads(printed) == [STORED]

    emit([STORED], columns, Output.csv)
    printed = capsys.readouterr().out
    assert_inert(printed.replace("\r\n", ""))  # the csv module's own line ends
    header, row = list(csv.reader(io.StringIO(printed)))
    cells = dict(zip(header, row, strict=True))
    assert cells["note"].startswith("'=")
    assert cells["count"] == "-5" and cells["phone"] == "+962791234567"
    assert cells["name"].startswith("Ahmad\\x1b[2J")


def test_messages_echoes_and_errors_are_inert(capsys):
    emit_one({}, Output.table, message=f"Roles of {STORED['name']} replaced.", echo=STORED["name"])
    printed = capsys.readouterr()
    assert_inert(printed.out)
    assert_inert(printed.err)
    assert isinstance(fail(STORED["name"]), typer.Exit)
    assert_inert(capsys.readouterr().err)
