"""Registry commands: `sijill db upgrade`, `sijill areas load`, `sijill import`."""

from pathlib import Path

import typer

from sijill.core.db import upgrade
from sijill.core.settings import get_settings
from sijill.security.cli_common import (
    Output,
    OutputOption,
    acting_user,
    audited_transaction,
    emit_one,
    progress_bar,
)

db_app = typer.Typer(help="The registry database.", no_args_is_help=True)
areas_app = typer.Typer(help="Administrative areas.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(output: OutputOption = Output.table) -> None:
    """Create the registry or bring it to the current schema (Alembic migrations).

    Example: SIJILL_DATABASE_URL=postgresql+psycopg://user:pw@host/db sijill db upgrade
    """
    from sijill.security.users.accounts import FIRST_ADMINISTRATOR, create_first_administrator

    settings = get_settings()
    upgrade(settings.database_url)
    password = create_first_administrator(settings)
    administrator = FIRST_ADMINISTRATOR if password else None
    emit_one(
        {"schema": "up to date", "administrator": administrator, "password": password},
        output,
        message="Registry schema is up to date.",
        echo=f"Created the administrator '{administrator}'. One-time password (shown once, "
        f"write it down now): {password}\n"
        f"Sign in with `sijill login --user {administrator}` to choose your own."
        if password
        else None,
    )


@areas_app.command("load")
def areas_load(
    csv_path: Path = typer.Argument(..., help="areas CSV: code, parent_code, level, names"),
    geojson: Path | None = typer.Option(None, help="GeoJSON polygons with properties.code"),
    output: OutputOption = Output.table,
) -> None:
    """Load or update the administrative hierarchy from a CSV (see docs/data-format.md).

    Example: sijill areas load demo-data/areas.csv
    """
    from sijill.core.areas import load_areas
    from sijill.security.roles import Permission

    with acting_user() as (sessions, principal):
        principal.require(Permission.AREAS_MANAGE)
        with audited_transaction(sessions, principal) as session:
            count = load_areas(session, csv_path, geojson)
            principal.audit(Permission.AREAS_MANAGE, "ok", "areas", csv_path.name[:64])
    emit_one({"areas": count}, output, message=f"Loaded {count} areas.")


def import_command(
    path: Path = typer.Argument(
        ..., help="a CSV, XLSX or Parquet file, or a `sijill synth` folder"
    ),
    mapping: Path | None = typer.Option(
        None,
        "--mapping",
        "-m",
        help="YAML mapping of your columns and codes (docs/import-mapping.md)",
    ),
    rejects: Path | None = typer.Option(
        None, help="where to write rejected rows (default: next to the input)"
    ),
    source: str | None = typer.Option(
        None, help="name of the source system; record keys are unique within it"
    ),
    output: OutputOption = Output.table,
) -> None:
    """Import households and their members in bulk, checking every row.

    Good rows are committed in batches; bad rows go to a rejects file with row, field and the
    reason. Importing the same file again adds nothing twice.

    Example: sijill import beneficiaries.xlsx --mapping moh-mapping.yaml
    """
    from sijill.jobs.runner import JobRunner
    from sijill.registry.bulk.jobs import IMPORT, ImportParams
    from sijill.security.keys.keyring import current_keyring
    from sijill.security.keys.usage import check_keyring

    settings = get_settings()
    with (
        acting_user(settings) as (sessions, principal),
        progress_bar("importing", "households") as update,
        # The import job, run here in the foreground: GET /jobs/{id} shows it too.
        JobRunner(sessions, settings) as runner,
    ):
        # Another keyring than the registry's would import rows nobody can read beside them.
        check_keyring(sessions.kw["bind"], current_keyring())
        report = runner.run(
            IMPORT,
            ImportParams(path, mapping, rejects, source),
            principal,
            progress=update,
            stage=lambda what: update(description=what),
        )
    counts = report.counts
    rate = report.households_read / report.seconds if report.seconds else 0
    lines = [
        f"{'Interrupted: ' if report.interrupted else ''}"
        f"{counts.households_added:,} households and {counts.persons_added:,} persons added; "
        f"{counts.households_present:,} households and {counts.persons_present:,} persons were "
        f"already in the registry ({report.seconds:.1f} s, {rate:,.0f} households/s)."
    ]
    if report.ignored_columns:
        lines.append(f"Columns not imported: {', '.join(report.ignored_columns)}")
    if report.rejected_rows:
        lines.append(
            f"[yellow]{report.rejected_rows:,} rows rejected: see {report.rejects_path}[/yellow]"
        )
    if report.interrupted:
        lines.append(
            f"{report.batches_committed} whole batches were committed; run the same command "
            "again to continue (rows already imported are skipped)."
        )
    emit_one(
        {
            "households_added": counts.households_added,
            "persons_added": counts.persons_added,
            "households_present": counts.households_present,
            "persons_present": counts.persons_present,
            "rejected_rows": report.rejected_rows,
            "rejects_path": str(report.rejects_path) if report.rejects_path else None,
            "ignored_columns": report.ignored_columns,
            "batches_committed": report.batches_committed,
            "seconds": report.seconds,
            "interrupted": report.interrupted,
        },
        output,
        message="\n".join(lines),
    )
    if report.interrupted:
        raise typer.Exit(130)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(areas_app, name="areas")
    app.command("import")(import_command)
