"""Cash pay-lists: what an agent or a post office pays out over the counter, and signs for.

A batch is one CSV for the machines (`paylist.csv`, the batch CSV of `batch_files.py`, one line
per payment sorted by pick-up point then reference) and PDFs to print (points numbered in the
CSV's order), each line with an empty box for the beneficiary's signature.

A point's lines make one sheet (headed by the point, kept on one page where it fits, ruled off
from the next), or several sheets of at most `PDF_LINES` lines each for a busy point.
Consecutive sheets go into one PDF up to `PDF_LINES` lines in all, and each PDF is named after
its first sheet (`paylist-<point>-<part>.pdf`): the stack an officer prints and cuts counter by
counter. WeasyPrint lays a whole document out in memory before writing it, so one PDF for a
governorate's 100,000 lines would take gigabytes and minutes, and a file or a page per point
would make a thousand small points a thousand of them. It costs ~10-25 ms a line on this
project's machines, whatever the layout. The lines are sorted in memory (a cash batch is one
governorate's, typically under 100,000 lines).

Names may be Arabic or Latin in one list: each is its own bidirectional run (`<bdi>`,
`dir="auto"`), so a Latin name in an Arabic page, or the reverse, keeps its order; the page
follows the `language` setting, and the references, IDs and amounts are left to right.
"""

from collections.abc import Iterable, Iterator
from functools import cache
from itertools import groupby
from pathlib import Path
from typing import ClassVar

from jinja2 import Environment, PackageLoader, select_autoescape

from sijill.core.errors import InvalidInput, SijillError
from sijill.core.i18n import N_, direction, gettext
from sijill.core.settings import Settings
from sijill.payments.amounts import format_minor
from sijill.payments.batch_files import (
    LineCheck,
    checked_amount,
    detail,
    prepare_folder,
    read_batch_csv,
    refuse_unfinished,
    whole_file,
    write_batch_csv,
)
from sijill.payments.providers import (
    FAILED,
    PAID,
    RETURNED,
    BatchHeader,
    PaymentLine,
    ReportHeader,
    ResultLine,
    register,
)
from sijill.payments.result_files import read_results, references_of, write_answer

TITLE = N_("Cash pay-list")
POINT = N_("Pick-up point")
BATCH = N_("Batch")
VALUE_DATE = N_("Payable from")
PART = N_("Sheet {part} of {parts} for this point")
REFERENCE = N_("Reference")
REGISTRY_ID = N_("Registry ID")
HOLDER = N_("Beneficiary")
AMOUNT = N_("Amount")
SIGNATURE = N_("Signature")
TOTAL = N_("Total of this sheet: {count} payments")

_AGENT_STATUSES: dict[str, str | None] = {
    "collected": PAID,
    "not_collected": RETURNED,  # the money came back unclaimed
    "refused": FAILED,
}

Line = tuple[str, str, str, str, int]  # point, reference, registry ID, holder, amount
Sheet = tuple[int, str, int, int, list[Line]]  # point number, point, part, parts, lines


class PdfUnavailable(SijillError):
    status = 500
    title = N_("PDF output unavailable")


@register
class CashAgent:
    name: ClassVar[str] = "cash_agent"
    kinds: ClassVar[tuple[str, ...]] = ("cash",)
    COLUMNS = ("point", "reference", "registry_id", "holder")
    FILE = "paylist.csv"
    PDF_LINES = 400  # about 12 pages a sheet set
    UNCOLLECTED = ("NOT_COLLECTED_BY_CLOSING", "BENEFICIARY_ABSENT", "NO_IDENTITY_DOCUMENT")

    def __init__(self, settings: Settings):
        self.language = settings.language

    def write(self, header: BatchHeader, lines: Iterable[PaymentLine], folder: Path) -> list[str]:
        html = _pdf_writer()
        prepare_folder(folder)
        for stale in folder.glob("paylist-*.pdf"):
            stale.unlink()
        ordered = sorted(_lines(lines))
        write_batch_csv(
            folder / self.FILE, header, self.name, self.COLUMNS,
            ((list(line[:4]), line[4]) for line in ordered),
        )  # fmt: skip
        points = [list(group) for _point, group in groupby(ordered, key=lambda line: line[0])]
        names = [self.FILE]
        for document in _documents(_sheets(points, self.PDF_LINES), self.PDF_LINES):
            names.append(_pdf_name(document[0][0], document[0][2]))
            with whole_file(folder / names[-1], binary=True) as handle:
                html(string=self._render(header, document)).write_pdf(handle)
        self.validate(folder)
        return names

    def _render(self, header: BatchHeader, document: list[Sheet]) -> str:
        say = lambda message: gettext(message, self.language)  # noqa: E731
        units = header.minor_units
        sheets = [
            {
                "point": point,
                "part": say(PART).format(part=part, parts=parts),
                "lines": [
                    {
                        "number": (part - 1) * self.PDF_LINES + i,
                        "reference": reference,
                        "registry_id": registry_id,
                        "holder": holder,
                        "amount": format_minor(amount, units),
                    }
                    for i, (_point, reference, registry_id, holder, amount) in enumerate(chunk, 1)
                ],
                "total_label": say(TOTAL).format(count=len(chunk)),
                "total": format_minor(sum(line[4] for line in chunk), units),
            }
            for _number, point, part, parts, chunk in document
        ]
        return _template().render(
            language=self.language,
            direction=direction(self.language),
            title=say(TITLE),
            point_label=say(POINT),
            batch_label=say(BATCH),
            batch=header.reference,
            date_label=say(VALUE_DATE),
            value_date=header.value_date.isoformat(),
            reference_label=say(REFERENCE),
            registry_label=say(REGISTRY_ID),
            holder_label=say(HOLDER),
            amount_label=say(AMOUNT),
            signature_label=say(SIGNATURE),
            currency=header.currency,
            sheets=sheets,
        )

    def validate(self, folder: Path) -> None:
        refuse_unfinished(folder)
        path = folder / self.FILE
        header, rows = read_batch_csv(path, self.name, self.COLUMNS)
        check = LineCheck(path.name, header)
        expected: list[int] = []  # lines per point, in order
        previous = None
        for line, values in rows:
            check.line(line, values["reference"], values["amount"])
            if not (values["point"] and values["registry_id"] and values["holder"]):
                raise InvalidInput(f"{path.name}: line {line}: no point, registry ID or holder")
            key = (values["point"], values["reference"])
            if previous is not None and key <= previous:
                raise InvalidInput(f"{path.name}: line {line}: not in point and reference order")
            if previous is None or key[0] != previous[0]:
                expected.append(0)
            expected[-1] += 1
            previous = key
        check.end()
        points = [[None] * count for count in expected]  # only the counts matter here
        wanted = {
            _pdf_name(document[0][0], document[0][2])
            for document in _documents(_sheets(points, self.PDF_LINES), self.PDF_LINES)
        }
        found = {pdf.name for pdf in folder.glob("paylist-*.pdf")}
        if found != wanted:
            raise InvalidInput(
                f"{folder.name}: {len(wanted - found)} pay-list PDFs missing, "
                f"{len(found - wanted)} not of this batch"
            )
        for name in sorted(wanted):
            if not _looks_like_pdf(folder / name):
                raise InvalidInput(f"{folder.name}: {name} is not a whole PDF")

    def read_report(self, path: Path) -> tuple[ReportHeader, Iterator[ResultLine]]:
        return read_results(path, _AGENT_STATUSES)

    def answer(self, folder: Path, out: Path, *, fail_one_in: int, seed: int) -> Path:
        _header, rows = read_batch_csv(folder / self.FILE, self.name, self.COLUMNS)
        return write_answer(
            out, references_of(rows), paid="collected", unpaid="not_collected",
            reasons=self.UNCOLLECTED, fail_one_in=fail_one_in, seed=seed,
        )  # fmt: skip


def _lines(lines: Iterable[PaymentLine]) -> Iterator[Line]:
    for n, line in enumerate(lines, start=1):
        if not line.registry_id:
            raise InvalidInput(f"payment line {n}: no registry ID")
        point, holder = detail(line, n, "point"), detail(line, n, "holder")
        yield point, line.transfer_ref, line.registry_id, holder, checked_amount(line, n)


def _sheets(points: list[list], most: int) -> Iterator[Sheet]:
    """Each point's lines (points in order) cut into sheets of at most `most` lines."""
    for number, lines in enumerate(points, 1):
        parts = -(-len(lines) // most)
        point = lines[0][0] if lines[0] is not None else ""
        for part in range(1, parts + 1):
            yield number, point, part, parts, lines[(part - 1) * most : part * most]


def _documents(sheets: Iterable[Sheet], most: int) -> Iterator[list[Sheet]]:
    """Consecutive sheets together, up to `most` lines a document."""
    document: list[Sheet] = []
    size = 0
    for sheet in sheets:
        if document and size + len(sheet[4]) > most:
            yield document
            document, size = [], 0
        document.append(sheet)
        size += len(sheet[4])
    if document:
        yield document


def _pdf_name(point: int, part: int) -> str:
    return f"paylist-{point:04d}-{part:03d}.pdf"


def _looks_like_pdf(path: Path) -> bool:
    with path.open("rb") as handle:
        start = handle.read(5)
        handle.seek(max(0, path.stat().st_size - 1024))
        end = handle.read()
    return start == b"%PDF-" and b"%%EOF" in end


def _pdf_writer():
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as error:  # OSError: Pango or its libraries missing
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PdfUnavailable(
            f"cash pay-lists need WeasyPrint, which cannot be loaded here ({reason})"
        ) from None
    return HTML


@cache
def _template():
    environment = Environment(
        loader=PackageLoader("sijill.payments", "templates"),
        autoescape=select_autoescape(["html"], default=True),
    )
    return environment.get_template("paylist.html")
