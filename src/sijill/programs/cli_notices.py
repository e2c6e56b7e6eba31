"""`sijill programs explain` and `sijill programs notices`: a decision in plain words, and the
letters that tell households."""

from pathlib import Path

import typer

from sijill.core.settings import get_settings
from sijill.security.cli_common import Output, OutputOption, acting_user, emit, emit_one

Language = typer.Option("en", "--language", help="ar, fr or en")
RunOption = typer.Option(..., "--run", help="a program run's ID")


def _household(text: str) -> int:
    from sijill.core.ids import parse_id

    return parse_id("household", text, "--household")


def explain_command(
    run: int = RunOption,
    household: str = typer.Option(..., "--household", help="the household's registry ID"),
    language: str = Language,
    output: OutputOption = Output.table,
) -> None:
    """Explain a household's decision in a program run: each clause, the values it read, the
    rule and the parameters in force, in plain words (Arabic, French or English).

    Replayed from the run's record and its feature snapshot, never from today's registry.

    Example: sijill programs explain --run 12 --household 4821093312 --language fr
    """
    from sijill.programs.explain import explain

    settings = get_settings()
    household_id = _household(household)
    with acting_user(settings) as (sessions, principal), sessions() as session:
        result = explain(session, settings, principal, run, household_id, language)
    record = result.as_dict()
    if output is Output.table:
        rows = [
            {
                "clause": clause["name"],
                "passed": "yes" if clause["passed"] else "no",
                "rule": clause["rule_as_run"],
                "in_words": clause["sentence"],
            }
            for clause in record["clauses"]
        ]
        emit(rows, ["clause", "passed", "rule", "in_words"], output, title=result.summary)
    elif output is Output.csv:
        emit_one({k: v for k, v in record.items() if not isinstance(v, dict | list)}, output)
    else:
        emit_one(record, output)


def notices_command(
    run: int = RunOption,
    out: Path = typer.Option(..., "--out", help="a new or empty folder for the letters"),
    language: str = typer.Option("ar", "--language", help="ar, fr or en"),
    status: str | None = typer.Option(
        None, "--status", help="only the households selected, waitlisted or not_eligible"
    ),
    household: str | None = typer.Option(None, "--household", help="only this household"),
    pdf: bool = typer.Option(True, "--pdf/--no-pdf", help="also write each letter as PDF"),
    force: bool = typer.Option(False, "--force", help="write into a folder that holds files"),
    output: OutputOption = Output.table,
) -> None:
    """Write a notification letter for each household of a program run in your scope: the
    head's name, the program, the decision in plain words, what to do next and how to appeal.

    HTML, and PDF where WeasyPrint can run (else the HTML alone, and the reason). The letters
    hold personal data: they are written readable by you only, into a new or empty folder.

    Example: sijill programs notices --run 12 --out letters/ --language ar --status selected
    """
    from sijill.core.db import make_engine
    from sijill.programs.notices import write_notices

    settings = get_settings()
    household_id = _household(household) if household is not None else None
    with acting_user(settings) as (_, principal):
        report = write_notices(
            make_engine(settings.database_url),
            settings,
            principal=principal,
            run_id=run,
            out=out,
            language=language,
            status=status,
            household_id=household_id,
            pdf=pdf,
            force=force,
        )
    figures = {
        "run_id": report.run_id,
        "program": report.program,
        "language": report.language,
        "folder": str(report.folder),
        "letters": report.letters,
        "pdfs": report.pdfs,
        "no_pdf_because": report.no_pdf_because,
    }
    pdfs = f" and {report.pdfs:,} PDF" if report.pdfs else ""
    message = f"{report.letters:,} letters (HTML{pdfs}) for run {report.run_id} in {report.folder}."
    if report.no_pdf_because:
        message += f"\n{report.no_pdf_because}."
    emit_one(figures, output, message=message, soft_wrap=True)


def add_commands(programs_app: typer.Typer) -> None:
    programs_app.command("explain")(explain_command)
    programs_app.command("notices")(notices_command)
