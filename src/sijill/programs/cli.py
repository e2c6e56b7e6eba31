"""`sijill programs`: check a program's spec, run its rules over the registry, recertify,
record enrollment answers, show a run."""

from datetime import date, datetime
from pathlib import Path

import typer

from sijill.core.settings import get_settings
from sijill.programs.cli_notices import add_commands
from sijill.security.cli_common import (
    Output,
    OutputOption,
    acting_user,
    emit,
    emit_one,
    fail,
    progress_bar,
)

programs_app = typer.Typer(
    help="Programs on the registry: specs, eligibility, enrollment.", no_args_is_help=True
)

AsOf = typer.Option(
    None, "--as-of", formats=["%Y-%m-%d"], help="the registry and the rules as of that day"
)
Area = typer.Option(None, "--area", help="only the households of this area (a code), and below")
SnapshotOption = typer.Option(
    None, "--snapshot", help="read this stored feature snapshot instead of taking a new one"
)


@programs_app.command("check")
def check_command(
    spec: Path = typer.Argument(..., help="the program's spec (YAML)"),
    as_of: datetime | None = AsOf,
    output: OutputOption = Output.table,
) -> None:
    """Check a program's spec without running it: fields, expressions, parameters, benefit.

    Prints each clause and the parameters in force on --as-of (default today).

    Example: sijill programs check examples/programs/jo-naf-cash.yaml
    """
    from sijill.programs.checks import check_spec
    from sijill.programs.rules import compile_rules

    day = as_of.date() if as_of else date.today()
    checked = check_spec(spec)
    program, formula = checked.spec, checked.formula
    compiled = compile_rules(program, formula, day)
    rows = [
        {"clause": c["name"], "rule": c["where"], "on_that_day": c["sql"]} for c in compiled.clauses
    ]
    figures = {
        "program": program.code,
        "version": program.version,
        "digest": program.digest,
        "cycle": program.cycle,
        "currency": program.currency,
        "clauses": rows,
        "parameters": {name: str(value) for name, value in program.values_on(day).items()},
        "features": program.feature_names(),
        "benefit_components": [c.name for c in formula.components] if formula else [],
        "conditions": [condition.name for condition in checked.conditions],
    }
    if output is Output.table:
        emit(
            rows,
            ["clause", "rule", "on_that_day"],
            output,
            title=f"{program.code} v{program.version}: valid",
        )
    else:
        emit_one(figures, output)


def _run(kind: str, spec: Path, as_of, area, snapshot, dry_run: bool, output: Output) -> None:
    from sijill.jobs.runner import JobRunner
    from sijill.programs.jobs import PROGRAM_JOB, ProgramParams, report_outcome

    settings = get_settings()
    params = ProgramParams(spec, as_of.date() if as_of else None, area, snapshot, dry_run, kind)
    with (
        acting_user(settings) as (sessions, principal),
        progress_bar(f"{kind} run", "steps") as update,
        JobRunner(sessions, settings) as runner,
    ):
        report = runner.run(
            PROGRAM_JOB,
            params,
            principal,
            progress=update,
            stage=lambda what: update(description=what),
        )
    figures = report_outcome(report)
    cost = (
        ""
        if report.cost_per_cycle is None
        else (f", cost per cycle {report.cost_per_cycle:,} ({report.currency} minor units)")
    )
    what = "Dry run" if report.dry_run else f"Run {report.run_id}"
    if report.unchanged:
        what += " (unchanged: this spec already ran on this snapshot)"
    moves = ", ".join(f"{n:,} {name}" for name, n in report.transitions.items())
    emit_one(
        {k: v for k, v in figures.items() if not isinstance(v, dict)}
        if output is Output.table
        else figures,
        output,
        message=f"{what}: {report.program} v{report.version} as of {report.as_of}, snapshot "
        f"{report.snapshot_id}: {report.households_assessed:,} households assessed, "
        f"{report.eligible:,} eligible, {report.selected:,} selected, {report.waitlisted:,} "
        f"waiting{cost}; {report.households_without_consent:,} not assessed (no consent to "
        f"eligibility_assessment)." + (f" Enrollment: {moves}." if moves else ""),
        soft_wrap=True,
    )


@programs_app.command("run")
def run_command(
    specs: list[Path] = typer.Argument(
        ..., help="the program's spec (YAML), or several programs' to run on one snapshot"
    ),
    as_of: datetime | None = AsOf,
    area: str | None = Area,
    snapshot: int | None = SnapshotOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="count and cost, write nothing"),
    parallel: int = typer.Option(
        1, "--parallel", min=1, max=8, help="with several specs, run this many at once"
    ),
    output: OutputOption = Output.table,
) -> None:
    """Decide eligibility for every consenting household in your scope, rank and select
    within the quota or budget, and notify the selected households not yet in the program.

    One decision per household is recorded with the clauses it passed; the run records the
    spec version, rule hash, parameters in force, feature snapshot and scoring runs.

    Several specs run on one feature snapshot (the first run takes it unless --snapshot names
    one), each a job and a transaction of its own; with --parallel N, N at a time (PostgreSQL:
    one run's writes keep the database busy while another computes). One that fails leaves the
    others' runs recorded; the command then says which failed and exits with 1.

    Example: sijill programs run examples/programs/jo-naf-cash.yaml --as-of 2026-11-30

    Example: sijill programs run examples/programs/*.yaml --parallel 2
    """
    if len(specs) == 1:
        _run("eligibility", specs[0], as_of, area, snapshot, dry_run, output)
    else:
        day = as_of.date() if as_of else None
        outcomes, failures = _run_several(specs, day, area, snapshot, dry_run, parallel)
        _emit_several(outcomes, failures, output)


_SEVERAL_COLUMNS = [
    "program", "version", "run_id", "snapshot_id", "households_assessed", "eligible",
    "selected", "waitlisted", "cost_per_cycle", "currency", "unchanged",
]  # fmt: skip


def _run_several(
    specs: list[Path], day, area, snapshot, dry_run: bool, parallel: int
) -> tuple[list[dict], list[str]]:
    """Each spec's run outcome, and what failed (the spec, the reason, its job)."""
    from sijill.jobs import service as jobs
    from sijill.jobs.models import SUCCEEDED, Job
    from sijill.jobs.runner import JobRunner
    from sijill.programs.checks import check_spec
    from sijill.programs.jobs import PROGRAM_JOB, ProgramParams, report_outcome

    checked = [check_spec(spec).spec for spec in specs]  # a bad spec stops all, before any run
    codes = [spec.code for spec in checked]
    if len(set(codes)) < len(codes):
        twice = sorted({code for code in codes if codes.count(code) > 1})
        raise fail(f"each program once per command: {', '.join(twice)} given twice")
    settings = get_settings()
    if settings.database_url.startswith("sqlite"):
        parallel = 1  # SQLite has one writer at a time
    outcomes, failures = [], []
    with (
        acting_user(settings) as (sessions, principal),
        JobRunner(sessions, settings, workers=parallel, max_waiting=len(specs)) as runner,
    ):
        waiting = list(specs)
        if snapshot is None:  # the first run takes the snapshot every other one reads
            first = waiting.pop(0)
            with progress_bar(f"{first.stem}: eligibility run", "steps") as update:
                report = runner.run(
                    PROGRAM_JOB,
                    ProgramParams(first, day, area, None, dry_run),
                    principal,
                    progress=update,
                    stage=lambda what: update(description=f"{first.stem}: {what}"),
                )
            outcomes.append(report_outcome(report))
            snapshot = report.snapshot_id
        started = [
            (spec, runner.start(PROGRAM_JOB, ProgramParams(spec, day, area, snapshot, dry_run),
                                principal))
            for spec in waiting
        ]  # fmt: skip
        for spec, job in started:
            jobs.wait_for_end(job.id)
            with sessions() as session:
                ended = session.get(Job, job.id)
            if ended.state == SUCCEEDED:
                outcomes.append(ended.outcome)
                run_id = ended.outcome["run_id"]
                done = f"run {run_id}" if run_id else "dry run"
                typer.echo(f"{spec.stem}: {done}, {ended.outcome['selected']:,} selected", err=True)
            else:
                failures.append(f"{spec.name}: {ended.error or ended.state} (job {job.id})")
                typer.echo(f"{spec.stem}: {ended.state}", err=True)
    return outcomes, failures


def _emit_several(outcomes: list[dict], failures: list[str], output: Output) -> None:
    title = None
    if outcomes:
        title = f"{len(outcomes)} programs run on snapshot {outcomes[0]['snapshot_id']}"
    # For scripts, every figure a single run gives (seconds, transitions, clauses failed).
    columns = list(outcomes[0]) if outcomes and output is Output.json else _SEVERAL_COLUMNS
    emit(outcomes, columns, output, title=title)
    if failures:
        raise fail("not run: " + "; ".join(failures), code=1)


@programs_app.command("recertify")
def recertify_command(
    spec: Path = typer.Argument(..., help="the program's spec (YAML)"),
    as_of: datetime | None = AsOf,
    area: str | None = Area,
    snapshot: int | None = SnapshotOption,
    output: OutputOption = Output.table,
) -> None:
    """Re-run the rules on the current registry for the households in the program: exits
    on the spec's exit rules, and at recertification for those no longer eligible.

    Example: sijill programs recertify examples/programs/jo-naf-cash.yaml
    """
    _run("recertification", spec, as_of, area, snapshot, False, output)


@programs_app.command("enroll")
def enroll_command(
    program: str = typer.Argument(..., help="the program's code"),
    household: list[int] = typer.Option(..., "--household", help="a notified household's ID"),
    decline: bool = typer.Option(False, "--decline", help="record that they declined"),
    on: datetime | None = typer.Option(
        None, "--on", formats=["%Y-%m-%d"], help="the day of the answer (default today)"
    ),
    output: OutputOption = Output.table,
) -> None:
    """Record notified households' answers: enrolled (or declined with --decline).

    Example: sijill programs enroll jo-naf-cash --household 4821093312
    """
    from sijill.core.db import make_engine
    from sijill.programs.enrollment import enroll
    from sijill.programs.models import DECLINED, ENROLLED

    settings = get_settings()
    answer = DECLINED if decline else ENROLLED
    with acting_user(settings) as (_, principal):
        count = enroll(
            make_engine(settings.database_url),
            principal=principal,
            program=program,
            household_ids=household,
            answer=answer,
            on=on.date() if on else None,
        )
    emit_one(
        {"program": program, "households": count, "answer": answer},
        output,
        message=f"{count} households {answer} in {program}.",
    )


@programs_app.command("show")
def show_command(
    run_id: int = typer.Argument(..., help="a program run's ID"),
    output: OutputOption = Output.table,
) -> None:
    """Show a program run: what it was decided from (spec version, rule hash, parameters,
    snapshot, scores) and its counts.

    Example: sijill programs show 12 -o json
    """
    from sijill.programs.service import get_run, run_record

    settings = get_settings()
    with acting_user(settings) as (sessions, principal), sessions() as session:
        record = run_record(get_run(session, principal, run_id))
    if output is Output.table:
        rows = [
            {
                "clause": c["name"],
                "rule": c["sql"],
                "failed": record["summary"]["failed_by_clause"].get(c["name"]),
            }
            for c in record["clauses"]
        ]
        emit(
            rows,
            ["clause", "rule", "failed"],
            output,
            title=f"run {run_id}: {record['program']} v{record['version']}, "
            f"{record['selected']:,} selected",
        )
    else:
        emit_one(record, output)


add_commands(programs_app)  # explain, notices


def register(app: typer.Typer) -> None:
    app.add_typer(programs_app, name="programs")
