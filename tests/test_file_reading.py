"""The one file-reading layer (sijill.core.files), fuzzed: whatever the bytes, reading ends in
rows and rejects or in one UnreadableFile, never another exception; every malformed line is a
reject with its line number; every good line comes through with its own.

Bounded for `make test`; SIJILL_FUZZ_EXAMPLES=2000 .venv/bin/pytest tests/test_file_reading.py
runs a longer search."""

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from sijill.core.files import UnreadableFile, read_json, read_table, read_yaml
from sijill.core.files.contract import MAX_FIELD_CHARS

EXAMPLES = int(os.environ.get("SIJILL_FUZZ_EXAMPLES", "40"))
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Text of good fields: letters (Arabic and Latin), digits, and CSV's own troublemakers.
TEXT = st.text(alphabet=st.sampled_from('abcXYZ019 أحمدعلي,"\n\r;'), max_size=12)


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


@st.composite
def csv_files(draw):
    """(bytes, good rows by line, rejected lines by reason) of a CSV with malformed lines."""
    width = draw(st.integers(1, 4))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    bom = draw(st.booleans())
    lines = [",".join(f"c{i}" for i in range(width)).encode()]
    line = 2
    good: dict[int, tuple] = {}
    bad: dict[int, str] = {}
    for kind in draw(
        st.lists(
            st.sampled_from(
                ["good"] * 4 + ["short", "long", "nul", "bytes", "quote", "blank", "huge"]
            ),
            max_size=25,
        )
    ):
        fields = draw(st.lists(TEXT, min_size=width, max_size=width))
        if kind == "good":
            if all(f == "" for f in fields):
                fields[0] = "x"
            text = ",".join(_quoted(f) for f in fields)
            good[line] = tuple(f or None for f in fields)
            lines.append(text.encode())
            line += 1 + _breaks(text)
            continue
        if kind == "blank":
            lines.append(b"")
        elif kind in ("short", "long") and (width > 1 or kind == "long"):
            count = width - 1 if kind == "short" else width + draw(st.integers(1, 3))
            lines.append(",".join(["v"] * count).encode())
            bad[line] = "field_count"
        elif kind == "nul":
            lines.append(",".join(["v"] * (width - 1) + ["Zubaida\x00"]).encode())
            bad[line] = "nul"
        elif kind == "bytes":
            lines.append(b",".join([b"v"] * (width - 1) + [b"Zubaid\xe9"]))
            bad[line] = "not_utf8"
        elif kind == "quote":
            # A quote left open swallows the lines after it; they are read again only when the
            # record it made cannot fit, so it is opened after the last field.
            lines.append(",".join(["v"] * width).encode() + b',"Zubaida')
            bad[line] = "open_quote"  # or field_count: on the last line it opens nothing
        elif kind == "huge":
            lines.append(",".join(["v"] * (width - 1) + ["x" * (MAX_FIELD_CHARS + 1)]).encode())
            bad[line] = "field_too_long"
        else:
            continue
        line += 1
    data = newline.encode().join(lines) + newline.encode()
    return (b"\xef\xbb\xbf" if bom else b"") + data, good, bad


def _read(path: Path, batch_rows: int = 3):
    rows, rejects = [], []
    for batch in read_table(path, batch_rows):
        assert batch.rows.height <= batch_rows
        rows += batch.rows.rows()
        rejects += batch.rejects.select("row", "reason", "message").rows()
    return rows, rejects


@fuzz
@given(csv_files())
def test_malformed_lines_are_rejects_with_their_line_and_good_lines_all_come_through(case):
    data, good, bad = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "list.csv"
        path.write_bytes(data)
        try:
            rows, rejects = _read(path)
        except UnreadableFile as error:
            # Only a file whose every line is undecodable may be refused as a whole.
            assert "UTF-8" in str(error) and not good, error
            return
    by_line = {row[-1]: row[:-1] for row in rows}
    assert [row[-1] for row in rows] == sorted(by_line), "rows come in the file's order"
    assert by_line == good
    found = {line: reason for line, reason, _ in rejects}
    assert found.keys() == bad.keys()
    for line, reason in found.items():
        assert reason == bad[line] or (bad[line], reason) == ("open_quote", "field_count")
    for _, _, said in rejects:
        assert "Zubaid" not in said and "\x00" not in said


@fuzz
@given(st.binary(max_size=400), st.sampled_from([".csv", ".xlsx", ".parquet", ".yaml", ".json"]))
def test_any_bytes_end_in_rows_or_one_clear_error(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"file{suffix}"
        path.write_bytes(data)
        try:
            if suffix == ".yaml":
                read_yaml(path)
            elif suffix == ".json":
                read_json(path)
            else:
                _read(path)
        except UnreadableFile as error:
            message = str(error)
            assert message.startswith(f"{path.name}: ") and "\n" not in message


VALUES = st.one_of(
    st.none(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.booleans(),
    st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)),
    st.text(max_size=20),
)


@fuzz
@given(st.lists(st.lists(VALUES, min_size=1, max_size=4), max_size=12))
def test_spreadsheet_cells_of_any_type_are_read_as_text_row_by_row(cells):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "list.xlsx"
        book = Workbook()
        sheet = book.active
        sheet.append(["a", "b", "c", "d"])
        for row in cells:
            try:
                sheet.append(row)
            except Exception:  # openpyxl refuses some text (control characters): not a file
                return
        book.save(path)
        rows, rejects = _read(path, 5)
    assert not rejects or all(r[1] in ("nul", "field_too_long") for r in rejects)
    assert all(isinstance(v, str) or v is None for row in rows for v in row[:-1])
    assert all(2 <= row[-1] <= len(cells) + 1 for row in rows)


@pytest.mark.parametrize(
    "column",
    [
        pl.Series("x", [{"a": 1}, None], dtype=pl.Struct({"a": pl.Int64})),
        pl.Series("x", [b"ok", b"\xff"], dtype=pl.Binary),
        pl.Series("x", [dt.time(1, 2), None]),
        pl.Series("x", [1.5, float("nan")]),
    ],
    ids=["struct", "binary", "time", "nan"],
)
def test_parquet_columns_of_any_type_are_text_or_one_clear_error(tmp_path, column):
    path = tmp_path / "list.parquet"
    pl.DataFrame([column, pl.Series("key", ["H1", "H2"])]).write_parquet(path)
    try:
        rows, _ = _read(path)
    except UnreadableFile as error:
        assert str(error).startswith("list.parquet: ")
    else:
        assert [row[-1] for row in rows] == [1, 2]


def test_line_numbers_count_line_breaks_inside_quoted_fields(tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(
        b'key,address\r\nH1,"Street 1\r\nBlock 2"\r\nH2\r\nH3,"a\nb\nc"\r\nH4,ok\r\nH5,"x\x00"\r\n'
    )
    rows, rejects = _read(path)
    assert [(row[0], row[-1]) for row in rows] == [("H1", 2), ("H3", 5), ("H4", 8)]
    assert [(line, reason) for line, reason, _ in rejects] == [(4, "field_count"), (9, "nul")]


def test_a_quote_left_open_rejects_its_line_and_the_lines_after_are_read(tmp_path):
    path = tmp_path / "list.csv"
    # The quote opens a third field: the record it makes cannot fit, whatever it swallows.
    path.write_bytes(b'key,name\nH1,a\nH2,b,"c\nH3,d\nH4,e\n')
    rows, rejects = _read(path)
    assert [(row[0], row[-1]) for row in rows] == [("H1", 2), ("H3", 4), ("H4", 5)]
    assert [(line, reason) for line, reason, _ in rejects] == [(3, "open_quote")]


def test_a_line_that_is_not_utf8_and_short_is_one_reject_and_nothing_on_stderr(tmp_path, capfd):
    path = tmp_path / "list.csv"
    path.write_bytes(b"key,name\nH1,a\nH2\xff\nH3,b\n")
    rows, rejects = _read(path)
    assert [(row[0], row[-1]) for row in rows] == [("H1", 2), ("H3", 4)]
    assert [(line, reason) for line, reason, _ in rejects] == [(3, "field_count")]
    said = capfd.readouterr()
    assert said.out == "" and said.err == ""


@pytest.mark.parametrize(
    "name,content,problem",
    [
        ("list.csv", b"", "the file is empty"),
        ("list.csv", "a,b\n1,2\n".encode("utf-16"), "not UTF-8 text"),
        ("list.csv", "a,b\nمحمد,1\nعلي,2\n".encode("cp1256"), "not UTF-8 text"),
        ("list.csv", b"PK\x03\x04rest", "not CSV text"),
        ("list.xlsx", b"a,b\n1,2\n", "not an XLSX file"),
        ("list.parquet", b"PAR1 nothing", "cannot be read as Parquet"),
        ("list.txt", b"a,b\n", "cannot read '.txt' files"),
        ("missing.csv", None, "no such file"),
        ("map.yaml", b"a: [1,\n", "is not valid YAML (line 2)"),
        ("areas.json", b'{"a": \n', "is not valid JSON (line 2)"),
    ],
)
def test_a_file_that_cannot_be_read_is_one_line_naming_it(tmp_path, name, content, problem):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UnreadableFile) as raised:
        if name.endswith(".yaml"):
            read_yaml(path)
        elif name.endswith(".json"):
            read_json(path)
        else:
            _read(path)
    message = str(raised.value)
    assert message.startswith(f"{name}: ") and problem in message and "\n" not in message
    assert "محمد" not in message


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    import zipfile

    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (200 << 20))
    with pytest.raises(UnreadableFile, match="ZIP bomb"):
        _read(path)


def test_documents_are_read_with_the_same_contract(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("values:\n  nationality: {UNK: null}\n", encoding="utf-8")
    assert read_yaml(path) == {"values": {"nationality": {"UNK": None}}}
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"features": []}), encoding="utf-8")
    assert read_json(path) == {"features": []}
