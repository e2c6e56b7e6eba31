"""`sijill export`: the registry as files for analysts (pseudonymised only, for now)."""

from pathlib import Path

import typer

from sijill.core.errors import InvalidInput
from sijill.core.settings import get_settings
from sijill.security.cli_common import Output, OutputOption, acting_user, emit_one, progress_bar


def export_command(
    out_dir: Path = typer.Argument(
        ..., help="directory to write the Parquet files into (new or empty)"
    ),
    pseudonymise: bool = typer.Option(
        False,
        "--pseudonymise",
        help="pseudonyms instead of registry IDs; no names, identifiers, addresses or dates",
    ),
    force: bool = typer.Option(
        False, "--force", help="replace an earlier export in OUT_DIR (nothing else is deleted)"
    ),
    output: OutputOption = Output.table,
) -> None:
    """Export households and persons of your areas as Parquet files for analysis.

    Only households that consented to research are exported. Names, national IDs, phones,
    addresses, coordinates and exact dates are left out; households and persons carry stable
    pseudonyms instead of registry IDs. summary.parquet counts households and persons per
    locality and governorate, with cells of fewer than SIJILL_MIN_CELL_SIZE households
    suppressed.

    Example: sijill export ./research-2026-06 --pseudonymise
    """
    if not pseudonymise:
        # Checked before signing in or touching the disk: nothing is written.
        raise InvalidInput(
            "Only pseudonymised exports exist for now: run it again with --pseudonymise"
        )
    from sijill.analytics.export import export_pseudonymised

    settings = get_settings()
    with (
        acting_user(settings) as (sessions, principal),
        progress_bar("exporting", "rows") as update,
    ):
        report = export_pseudonymised(
            sessions.kw["bind"],
            principal,
            out_dir,
            min_cell=settings.min_cell_size,
            force=force,
            progress=update,
        )
    emit_one(
        {
            "out_dir": str(report.out_dir),
            "households": report.households,
            "persons": report.persons,
            "summary_rows": report.summary_rows,
            "cells_suppressed": report.cells_suppressed,
            "min_cell": report.min_cell,
            "left_out_no_consent": report.left_out_no_consent,
        },
        output,
        echo=f"Wrote {report.out_dir}:\n"
        f"  households.parquet  {report.households:,} households\n"
        f"  persons.parquet     {report.persons:,} persons\n"
        f"  summary.parquet     {report.summary_rows:,} areas, {report.cells_suppressed:,} "
        f"suppressed (fewer than {report.min_cell} households)\n"
        f"Households left out, without consent to research: {report.left_out_no_consent:,}",
    )


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
