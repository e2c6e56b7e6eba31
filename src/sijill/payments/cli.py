"""`sijill payments prepare|approve|release|reconcile|batches|report|history|purge` and
`sijill ledger check`.

Terminal output gives counts and amounts; the files themselves (accounts, names) stay in the
payments folder, never on the screen."""

from datetime import date
from pathlib import Path

import typer

from sijill.core.settings import get_settings
from sijill.security.cli_common import Output, OutputOption, acting_user, emit, emit_one

payments_app = typer.Typer(
    help="Payments: prepare batches, approve (four eyes), release, reconcile, report.",
    no_args_is_help=True,
)
ledger_app = typer.Typer(help="The payments ledger.", no_args_is_help=True)

CycleOption = typer.Option(
    ..., "--cycle", help="the cycle: 2026-11 (monthly; bimonthly by its first, odd, month), 2026-Q4"
)
BatchArgument = typer.Argument(..., help="the batch's number (see `sijill payments batches`)")


def _engine(settings):
    from sijill.core.db import make_engine

    return make_engine(settings.database_url)


def _amounts(totals: dict[str, int]) -> str:
    return ", ".join(f"{minor:,} {currency} minor units" for currency, minor in totals.items())


@payments_app.command("prepare")
def prepare_command(
    cycle: str = CycleOption,
    area: str | None = typer.Option(None, "--area", help="only the households of this area"),
    consolidate: bool = typer.Option(
        False, "--consolidate", help="one payment per household across its programs"
    ),
    value_date: str | None = typer.Option(
        None, "--value-date", help="pay on this date or the next business day (default: today)"
    ),
    output: OutputOption = Output.table,
) -> None:
    """Turn the cycle's approved entitlements, of every program, into payment instructions
    in batches per provider and governorate, and write each batch's file. The gate holds back
    (and counts) payments to deceased or merged-away recipients, exited households, households
    in an open duplicate review or without consent to `payment`, and instruments missing,
    awaiting approval or shared by several households. Running it again pays nothing twice.

    Example: sijill payments prepare --cycle 2026-11
    """
    from sijill.core.errors import InvalidInput
    from sijill.payments.prepare import prepare
    from sijill.security.keys.keyring import current_keyring

    try:
        when = date.fromisoformat(value_date) if value_date else None
    except ValueError:
        raise InvalidInput(f"--value-date: {value_date!r} is not an ISO date") from None
    settings = get_settings()
    with acting_user(settings) as (_, principal):
        report = prepare(
            _engine(settings), settings, current_keyring(), principal=principal, cycle=cycle,
            area_code=area, consolidate=consolidate, value_date=when,
            stage=lambda what: typer.echo(what, err=True),
        )  # fmt: skip
    held = ", ".join(f"{n:,} {reason}" for reason, n in sorted(report.held.items())) or "none"
    if report.run_id is None:
        message = (
            f"Cycle {report.cycle}: nothing new to instruct; the files of "
            f"{report.files_written} batches a stopped run had left unwritten are written."
        )
    else:
        message = (
            f"Run {report.run_id}, cycle {report.cycle}: {report.instructed:,} instructions in "
            f"{len(report.batches)} batches ({report.payments:,} payments, "
            f"{_amounts(report.total_minor) or 'nothing'}), value date "
            f"{report.value_date.isoformat()}; held back: {held}."
        )
    emit_one(
        {"run_id": report.run_id, "cycle": report.cycle,
         "value_date": report.value_date.isoformat(), "instructed": report.instructed,
         "payments": report.payments, "total_minor": report.total_minor, "held": report.held,
         "batches": report.batches, "files_written": report.files_written},
        output,
        message=message,
        soft_wrap=True,
    )  # fmt: skip


@payments_app.command("approve")
def approve_command(batch: int = BatchArgument, output: OutputOption = Output.table) -> None:
    """Approve a prepared batch for release: its file is validated again (ISO 20022 files
    against the official schema) and its hash recorded. Not by the officer who prepared it.

    Example: sijill payments approve 12
    """
    from sijill.payments.batches import approve

    settings = get_settings()
    with acting_user(settings) as (_, principal):
        record = approve(_engine(settings), settings, principal=principal, batch_id=batch)
    emit_one(record, output, message=f"Payment batch {batch} approved ({record['payments']:,} "
             f"payments, {record['total_minor']:,} {record['currency']} minor units).")  # fmt: skip


@payments_app.command("release")
def release_command(batch: int = BatchArgument, output: OutputOption = Output.table) -> None:
    """Release an approved batch to its provider: refused if its files differ from those
    approved. Its files are copied to <payments folder>/outbox/<provider>/.

    Example: sijill payments release 12
    """
    from sijill.payments.batches import release

    settings = get_settings()
    with acting_user(settings) as (_, principal):
        record = release(_engine(settings), settings, principal=principal, batch_id=batch)
    said = "already released, nothing changed" if record.get("unchanged") else "released"
    emit_one(record, output, message=f"Payment batch {batch} {said}.")


@payments_app.command("reconcile")
def reconcile_command(
    path: Path = typer.Argument(..., help="the provider's report (pain.002, result file)"),
    provider: str = typer.Option(
        ..., "--provider", help="who sent it: iso20022, mobile_money, cash_agent, card"
    ),
    output: OutputOption = Output.table,
) -> None:
    """Ingest a provider's report: each payment it names ends paid, failed (with reason) or
    returned. Lines that match no payment are kept and counted, never dropped; the same file
    twice changes nothing.

    Example: sijill payments reconcile pain002-B12.xml --provider iso20022
    """
    from sijill.payments.reconcile import reconcile

    settings = get_settings()
    with acting_user(settings) as (_, principal):
        summary = reconcile(
            _engine(settings), settings, principal=principal, path=path, provider=provider
        )
    said = "already ingested, nothing changed; " if summary["unchanged"] else ""
    emit_one(summary, output, message=(
        f"Report {summary['report_id']}: {said}{summary['lines']:,} lines, {summary['paid']:,} "
        f"paid, {summary['failed']:,} failed, {summary['returned']:,} returned, "
        f"{summary['pending']:,} pending, {summary['already_known']:,} already known, "
        f"{summary['unmatched']:,} unmatched, {summary['conflicts']:,} conflicts, "
        f"{summary['repeated']:,} repeated."))  # fmt: skip


@payments_app.command("batches")
def batches_command(
    cycle: str | None = typer.Option(None, "--cycle", help="one cycle (default: all)"),
    status: str | None = typer.Option(None, "--status", help="prepared, approved, released ..."),
    output: OutputOption = Output.table,
) -> None:
    """List the payment batches of your areas.

    Example: sijill payments batches --cycle 2026-11 --status prepared
    """
    from sijill.payments.batches import list_batches

    settings = get_settings()
    with acting_user(settings) as (sessions, principal), sessions() as session:
        records = list_batches(session, principal, cycle, status)
    columns = ["id", "cycle", "provider", "area", "currency", "status", "payments",
               "total_minor", "prepared_by", "approved_by", "value_date"]  # fmt: skip
    emit(records, columns, output, title="payment batches")


@payments_app.command("report")
def report_command(
    program: str | None = typer.Option(None, "--program"),
    cycle: str | None = typer.Option(None, "--cycle"),
    xlsx: Path | None = typer.Option(None, "--xlsx", help="also write it to this XLSX file"),
    output: OutputOption = Output.table,
) -> None:
    """Per program and cycle: amounts entitled, sent, paid, failed, returned and outstanding
    (minor units), for the households of your areas. `-o csv` or `--xlsx FILE` to keep it.

    Example: sijill payments report --cycle 2026-11 --xlsx payments-2026-11.xlsx
    """
    from sijill.payments.reports import totals, write_xlsx

    settings = get_settings()
    with acting_user(settings) as (sessions, principal), sessions() as session:
        records = totals(session, principal, program, cycle)
    columns = ["program", "cycle", "currency", "households", "entitled_minor", "sent_minor",
               "paid_minor", "failed_minor", "returned_minor", "outstanding_minor"]  # fmt: skip
    if xlsx is not None:
        write_xlsx(records, columns, xlsx)
    emit(records, columns, output, title="payments by program and cycle")


@payments_app.command("history")
def history_command(
    household: str = typer.Argument(..., help="the household's registry ID"),
    xlsx: Path | None = typer.Option(None, "--xlsx", help="also write it to this XLSX file"),
    output: OutputOption = Output.table,
) -> None:
    """Who got what, when and how: every payment of one household, with its instrument
    (masked), provider, batch, status, and the ledger's moves.

    Example: sijill payments history 4829301756
    """
    from sijill.payments.reports import household_history, write_xlsx

    settings = get_settings()
    with acting_user(settings) as (sessions, principal), sessions() as session:
        records = household_history(session, principal, household)
    columns = ["program", "cycle", "attempt", "amount_minor", "currency", "status", "reason",
               "provider", "instrument", "batch_id", "released_at", "settled_at"]  # fmt: skip
    if xlsx is not None:
        write_xlsx(records, columns, xlsx)
    emit(records, columns, output, title=f"payments of household {household}")


@payments_app.command("purge")
def purge_command(output: OutputOption = Output.table) -> None:
    """Delete payment files and providers' reports older than the retention period
    (SIJILL_PAYMENT_FILE_RETENTION_DAYS): their hashes, instructions and ledger stay.

    Example: sijill payments purge
    """
    from sijill.payments.reports import purge

    settings = get_settings()
    with acting_user(settings) as (_, principal):
        counts = purge(_engine(settings), settings, principal=principal)
    emit_one(counts, output, message=f"Purged the files of {counts['batches']:,} batches and "
             f"{counts['reports']:,} reports kept longer than "
             f"{settings.payment_file_retention_days} days.")  # fmt: skip


@ledger_app.command("check")
def check_command(output: OutputOption = Output.table) -> None:
    """Prove the ledger: every move balances, every account sums to zero, and every
    entitlement is paid exactly once or open for exactly its amount, as its instructions
    say. Exits 1 when anything is wrong.

    Example: sijill ledger check
    """
    from sijill.payments.reports import check_ledger

    settings = get_settings()
    with acting_user(settings) as (sessions, principal), sessions() as session:
        report = check_ledger(session, principal)
    verdict = "balanced" if report.ok else "NOT balanced: " + "; ".join(report.problems)
    emit_one(
        {"ok": report.ok, "moves": report.moves, "legs": report.legs,
         "unbalanced_moves": report.unbalanced_moves, "entitlements": report.entitlements,
         "paid_once": report.paid_once, "open": report.open,
         "wrong_entitlements": report.wrong_entitlements,
         "instructions": report.instructions, "wrong_instructions": report.wrong_instructions,
         "balances": report.balances, "problems": report.problems},
        output,
        message=f"Ledger {verdict}: {report.moves:,} moves; {report.entitlements:,} "
        f"entitlements, {report.paid_once:,} paid exactly once, {report.open:,} open; "
        f"{report.instructions:,} instructions.",
        soft_wrap=True,
    )  # fmt: skip
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    from sijill.payments.instrument_cli import app as instruments_app

    payments_app.add_typer(instruments_app, name="instruments")
    app.add_typer(payments_app, name="payments")
    app.add_typer(ledger_app, name="ledger")
