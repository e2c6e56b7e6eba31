"""ISO 20022 payment files: pain.001.001.03 credit transfers out to a bank, pain.002.001.03
status reports back, both written and read one transaction at a time so that a million payments
take flat memory, and both checked against the official XSDs (`sijill.payments.xsd`).

A pure file format: no database. Money is integer minor units end to end; an amount becomes a
decimal string only as it is written. Errors say where, never which value: values are IBANs
and names."""

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

from lxml import etree

from sijill.core.errors import InvalidInput
from sijill.payments.amounts import MAX_MINOR_UNITS, format_minor
from sijill.payments.xml_writer import XmlWriter, write_xml_file
from sijill.payments.xsd import PAIN001, PAIN002, StreamedValidation, namespace
from sijill.payments.xsd import validate_file as validate_file  # part of this module's API

_END_TO_END_ID = re.compile(r"[A-Za-z0-9-]{1,35}")
_REASON_CODE = re.compile(r"[A-Z0-9]{1,4}")
_TX_STATUSES = frozenset({"ACTC", "RJCT", "PDNG", "ACCP", "ACSP", "ACSC", "ACWC"})
_GROUP_STATUSES = _TX_STATUSES | {"RCVD", "PART"}


@dataclass(frozen=True)
class Debtor:
    """The paying agency's account, from settings."""

    name: str
    iban: str
    bic: str | None


@dataclass(frozen=True)
class CreditTransfer:
    end_to_end_id: str  # 1 to 35 of [A-Za-z0-9-], unique in its file; pain.002 echoes it back
    amount_minor: int  # integer minor units, > 0
    creditor_name: str  # the account holder; cut to 70 characters
    iban: str  # validated upstream
    bic: str | None
    remittance: str  # unstructured, cut to 140 characters; empty for none


@dataclass(frozen=True)
class StatusLine:
    end_to_end_id: str  # OrgnlEndToEndId
    status: str  # TxSts: ACSC, ACCP, ACSP, ACTC, ACWC, PDNG, RJCT
    reason: str | None  # StsRsnInf/Rsn: its ISO code (AC01 ...) or proprietary text


@dataclass(frozen=True)
class StatusReport:
    message_id: str
    original_message_id: str
    # RJCT with no transaction lines: every transaction of the original message was rejected.
    group_status: str | None


def final_outcome(status: str) -> Literal["paid", "failed"] | None:
    """ACSC is settled on the creditor's account and RJCT refused; anything else (accepted,
    pending ...) may still change, so it is no outcome yet."""
    return {"ACSC": "paid", "RJCT": "failed"}.get(status)


def write_pain001(
    path: Path,
    *,
    message_id: str,
    created_at: datetime,
    debtor: Debtor,
    currency: str,
    minor_units: int,
    execution_date: date,
    transfers: Iterable[CreditTransfer],
    count: int,
    total_minor: int,
    payment_info_id: str,
) -> str:
    """Write a CustomerCreditTransferInitiation (one payment information block, PmtMtd TRF,
    ChrgBr SLEV) one transfer at a time and return the file's SHA-256. `count` and
    `total_minor` are written in the headers before `transfers` is read: if it yields another
    count or sum the file is refused and nothing is left behind. End-to-end ids must be unique
    in the file; the caller guarantees it, as checking here would hold every id in memory."""
    if not 0 <= minor_units <= MAX_MINOR_UNITS:
        raise InvalidInput(f"A currency has 0 to {MAX_MINOR_UNITS} minor units")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise InvalidInput("The currency must be an ISO 4217 code of three capital letters")
    if count < 1 or total_minor < 1:
        raise InvalidInput("A payment file needs at least one transfer of a positive amount")

    def body(out: XmlWriter) -> None:
        with out.element("Document", nsmap={None: out.ns}), out.element("CstmrCdtTrfInitn"):
            out.newline()
            with out.element("GrpHdr"):
                out.leaf("MsgId", message_id)
                out.leaf("CreDtTm", created_at.isoformat(timespec="seconds"))
                out.leaf("NbOfTxs", str(count))
                out.leaf("CtrlSum", format_minor(total_minor, minor_units))
                out.leaf(("InitgPty", "Nm"), _clip(debtor.name, 70))
            out.newline()
            with out.element("PmtInf"):
                out.leaf("PmtInfId", payment_info_id)
                out.leaf("PmtMtd", "TRF")
                out.leaf("NbOfTxs", str(count))
                out.leaf("CtrlSum", format_minor(total_minor, minor_units))
                out.leaf("ReqdExctnDt", execution_date.isoformat())
                out.leaf(("Dbtr", "Nm"), _clip(debtor.name, 70))
                with out.element("DbtrAcct"):
                    out.leaf(("Id", "IBAN"), debtor.iban)
                    out.leaf("Ccy", currency)
                # The debtor's agent is mandatory: without a BIC, the customary marker.
                if debtor.bic:
                    out.leaf(("DbtrAgt", "FinInstnId", "BIC"), debtor.bic)
                else:
                    out.leaf(("DbtrAgt", "FinInstnId", "Othr", "Id"), "NOTPROVIDED")
                out.leaf("ChrgBr", "SLEV")
                out.newline()
                seen, total, pending = 0, 0, []
                # The transfers go straight to the file, between what lxml wrote before and
                # after them (flushed first, so nothing of it is held back).
                out.xf.flush()
                for transfer in transfers:
                    seen += 1
                    if seen > count:
                        raise InvalidInput(f"The transfers are more than the {count} announced")
                    _check_transfer(transfer, seen)
                    total += transfer.amount_minor
                    amount = format_minor(transfer.amount_minor, minor_units)
                    pending.append(_transfer_xml(transfer, amount, currency, seen))
                    if len(pending) == _RAW_CHUNK:
                        out.raw.write("".join(pending).encode())
                        pending.clear()
                out.raw.write("".join(pending).encode())
                if seen != count or total != total_minor:
                    raise InvalidInput(
                        f"The transfers ({seen}, summing {format_minor(total, minor_units)}) "
                        f"differ from the {count} summing "
                        f"{format_minor(total_minor, minor_units)} announced"
                    )

    return write_xml_file(path, namespace(PAIN001), body)


def _check_transfer(transfer: CreditTransfer, position: int) -> None:
    # A bool is an int and a float can look like one: only a true int is money here.
    if type(transfer.amount_minor) is not int or transfer.amount_minor <= 0:
        raise InvalidInput(f"Transfer {position}: the amount must be positive integer minor units")
    if not _END_TO_END_ID.fullmatch(transfer.end_to_end_id):
        raise InvalidInput(
            f"Transfer {position}: the end-to-end id must be 1 to 35 letters, digits or hyphens"
        )


# Characters XML 1.0 cannot carry (lxml refused them when it wrote each element).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_RAW_CHUNK = 2_000  # transfers per write


def _transfer_xml(transfer: CreditTransfer, amount: str, currency: str, position: int) -> str:
    """One CdtTrfTxInf as text, escaped here: formatting a string is several times faster
    than lxml's element calls, and this runs a million times per file. The whole file is
    validated against the XSD after it is written, so a slip here cannot pass unseen."""
    name = _clip(transfer.creditor_name, 70)
    if not name:
        raise InvalidInput(f"Transfer {position}: the creditor's name is empty")
    remittance = _clip(transfer.remittance, 140)
    texts = (name, remittance, transfer.iban, transfer.bic or "")
    if any(_NOT_XML.search(text) for text in texts):
        raise InvalidInput(f"Transfer {position}: a text holds characters XML cannot carry")
    agent = (
        f"<CdtrAgt><FinInstnId><BIC>{escape(transfer.bic)}</BIC></FinInstnId></CdtrAgt>"
        if transfer.bic
        else ""
    )
    information = f"<RmtInf><Ustrd>{escape(remittance)}</Ustrd></RmtInf>" if remittance else ""
    return (
        f"<CdtTrfTxInf><PmtId><EndToEndId>{transfer.end_to_end_id}</EndToEndId></PmtId>"
        f'<Amt><InstdAmt Ccy="{currency}">{amount}</InstdAmt></Amt>{agent}'
        f"<Cdtr><Nm>{escape(name)}</Nm></Cdtr>"
        f"<CdtrAcct><Id><IBAN>{escape(transfer.iban)}</IBAN></Id></CdtrAcct>{information}"
        "</CdtTrfTxInf>\n"
    )


def _clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters without parting a letter from its marks (Arabic
    vowels, Latin accents): a cut between them would leave a mark on nothing."""
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) <= limit:
        return text
    end = limit
    while end > 0 and unicodedata.combining(text[end]):
        end -= 1
    return text[:end].rstrip()


def write_pain002(
    path: Path,
    *,
    message_id: str,
    created_at: datetime,
    original_message_id: str,
    lines: Iterable[StatusLine],
    group_status: str | None = None,
    original_payment_info_id: str | None = None,
) -> str:
    """Write a CustomerPaymentStatusReport on a pain.001, one line at a time, and return its
    SHA-256: what the sandbox bank answers. The lines go in one block answering the original
    payment information `original_payment_info_id` (the original message id if not given)."""
    if group_status is not None and group_status not in _GROUP_STATUSES:
        raise InvalidInput("The group status is not an ISO 20022 group status code")

    def body(out: XmlWriter) -> None:
        with out.element("Document", nsmap={None: out.ns}), out.element("CstmrPmtStsRpt"):
            out.newline()
            with out.element("GrpHdr"):
                out.leaf("MsgId", message_id)
                out.leaf("CreDtTm", created_at.isoformat(timespec="seconds"))
            out.newline()
            with out.element("OrgnlGrpInfAndSts"):
                out.leaf("OrgnlMsgId", original_message_id)
                out.leaf("OrgnlMsgNmId", PAIN001)
                if group_status:
                    out.leaf("GrpSts", group_status)
            out.newline()
            remaining = iter(lines)
            line = next(remaining, None)
            if line is None:
                return
            with out.element("OrgnlPmtInfAndSts"):
                out.leaf("OrgnlPmtInfId", original_payment_info_id or original_message_id)
                out.newline()
                position = 1
                while line is not None:
                    _write_status_line(out, line, position)
                    line = next(remaining, None)
                    position += 1

    return write_xml_file(path, namespace(PAIN002), body)


def _write_status_line(out: XmlWriter, line: StatusLine, position: int) -> None:
    if line.status not in _TX_STATUSES:
        raise InvalidInput(f"Status line {position}: not an ISO 20022 transaction status code")
    if not _END_TO_END_ID.fullmatch(line.end_to_end_id):
        raise InvalidInput(
            f"Status line {position}: the end-to-end id must be 1 to 35 letters, digits or hyphens"
        )
    with out.element("TxInfAndSts"):
        out.leaf("OrgnlEndToEndId", line.end_to_end_id)
        out.leaf("TxSts", line.status)
        if line.reason and _REASON_CODE.fullmatch(line.reason):
            out.leaf(("StsRsnInf", "Rsn", "Cd"), line.reason)
        elif line.reason and len(line.reason) <= 35:
            out.leaf(("StsRsnInf", "Rsn", "Prtry"), line.reason)
        elif line.reason:
            raise InvalidInput(f"Status line {position}: the reason is longer than 35 characters")
    out.newline()


def read_pain002(path: Path) -> tuple[StatusReport, Iterator[StatusLine]]:
    """The report's header, and its transaction lines as they are read. The headers are valid
    on return; a line is yielded once its batch is valid, so an invalid file raises
    InvalidInput before or while the lines are read. A line without its own status takes its
    block's (PmtInfSts), else the group's."""
    validation = StreamedValidation(path, PAIN002)
    transactions = validation.transactions()
    first = next(transactions, None)
    root = validation.root
    assert root is not None  # set once the document is found valid so far
    ns = {"p": namespace(PAIN002)}
    group = root.find("p:CstmrPmtStsRpt/p:OrgnlGrpInfAndSts", ns)
    group_status = _text(group.find("p:GrpSts", ns))
    report = StatusReport(
        message_id=_text(root.find("p:CstmrPmtStsRpt/p:GrpHdr/p:MsgId", ns)) or "",
        original_message_id=_text(group.find("p:OrgnlMsgId", ns)) or "",
        group_status=group_status or _status_of_blocks(root, ns, has_lines=first is not None),
    )

    def lines() -> Iterator[StatusLine]:
        if first is None:
            return
        yield _status_line(first, group_status)
        for transaction in transactions:
            yield _status_line(transaction, group_status)

    return report, lines()


def _status_of_blocks(root, ns: dict[str, str], *, has_lines: bool) -> str | None:
    """With no group status and no line at all, the status its blocks share (a bank may reject
    a whole payment information block of ours, which is the whole file)."""
    if has_lines:
        return None
    statuses = {
        _text(status)
        for status in root.iterfind("p:CstmrPmtStsRpt/p:OrgnlPmtInfAndSts/p:PmtInfSts", ns)
    }
    return statuses.pop() if len(statuses) == 1 else None


_NS002 = namespace(PAIN002)
_E2E, _TX_STS, _RSN_INF, _RSN, _PMT_INF_STS = (
    f"{{{_NS002}}}{name}" for name in ("OrgnlEndToEndId", "TxSts", "StsRsnInf", "Rsn", "PmtInfSts")
)


def _status_line(transaction: etree._Element, group_status: str | None) -> StatusLine:
    end_to_end_id = status = reason = None
    for child in transaction:
        if child.tag == _E2E:
            end_to_end_id = _text(child)
        elif child.tag == _TX_STS:
            status = _text(child)
        elif child.tag == _RSN_INF and reason is None:
            cause = child.find(_RSN)
            reason = _text(cause[0]) if cause is not None else None
    if status is None:
        status = _text(transaction.getparent().find(_PMT_INF_STS)) or group_status
    line = transaction.sourceline
    if not end_to_end_id:
        raise InvalidInput(f"{PAIN002} file, line {line}: a status line has no OrgnlEndToEndId")
    if not status:
        raise InvalidInput(f"{PAIN002} file, line {line}: a status line has no status")
    return StatusLine(end_to_end_id, status, reason)


def _text(element: etree._Element | None) -> str | None:
    return element.text.strip() if element is not None and element.text else None
