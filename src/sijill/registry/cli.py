"""Registry commands: `sijill db upgrade`, `sijill areas load`, `sijill import`."""

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sijill.core.db import upgrade
from sijill.core.settings import get_settings

console = Console(stderr=True)
db_app = typer.Typer(help="The registry database.", no_args_is_help=True)
areas_app = typer.Typer(help="Administrative areas.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the registry or bring it to the current schema (Alembic migrations).

    Example: SIJILL_DATABASE_URL=postgresql+psycopg://user:pw@host/db sijill db upgrade
    """
    from sijill.security.users import create_first_administrator

    settings = get_settings()
    upgrade(settings.database_url)
    console.print("Registry schema is up to date.")
    password = create_first_administrator(settings)
    if password:
        from sijill.security.users import FIRST_ADMINISTRATOR

        typer.echo(
            f"Created the administrator '{FIRST_ADMINISTRATOR}'. One-time password (shown "
            f"once, write it down now): {password}\n"
            f"Sign in with `sijill login --user {FIRST_ADMINISTRATOR}` to choose your own."
        )


@areas_app.command("load")
def areas_load(
    csv_path: Path = typer.Argument(..., help="areas CSV: code, parent_code, level, names"),
    geojson: Path | None = typer.Option(None, help="GeoJSON polygons with properties.code"),
) -> None:
    """Load or update the administrative hierarchy from a CSV (see docs/data-format.md).

    Example: sijill areas load demo-data/areas.csv
    """
    from sijill.core.areas import load_areas
    from sijill.security.cli_common import acting_user, audited_transaction
    from sijill.security.roles import Permission

    with acting_user() as (sessions, principal):
        principal.require(Permission.AREAS_MANAGE)
        with audited_transaction(sessions, principal) as session:
            count = load_areas(session, csv_path, geojson)
            principal.audit(Permission.AREAS_MANAGE, "ok", "areas", csv_path.name[:64])
    console.print(f"Loaded {count} areas.")


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
) -> None:
    """Import households and their members in bulk, checking every row.

    Good rows are committed in batches; bad rows go to a rejects file with row, field and the
    reason. Importing the same file again adds nothing twice.

    Example: sijill import beneficiaries.xlsx --mapping moh-mapping.yaml
    """
    from sijill.registry.bulk.service import import_path
    from sijill.security.cli_common import acting_user

    settings = get_settings()
    with (
        acting_user(settings) as (sessions, principal),
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("households"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task("importing", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        report = import_path(
            sessions.kw["bind"],
            settings,
            path,
            mapping,
            rejects,
            source,
            principal=principal,
            progress=progress,
            stage=lambda what: bar.update(task, description=what),
        )
    counts = report.counts
    rate = report.households_read / report.seconds if report.seconds else 0
    console.print(
        f"{'Interrupted: ' if report.interrupted else ''}"
        f"{counts.households_added:,} households and {counts.persons_added:,} persons added; "
        f"{counts.households_present:,} households and {counts.persons_present:,} persons were "
        f"already in the registry ({report.seconds:.1f} s, {rate:,.0f} households/s)."
    )
    if report.ignored_columns:
        console.print(f"Columns not imported: {', '.join(report.ignored_columns)}")
    if report.rejected_rows:
        console.print(
            f"[yellow]{report.rejected_rows:,} rows rejected: see {report.rejects_path}[/yellow]"
        )
    if report.interrupted:
        console.print(
            f"{report.batches_committed} whole batches were committed; run the same command "
            "again to continue (rows already imported are skipped)."
        )
        raise typer.Exit(130)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(areas_app, name="areas")
    app.command("import")(import_command)
