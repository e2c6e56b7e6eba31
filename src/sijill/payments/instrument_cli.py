"""`sijill payments instruments`: record, list, approve, reject and import how households are
paid. Details are read from a file or typed at a prompt, never taken as a command-line
argument, which the shell would keep in its history."""

from pathlib import Path

import typer

from sijill.core.settings import get_settings
from sijill.security.cli_common import (
    Output,
    OutputOption,
    acting_user,
    audited_transaction,
    emit,
    emit_one,
)

app = typer.Typer(
    help="Payment instruments: bank accounts, wallets, cash pick-up points, cards.",
    no_args_is_help=True,
)

COLUMNS = ["id", "household_id", "kind", "masked", "status", "reason", "created_by",
           "created_at", "decided_by", "decided_at", "replaced_at"]  # fmt: skip
# Typed without an echo: what would be read over a shoulder.
_HIDDEN = {"iban", "phone", "card_number"}


def _prompted(kind: str) -> dict[str, str]:
    from sijill.payments.instrument_details import FIELDS, REQUIRED

    if kind not in FIELDS:
        raise typer.BadParameter(f"kind must be one of {', '.join(FIELDS)}", param_hint="--kind")
    details = {}
    for name in FIELDS[kind]:
        required = name in REQUIRED[kind]
        value = typer.prompt(
            name if required else f"{name} (optional)",
            default=None if required else "",
            hide_input=name in _HIDDEN,
            show_default=False,
        )
        if value.strip():
            details[name] = value
    return details


@app.command("add")
def add_command(
    household: str = typer.Option(..., "--household", help="the household's registry ID"),
    kind: str = typer.Option(..., "--kind", help="bank, wallet, cash or card"),
    details: Path | None = typer.Option(
        None,
        "--details",
        help='a JSON file of the details (e.g. {"iban": ..., "holder": ...}); '
        "without it they are asked for",
    ),
    person: str | None = typer.Option(
        None, "--person", help="the member who collects (a person registry ID)"
    ),
    output: OutputOption = Output.table,
) -> None:
    """Record how a household is paid. Its first instrument is active at once; a change waits
    for a second officer when the risk rule holds it (instrument_change_review).

    Example: sijill payments instruments add --household 4829105731 --kind bank --details
    account.json
    """
    from sijill.core.files import read_json
    from sijill.payments.instruments import record_instrument
    from sijill.security.keys.keyring import current_keyring

    settings = get_settings()
    raw = read_json(details) if details is not None else _prompted(kind)
    with (
        acting_user(settings) as (sessions, principal),
        audited_transaction(sessions, principal) as session,
    ):
        shown = record_instrument(
            session, principal, current_keyring(), settings,
            household=household, kind=kind, details=raw, recipient=person,
        )  # fmt: skip
    state = "active" if shown.status == "active" else f"pending a second officer: {shown.reason}"
    emit_one(
        shown.model_dump(mode="json"),
        output,
        message=f"Instrument {shown.id} ({shown.kind} {shown.masked}) recorded, {state}.",
        soft_wrap=True,
    )


@app.command("list")
def list_command(
    household: str = typer.Option(..., "--household", help="the household's registry ID"),
    output: OutputOption = Output.table,
) -> None:
    """Every instrument a household has had, newest first, masked.

    Example: sijill payments instruments list --household 4829105731
    """
    from sijill.payments.instruments import list_instruments

    settings = get_settings()
    with (
        acting_user(settings) as (sessions, principal),
        audited_transaction(sessions, principal) as session,
    ):
        views = list_instruments(session, principal, household)
    rows = [view.model_dump(mode="json") for view in views]
    emit(rows, COLUMNS, output, title=f"payment instruments of household {household}")


def _decide(instrument_id: int, approve: bool, output: Output) -> None:
    from sijill.payments.instruments import decide_instrument

    settings = get_settings()
    with (
        acting_user(settings) as (sessions, principal),
        audited_transaction(sessions, principal) as session,
    ):
        shown = decide_instrument(session, principal, instrument_id, approve)
    emit_one(
        shown.model_dump(mode="json"),
        output,
        message=f"Instrument {shown.id} ({shown.kind} {shown.masked}) is {shown.status}.",
    )


@app.command("approve")
def approve_command(
    instrument_id: int = typer.Argument(..., help="a pending instrument's ID"),
    output: OutputOption = Output.table,
) -> None:
    """Approve a pending change: the instrument becomes active, the old one replaced. Not by
    the officer who recorded it.

    Example: sijill payments instruments approve 812
    """
    _decide(instrument_id, True, output)


@app.command("reject")
def reject_command(
    instrument_id: int = typer.Argument(..., help="a pending instrument's ID"),
    output: OutputOption = Output.table,
) -> None:
    """Reject a pending change: the household keeps its active instrument.

    Example: sijill payments instruments reject 812
    """
    _decide(instrument_id, False, output)


@app.command("import")
def import_command(
    path: Path = typer.Argument(
        ...,
        help="CSV, XLSX or Parquet: household_id (or household_key with --source), kind, "
        "holder, iban, bic, phone, operator, point, card_number, person_id",
    ),
    replace: bool = typer.Option(
        False, "--replace", help="change households' active instruments (the risk rule applies)"
    ),
    source: str | None = typer.Option(
        None, "--source", help="the source whose record keys household_key holds (e.g. synth-7)"
    ),
    rejects: Path | None = typer.Option(
        None, "--rejects", help="where to write the rejected lines (default: beside the file)"
    ),
    output: OutputOption = Output.table,
) -> None:
    """Import instruments in bulk, in one transaction. Lines that cannot be used are written
    to a rejects CSV with their line and reason; a line equal to the household's active
    instrument changes nothing, so importing a file twice is harmless.

    Example: sijill payments instruments import demo-data/instruments.csv --source synth-7
    """
    from sijill.core.db import make_engine
    from sijill.payments.instrument_import import import_instruments
    from sijill.security.keys.keyring import current_keyring

    settings = get_settings()
    with acting_user(settings) as (_, principal):
        engine = make_engine(settings.database_url)
        try:
            report = import_instruments(
                engine, settings, principal=principal, keyring=current_keyring(), path=path,
                replace=replace, source=source,
            )  # fmt: skip
        finally:
            engine.dispose()
    written = None
    if report.rejects.height:
        written = rejects or path.with_name(f"{path.stem}.rejects.csv")
        report.rejects.write_csv(written)
    emit_one(
        {"added": report.added, "pending": report.pending, "replaced": report.replaced,
         "unchanged": report.unchanged, "rejected": report.rejects.height,
         "rejects_file": None if written is None else str(written)},
        output,
        message=f"{report.added:,} instruments active, {report.pending:,} pending a second "
        f"officer, {report.replaced:,} replaced, {report.unchanged:,} unchanged, "
        f"{report.rejects.height:,} lines rejected"
        + (f" (lines and reasons in {written})" if written else "") + ".",
        soft_wrap=True,
    )  # fmt: skip
