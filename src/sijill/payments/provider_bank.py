"""Banks: an ISO 20022 pain.001.001.03 credit-transfer file per batch, and the pain.002.001.03
status reports they answer with, both validated against the official schemas."""

import random
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from sijill.core import clock
from sijill.core.errors import InvalidInput
from sijill.core.settings import Settings
from sijill.payments import iso20022
from sijill.payments.models import BANK
from sijill.payments.providers import (
    BatchHeader,
    PaymentLine,
    ReportHeader,
    ResultLine,
    register,
)

FILE_NAME = "pain.001.xml"
PAIN001, PAIN002 = "pain.001.001.03", "pain.002.001.03"
# Reasons a sandbox bank gives for a refused transfer (ISO external status reason codes).
_SANDBOX_REASONS = ("AC01", "AC04", "AC06", "AM05")


@register
class Iso20022Bank:
    name: ClassVar[str] = "iso20022"
    kinds: ClassVar[tuple[str, ...]] = (BANK,)

    def __init__(self, settings: Settings):
        self.settings = settings

    def _debtor(self) -> iso20022.Debtor:
        if not self.settings.payer_iban:
            raise InvalidInput(
                "bank payments need the paying agency's account: set SIJILL_PAYER_IBAN "
                "(and SIJILL_PAYER_NAME, SIJILL_PAYER_BIC)"
            )
        return iso20022.Debtor(
            name=self.settings.payer_name, iban=self.settings.payer_iban,
            bic=self.settings.payer_bic,
        )  # fmt: skip

    def write(self, header: BatchHeader, lines: Iterable[PaymentLine], folder: Path) -> list[str]:
        transfers = (
            iso20022.CreditTransfer(
                end_to_end_id=line.transfer_ref,
                amount_minor=line.amount_minor,
                creditor_name=line.details["holder"],
                iban=line.details["iban"],
                bic=line.details.get("bic") or None,
                remittance=header.remittance,
            )  # fmt: skip
            for line in lines
        )
        iso20022.write_pain001(
            folder / FILE_NAME, message_id=header.reference, created_at=header.created_at,
            debtor=self._debtor(), currency=header.currency, minor_units=header.minor_units,
            execution_date=header.value_date, transfers=transfers, count=header.payments,
            total_minor=header.total_minor, payment_info_id=header.reference,
        )  # fmt: skip
        self.validate(folder)
        return [FILE_NAME]

    def validate(self, folder: Path) -> None:
        iso20022.validate_file(folder / FILE_NAME, PAIN001)

    def read_report(self, path: Path) -> tuple[ReportHeader, Iterator[ResultLine]]:
        report, lines = iso20022.read_pain002(path)
        header = ReportHeader(
            message_id=report.message_id,
            original_message_id=report.original_message_id,
            rejects_whole_file=report.group_status == "RJCT",
            reason="RJCT" if report.group_status == "RJCT" else None,
        )

        def results() -> Iterator[ResultLine]:
            for number, line in enumerate(lines, start=1):
                yield ResultLine(
                    line=number, reference=line.end_to_end_id,
                    outcome=iso20022.final_outcome(line.status), status=line.status,
                    reason=line.reason,
                )  # fmt: skip

        return header, results()

    def answer(self, folder: Path, out: Path, *, fail_one_in: int, seed: int) -> Path:
        """The pain.002 a bank would send back: each transfer settled (ACSC), or one in
        `fail_one_in` refused with a reason."""
        chooser = random.Random(seed)
        message_id = _message_id(folder)

        def statuses() -> Iterator[iso20022.StatusLine]:
            for reference in _end_to_end_ids(folder / FILE_NAME):
                if fail_one_in and chooser.randrange(fail_one_in) == 0:
                    reason = chooser.choice(_SANDBOX_REASONS)
                    yield iso20022.StatusLine(reference, "RJCT", reason)
                else:
                    yield iso20022.StatusLine(reference, "ACSC", None)

        iso20022.write_pain002(
            out, message_id=f"ANS-{message_id}"[:35], created_at=_now(),
            original_message_id=message_id, lines=statuses(),
        )  # fmt: skip
        return out


def _now() -> datetime:
    return clock.utcnow()


def _message_id(folder: Path) -> str:
    from lxml import etree

    for _, element in etree.iterparse(str(folder / FILE_NAME), events=("end",)):
        if etree.QName(element).localname == "MsgId":
            return element.text or ""
    raise InvalidInput("the payment file has no message ID")


def _end_to_end_ids(path: Path) -> Iterator[str]:
    from lxml import etree

    for _, element in etree.iterparse(str(path), events=("end",)):
        if etree.QName(element).localname == "EndToEndId":
            yield element.text or ""
        elif etree.QName(element).localname == "CdtTrfTxInf":
            element.clear()
            while element.getprevious() is not None:
                del element.getparent()[0]
