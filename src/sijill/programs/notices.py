"""Notification letters: one per household of a program run, in Arabic, French or English, as
HTML and PDF.

A letter names the head of household and the program, gives the decision in the plain words
of its explanation (`programs.explain`), what to do next and how to ask for a review. The
template (`templates/letter.html`, Jinja2, every value escaped) holds the layout; its words
are in the translation catalogs like every other string. Arabic letters are right to left
(`dir="rtl"`, `lang="ar"`) and WeasyPrint shapes them (HarfBuzz, through Pango) with a font
that has Arabic glyphs (Amiri: the Debian package `fonts-hosny-amiri`, installed by
`.ci/run` and the README's setup).

Letters hold personal data: they are written 0600 into a new or empty folder (a folder
already holding files is refused unless `force`), each file in full or not at all, and no
name reaches a log or the terminal. Where WeasyPrint cannot be loaded (not installed, or its
system libraries missing) the HTML letters are still written and the report says why there is
no PDF. One audit record per batch.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sijill.core.errors import Conflict, InvalidInput, NotFound
from sijill.core.i18n import N_, direction, gettext
from sijill.core.i18n.formats import format_date
from sijill.core.ids import format_id
from sijill.core.settings import Settings
from sijill.programs.explain import Explanation, check_language, describe, read_values
from sijill.programs.models import STATUS_NAMES, EligibilityDecision, ProgramRun
from sijill.programs.run_context import run_context
from sijill.registry.models import Household, Membership, Person
from sijill.security.audit.service import append
from sijill.security.principal import Principal
from sijill.security.roles import Permission

NOTICES_ACTION = "programs.notices"
_BATCH = 2000  # households read and written at a time

GREETING = N_("To {name},")
INTRO = N_(
    "Your household (registry number {household}) was assessed for {program} on {date}, "
    "with the rules of version {version}. The decision:"
)
NEXT = N_("What to do next")
NEXT_STEPS = {
    "selected": N_(
        "Your household has been selected. Come to your local social protection office with "
        "the identity document of the head of household to confirm your enrolment."
    ),
    "waitlisted": N_(
        "Your household is eligible, but the program is full for now. You are on its waiting "
        "list and will be contacted when a place opens: you have nothing to do now."
    ),
    "not_eligible": N_(
        "Your household does not receive this program for now. If your situation changes, ask "
        "your local social protection office to update your household's record."
    ),
}
APPEAL_HEADING = N_("If you disagree")
APPEAL = N_(
    "You may ask for this decision to be reviewed: contact your local social protection "
    "office or the program's grievance service and give the reference below. The decision "
    "will be checked against the values and the rules it was made with."
)
REFERENCE = N_("Reference: run {run}, household {household}, rules {digest}")
GREETING_NO_NAME = N_("To the head of the household,")


@dataclass
class NoticeReport:
    run_id: int
    program: str
    language: str
    folder: Path
    letters: int
    pdfs: int
    no_pdf_because: str | None  # why no PDF was written, if none was


def pdf_writer() -> tuple[Callable[[str], bytes] | None, str | None]:
    """WeasyPrint's HTML-to-PDF, or None and the reason it cannot run here."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as error:  # OSError: Pango or its libraries missing
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return None, f"PDF letters not written: WeasyPrint cannot be loaded here ({reason})"
    return lambda html: HTML(string=html).write_pdf(), None


@cache
def _template():
    environment = Environment(
        loader=PackageLoader("sijill.programs", "templates"),
        autoescape=select_autoescape(["html"], default=True),
    )
    return environment.get_template("letter.html")


def render(explanation: Explanation, name: str | None, owner: str) -> str:
    """One letter as HTML."""
    language = explanation.language
    say = lambda message: gettext(message, language)  # noqa: E731
    household = format_id(explanation.household_id)
    return _template().render(
        language=language,
        direction=direction(language),
        owner=owner,
        program_name=explanation.program_name,
        dated=format_date(explanation.as_of, language, format="long"),
        greeting=say(GREETING).format(name=name) if name else say(GREETING_NO_NAME),
        intro=say(INTRO).format(
            household=household,
            program=explanation.program_name,
            date=format_date(explanation.as_of, language, format="long"),
            version=explanation.version,
        ),
        decision=explanation.summary,
        next_heading=say(NEXT),
        next_steps=say(NEXT_STEPS[explanation.status]),
        appeal_heading=say(APPEAL_HEADING),
        appeal=say(APPEAL),
        reference=say(REFERENCE).format(
            run=explanation.run_id, household=household, digest=explanation.digest[:12]
        ),
    )


def write_notices(
    engine: Engine,
    settings: Settings,
    *,
    principal: Principal,
    run_id: int,
    out: Path,
    language: str = "ar",
    status: str | None = None,
    household_id: int | None = None,
    pdf: bool = True,
    force: bool = False,
) -> NoticeReport:
    """A letter for each household of the run in the user's scope (PROGRAMS_READ), or of the
    given status, or the one household asked for."""
    check_language(language)
    codes = {name: code for code, name in STATUS_NAMES.items()}
    if status is not None and status not in codes:
        raise InvalidInput(f"status: '{status}' is not one of {', '.join(codes)}")
    permission = Permission.PROGRAMS_READ
    principal.require(permission, record_type="program_run", record_id=str(run_id))
    writer, no_pdf = pdf_writer() if pdf else (None, None)
    with Session(engine, expire_on_commit=False) as session:
        scope = principal.scope(session, permission)
        run = session.get(ProgramRun, run_id)
        if run is None:
            raise NotFound(f"There is no program run {run_id} in your scope")
        query = (
            select(EligibilityDecision)
            .join(Household, Household.id == EligibilityDecision.household_id)
            .where(EligibilityDecision.run_id == run_id)
            .order_by(EligibilityDecision.household_id)
        )
        if not scope.national:
            query = query.where(scope.condition(Household.area_id))
        if status is not None:
            query = query.where(EligibilityDecision.status == codes[status])
        if household_id is not None:
            query = query.where(EligibilityDecision.household_id == household_id)
        decisions = session.scalars(query).all()
        if household_id is not None and not decisions:
            raise NotFound(f"There is no decision of program run {run_id} on household "
                           f"{household_id} in your scope")  # fmt: skip
        _prepare(out, force)
        context = run_context(session, run)
        owner = str(context.rules.body.get("owner") or "")
        letters = pdfs = 0
        try:
            for start in range(0, len(decisions), _BATCH):
                batch = decisions[start : start + _BATCH]
                ids = [decision.household_id for decision in batch]
                values = read_values(session, settings, context, ids)
                names = _heads(session, ids, language)
                for decision in batch:
                    explanation = describe(
                        context, decision, values.get(decision.household_id, {}), language
                    )
                    html = render(explanation, names.get(decision.household_id), owner)
                    stem = f"{format_id(decision.household_id)}-{language}"
                    _write(out / f"{stem}.html", html.encode("utf-8"))
                    letters += 1
                    if writer is not None:
                        _write(out / f"{stem}.pdf", writer(html))
                        pdfs += 1
        finally:
            outcome = "ok" if letters == len(decisions) else "failed"
            principal.audit(NOTICES_ACTION, outcome, "program_run", str(run_id),
                            permission=permission)  # fmt: skip
            append(session, principal.take_audit())
            session.commit()
    return NoticeReport(run_id, run.program, language, out, letters, pdfs, no_pdf)


def _prepare(out: Path, force: bool) -> None:
    if out.exists():
        if not out.is_dir():
            raise InvalidInput(f"{out} is a file, not a folder")
        if any(out.iterdir()) and not force:
            raise Conflict(
                f"{out} is not empty: letters go into a new or empty folder (or pass --force)"
            )
        return
    out.mkdir(mode=0o700, parents=True)


def _write(path: Path, content: bytes) -> None:
    """The file whole or not at all, readable by its owner only."""
    partial = path.with_name(f".{path.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.chmod(partial, 0o600)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _heads(session: Session, household_ids: list[int], language: str) -> dict[int, str]:
    """The current head's name per household: Arabic for an Arabic letter, else Latin, each
    falling back on the other script."""
    scripts = ("ar", "lat") if language == "ar" else ("lat", "ar")
    parts = ("given", "father", "grandfather", "family")
    columns = [getattr(Person, f"{part}_name_{s}") for s in scripts for part in parts]
    rows = session.execute(
        select(Membership.household_id, *columns)
        .join(Person, Person.id == Membership.person_id)
        .where(
            Membership.household_id.in_(household_ids),
            Membership.relationship == "head",
            Membership.end_date.is_(None),
        )
    ).all()
    names = {}
    for household_id, *values in rows:
        for first in (0, len(parts)):
            words = [value for value in values[first : first + len(parts)] if value]
            if words:
                names[household_id] = " ".join(words)
                break
    return names
