"""`sijill entitlements generate|approve|show`, `sijill compliance import` and
`sijill programs overlaps`: a program's payments per cycle, before any money moves.

Terminal output gives counts and amounts only; household IDs go to a file (--out), never to
the screen."""

from pathlib import Path

import typer

from sijill.core.settings import get_settings
from sijill.security.cli_common import Output, OutputOption, acting_user, emit, emit_one

entitlements_app = typer.Typer(
    help="Entitlements per cycle: generate, approve (four eyes), show.", no_args_is_help=True
)
compliance_app = typer.Typer(
    help="Compliance with programs' conditions, per cycle.", no_args_is_help=True
)

ProgramOption = typer.Option(..., "--program", help="the program's code")
CycleOption = typer.Option(
    ..., "--cycle", help="the cycle: 2026-11 (monthly; bimonthly by its first, odd, month), 2026-Q4"
)
AreaOption = typer.Option(None, "--area", help="only the households of this area (a code)")
SpecOption = typer.Option(
    None, "--spec", help="the spec of the program's latest run (default: the stored version)"
)


def _money(minor: int, currency: str) -> str:
    return f"{minor:,} {currency} minor units"


def _overlaps(summary: dict) -> str:
    found = summary.get("overlaps") or {}
    if not found:
        return "no overlap with other programs"
    return "overlaps: " + ", ".join(f"{n:,} {rule}" for rule, n in sorted(found.items()))


@entitlements_app.command("generate")
def generate_command(
    program: str = ProgramOption,
    cycle: str = CycleOption,
    spec: Path | None = SpecOption,
    area: str | None = AreaOption,
    replace: bool = typer.Option(
        False, "--replace", help="generate again a cycle not yet approved, from current data"
    ),
    output: OutputOption = Output.table,
) -> None:
    """Write one entitlement per household in the program during the cycle, in your scope:
    the benefit formula over the latest run's features and scores, prorated, cut by unmet
    conditions, held or reduced by the overlap rules, with the recipient.

    Running it again for the same cycle writes nothing.

    Example: sijill entitlements generate --program eg-takaful --cycle 2026-11
    """
    from sijill.core.db import make_engine
    from sijill.programs.entitlement_service import generate

    settings = get_settings()
    with acting_user(settings) as (_, principal):
        report = generate(
            make_engine(settings.database_url), settings, principal=principal,
            program=program, cycle=cycle, spec_path=spec, area_code=area, replace=replace,
            stage=lambda what: typer.echo(what, err=True) if what.startswith("overlaps") else None,
        )  # fmt: skip
    statuses = ", ".join(f"{n:,} {s}" for s, n in sorted(report.summary["by_status"].items()))
    what = f"Cycle {report.cycle} of {report.program} (generation {report.batch_id})"
    if report.unchanged:
        what += ": already generated, nothing written (--replace to generate it again)"
    emit_one(
        {"batch_id": report.batch_id, "program": report.program, "cycle": report.cycle,
         "run_id": report.run_id, "status": report.status, "households": report.households,
         "total_minor": report.total_minor, "currency": report.currency,
         "unchanged": report.unchanged, "replaced": report.replaced,
         **({"summary": report.summary} if output is not Output.table else {})},
        output,
        message=f"{what}: {report.households:,} households ({statuses}), payable "
        f"{_money(report.total_minor, report.currency)}; {_overlaps(report.summary)}; "
        f"{report.status}.",
        soft_wrap=True,
    )  # fmt: skip


@entitlements_app.command("approve")
def approve_command(
    program: str = ProgramOption,
    cycle: str = CycleOption,
    area: str | None = AreaOption,
    output: OutputOption = Output.table,
) -> None:
    """Approve a generated cycle for payment. Only a program officer other than the one who
    generated it may (four eyes); payments read approved cycles only.

    Example: sijill entitlements approve --program eg-takaful --cycle 2026-11
    """
    from sijill.core.db import make_engine
    from sijill.programs.entitlement_service import approve

    settings = get_settings()
    with acting_user(settings) as (_, principal):
        report = approve(
            make_engine(settings.database_url), principal=principal, program=program,
            cycle=cycle, area_code=area,
        )  # fmt: skip
    emit_one(
        {"batch_id": report.batch_id, "status": report.status, "households": report.households,
         "total_minor": report.total_minor, "currency": report.currency},
        output,
        message=f"Cycle {report.cycle} of {report.program} approved: {report.households:,} "
        f"households, payable {_money(report.total_minor, report.currency)}.",
    )  # fmt: skip


@entitlements_app.command("show")
def show_command(
    program: str = ProgramOption,
    cycle: str | None = typer.Option(None, "--cycle", help="one cycle (default: all)"),
    output: OutputOption = Output.table,
) -> None:
    """Show a program's generated cycles in your scope: status, who generated and approved
    them, households and amounts by status.

    Example: sijill entitlements show --program eg-takaful --cycle 2026-11 -o json
    """
    from sijill.programs.entitlement_service import cycle_records

    settings = get_settings()
    with acting_user(settings) as (sessions, principal), sessions() as session:
        records = cycle_records(session, principal, program, cycle)
    for record in records:
        record["by_status"] = ", ".join(
            f"{n:,} {s}" for s, n in sorted(record["summary"]["by_status"].items())
        )
    columns = ["id", "cycle", "area", "status", "households", "total_minor", "currency",
               "by_status", "generated_by", "approved_by"]  # fmt: skip
    if output is not Output.table:
        columns += ["run_id", "first_day", "last_day", "summary"]
    emit(records, columns, output, title=f"{program}: entitlements")


@compliance_app.command("import")
def import_command(
    path: Path = typer.Argument(
        ..., help="CSV, XLSX or Parquet: household_id, condition, compliant"
    ),
    program: str = ProgramOption,
    cycle: str = CycleOption,
    rejects: Path | None = typer.Option(
        None, "--rejects", help="write the rejected rows' lines and reasons to this CSV"
    ),
    output: OutputOption = Output.table,
) -> None:
    """Import whether households met the program's conditions in a cycle. Rows that cannot
    be used are rejected with their line and reason; the others are recorded (a row for a
    household and condition already imported for the cycle replaces it).

    Example: sijill compliance import attendance-2026-11.csv --program ma-tayssir --cycle 2026-11
    """
    from sijill.core.db import make_engine
    from sijill.programs.compliance import import_compliance

    settings = get_settings()
    with acting_user(settings) as (_, principal):
        report = import_compliance(
            make_engine(settings.database_url), principal=principal, program=program,
            cycle=cycle, path=path,
        )  # fmt: skip
    if rejects is not None:
        report.rejects.write_csv(rejects)
    first = "; ".join(
        f"line {row['row']}: {row['message']}"
        for row in report.rejects.head(5).iter_rows(named=True)
    )
    emit_one(
        {"program": report.program, "cycle": report.cycle, "accepted": report.accepted,
         "rejected": report.rejects.height},
        output,
        message=f"Compliance for cycle {report.cycle} of {report.program}: {report.accepted:,} "
        f"rows recorded, {report.rejects.height:,} rejected" + (f" ({first})" if first else "")
        + ".",
        soft_wrap=True,
    )  # fmt: skip


def overlaps_command(
    program: str = ProgramOption,
    cycle: str = CycleOption,
    spec: Path | None = SpecOption,
    area: str | None = AreaOption,
    out: Path | None = typer.Option(
        None, "--out", help="write the households in violation (household_id, rule) to this CSV"
    ),
    output: OutputOption = Output.table,
) -> None:
    """Report the households of a cycle that break the program's overlap rules: also in a
    program it cannot be combined with, or above the ceiling across programs. Writes nothing
    to the registry.

    Example: sijill programs overlaps --program eg-takaful --cycle 2026-11 --out overlaps.csv
    """
    from sijill.core.db import make_engine
    from sijill.programs.entitlements import plan

    settings = get_settings()
    with acting_user(settings) as (_, principal):
        planned = plan(
            make_engine(settings.database_url), settings, principal=principal,
            program=program, cycle=cycle, spec_path=spec, area_code=area,
        )  # fmt: skip
    if out is not None:
        planned.violations.write_csv(out)
    summary = planned.summary()
    emit_one(
        {"program": program, "cycle": planned.cycle.name,
         "households": planned.entitlements.height, **summary["overlaps"]},
        output,
        message=f"Cycle {planned.cycle.name} of {program}: {planned.entitlements.height:,} "
        f"households, {_overlaps(summary)}.",
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    from sijill.programs.cli import programs_app

    programs_app.command("overlaps")(overlaps_command)
    app.add_typer(entitlements_app, name="entitlements")
    app.add_typer(compliance_app, name="compliance")
