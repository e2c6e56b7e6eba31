"""Payment providers behind one interface.

A provider turns a batch into the files it accepts (an ISO 20022 pain.001 for a bank, a bulk
file for a mobile-money operator, a pay-list for cash agents) and reads back what it reports
(pain.002, a result file). Which provider pays which kind of instrument is a setting
(`SIJILL_PAYMENT_PROVIDERS`); adding one is a class with the methods of `Provider`, registered
in `PROVIDERS` under its name.

A batch's files live in their own folder; the batch's hash (`folder_digest`) covers every file
in it, so a file changed, added or removed between approval and release is refused.
"""

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import ClassVar, Protocol

from sijill.core.errors import InvalidInput
from sijill.core.settings import Settings

# What a result line can say about a payment: the three final outcomes, or not final yet.
PAID, FAILED, RETURNED = "paid", "failed", "returned"
OUTCOMES = (PAID, FAILED, RETURNED)


@dataclass(frozen=True)
class BatchHeader:
    reference: str  # the message ID: unique, <= 35 characters
    provider: str
    currency: str
    minor_units: int
    value_date: date
    created_at: datetime
    payments: int  # lines in the file
    total_minor: int
    remittance: str  # what the beneficiary's statement says, e.g. "SIJILL 2026-11"
    area: str | None  # the governorate's code


@dataclass(frozen=True)
class PaymentLine:
    """One payment in a file: consolidated instructions are one line."""

    transfer_ref: str  # the end-to-end ID a report answers with
    amount_minor: int
    registry_id: str  # the household's public ID, for an agent's pay-list
    details: dict[str, str]  # the instrument's decrypted details (holder, iban, phone ...)


@dataclass(frozen=True)
class ResultLine:
    line: int
    reference: str  # the transfer_ref it answers
    outcome: str | None  # paid, failed, returned; None: not final yet
    status: str  # as the provider wrote it (ACSC, RJCT, paid ...)
    reason: str | None = None


@dataclass(frozen=True)
class ReportHeader:
    message_id: str | None
    original_message_id: str | None = None  # the batch reference it answers, if it says
    # A report that rejects a whole file without a line per payment (pain.002 group status).
    rejects_whole_file: bool = False
    reason: str | None = None


@dataclass
class WrittenBatch:
    files: list[str] = field(default_factory=list)  # names inside the batch folder
    digest: str = ""


class Provider(Protocol):
    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]  # instrument kinds it can pay

    def write(self, header: BatchHeader, lines: Iterable[PaymentLine], folder: Path) -> list[str]:
        """Write the batch's files into `folder` (each whole or not at all) and validate them;
        return their names."""
        ...

    def validate(self, folder: Path) -> None:
        """Check the batch's files again (at approval and release); raise InvalidInput."""
        ...

    def read_report(self, path: Path) -> tuple[ReportHeader, Iterator[ResultLine]]:
        """Read a report the provider sent back, refusing a file that is not one."""
        ...

    def answer(self, folder: Path, out: Path, *, fail_one_in: int, seed: int) -> Path:
        """Write the report this provider would send for the batch in `folder` (one payment
        in `fail_one_in`, chosen by `seed`, failed): the sandbox used by the demo, the
        tests and the benchmarks, never by a real payment."""
        ...


PROVIDERS: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    PROVIDERS[cls.name] = cls
    return cls


def provider_for(settings: Settings, kind: str) -> Provider:
    """The provider that pays this kind of instrument."""
    _load_builtin()
    name = settings.payment_providers.get(kind)
    if name is None:
        raise InvalidInput(f"no provider pays {kind} instruments: set SIJILL_PAYMENT_PROVIDERS")
    return provider_named(settings, name)


def provider_named(settings: Settings, name: str) -> Provider:
    _load_builtin()
    cls = PROVIDERS.get(name)
    if cls is None:
        raise InvalidInput(
            f"unknown payment provider {name!r}: one of {', '.join(sorted(PROVIDERS))}"
        )
    return cls(settings)  # type: ignore[call-arg]


def provider_names() -> list[str]:
    """The providers a report may come from: a form's choices."""
    _load_builtin()
    return sorted(PROVIDERS)


def _load_builtin() -> None:
    # Imported here, not at the top: each module registers itself and imports this one.
    from sijill.payments import provider_bank, provider_files  # noqa: F401


def folder_digest(folder: Path) -> str:
    """SHA-256 over the names and contents of every file in a batch's folder, in name order."""
    if not folder.is_dir():
        raise InvalidInput(f"the batch's files are missing ({folder.name})")
    total = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        total.update(f"{path.name}\0{digest.hexdigest()}\n".encode())
    return total.hexdigest()
