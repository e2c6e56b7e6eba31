"""`sijill audit verify` and `sijill audit show`: check the audit chain, read its latest records."""

from datetime import UTC, datetime

import typer

from sijill.core.errors import InvalidInput
from sijill.core.settings import get_settings
from sijill.security.cli_common import (
    Column,
    Output,
    OutputOption,
    acting_user,
    console,
    emit,
    emit_one,
    progress_bar,
)

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


def require_auditor(action: str) -> str:
    """Only a signed-in user who may read the audit log runs these (`require_log_reader`, the
    API's rule); that they did is audited (before the verification, so its own record is part
    of what it checks; in the quarantine while the chain is broken). Returns the user name."""
    from sijill.security.audit.log import require_log_reader

    with acting_user() as (sessions, principal), sessions() as session:
        require_log_reader(session, principal, action)
    return principal.username


@audit_app.command("verify")
def verify_command(
    anchor: list[str] = typer.Option(
        [],
        "--anchor",
        help="SEQ:HASH printed by an earlier verify and kept outside the database; "
        "record SEQ must still have HASH (repeatable)",
    ),
    output: OutputOption = Output.table,
) -> None:
    """Check that no audit record was altered, deleted, reordered or inserted.

    Prints one line; exits 1 naming the first bad record. Keep the printed anchor (SEQ:HASH)
    somewhere outside the database and pass it back later: that also catches a chain
    rewritten whole by someone with the database owner's rights.

    Example: sijill audit verify --anchor 1200345:9f2c...e1
    """
    from sijill.security.audit.verify import parse_anchor, verify

    try:
        anchors = [parse_anchor(text) for text in anchor]
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    actor = require_auditor("audit.verify")
    with progress_bar("verifying", "records") as update:
        report = verify(get_settings().database_url, anchors=anchors, progress=update)
    _remember(report, actor)
    head = f"{report.head_seq}:{report.head_hash}" if report.ok else None
    # echo, not rich: the verdict stays one line whatever the terminal's width.
    emit_one(
        {
            "ok": report.ok,
            "records": report.checked,
            "last_hash": report.head_hash,
            "anchor": head,
            "bad_record": report.bad_seq,
            "problem": report.problem,
            "set_aside": [list(pair) for pair in report.repaired],
            "quarantined": report.quarantined,
        },
        output,
        echo=f"{report.summary()} (anchor: {head})" if report.ok else report.summary(),
    )
    if not report.ok:
        raise typer.Exit(1)


def _remember(report, actor: str) -> None:
    """What this verification found becomes the chain's known state: a break stops every
    audited action (503) until `sijill audit repair`; /health reports it."""
    from sijill.core.db import make_engine
    from sijill.security.audit.chain import BROKEN, INTACT, remember
    from sijill.security.audit.service import timestamp

    engine = make_engine(get_settings().database_url)
    try:
        with engine.begin() as connection:
            state = INTACT if report.ok else BROKEN
            remember(connection, state, timestamp(), actor, report)
    finally:
        engine.dispose()


@audit_app.command("repair")
def repair_command(output: OutputOption = Output.table) -> None:
    """Repair a broken audit chain, as an administrator of the whole country.

    Each break verify finds is set aside (its records kept where they are, never deleted)
    and the chain re-anchored after it; every repair is itself an audit record. Then the
    records of sign-ins kept in quarantine are appended, and audited actions resume. Run
    `sijill audit verify` first, and keep what it printed.

    Example: sijill audit repair
    """
    from sijill.core.db import make_engine
    from sijill.security.audit.repair import refuse_unless_administrator, repair

    with acting_user() as (sessions, principal):
        with sessions() as session:
            refuse_unless_administrator(session, principal)
        engine = make_engine(get_settings().database_url)
        try:
            result = repair(engine, principal)
        finally:
            engine.dispose()
    set_aside = ", ".join(f"{first}..{last} ({kind})" for first, last, kind in result.repaired)
    emit_one(
        {
            "repaired": [list(item) for item in result.repaired],
            "released": result.released,
            "ok": result.report.ok,
            "last_hash": result.report.head_hash,
        },
        output,
        echo=(
            f"set aside: {set_aside or 'nothing'}; {result.released} quarantined records "
            f"appended; {result.report.summary()}"
        ),
    )


def _since(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"--since must be a date or an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


SHOW_COLUMNS = [
    "seq",
    Column("at", "at (UTC)"),
    "actor",
    "role",
    "action",
    "outcome",
    "record",
    "purpose",
    Column("request_id", "request"),
]


@audit_app.command("show")
def show_command(
    actor: str | None = typer.Option(None, help="only this user's actions"),
    record_id: str | None = typer.Option(None, help="only actions on this registry ID"),
    since: str | None = typer.Option(None, help="only from this date or time (UTC if no zone)"),
    limit: int = typer.Option(50, min=1, help="at most this many records"),
    output: OutputOption = Output.table,
) -> None:
    """Show the latest audit records, newest first (they hold no personal data).

    Example: sijill audit show --record-id 1000561627 --since 2026-01-01
    """
    from sijill.core.db import make_engine, session_factory
    from sijill.security.audit.service import latest

    require_auditor("audit.show")
    engine = make_engine(get_settings().database_url)
    with session_factory(engine)() as session:
        records = latest(
            session,
            actor=actor,
            record_id=record_id,
            since=_since(since) if since else None,
            limit=limit,
        )
    engine.dispose()
    rows = [
        {
            "seq": record.seq,
            "at": record.at,
            "actor": record.actor,
            "role": record.role,
            "action": record.action,
            "outcome": record.outcome,
            "record": f"{record.record_type or ''} {record.record_id or ''}".strip() or None,
            "purpose": record.purpose,
            "request_id": record.request_id,
        }
        for record in records
    ]
    emit(rows, SHOW_COLUMNS, output)
    if not records:
        console.print("No audit records match.")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
