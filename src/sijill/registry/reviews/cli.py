"""`sijill review-flags list` and `sijill review-flags decide`: the review flags, for a
national registrar (the API's rule, `registry.reviews.service.require_reviewer`)."""

import typer

from sijill.registry.reviews.models import DECISIONS, KINDS, OPEN, STATES
from sijill.security.cli_common import (
    Column,
    Output,
    OutputOption,
    acting_user,
    audited_transaction,
    console,
    emit,
    emit_one,
    fail,
)

review_app = typer.Typer(
    help="Pairs of records flagged for a reviewer (national registrars).", no_args_is_help=True
)

LIST_COLUMNS = [
    Column("flag_id", "flag"),
    "kind",
    "state",
    Column("person_a", "person"),
    Column("household_a", "household"),
    Column("person_b", "other person"),
    Column("household_b", "other household"),
    "source",
    Column("raised_at", "raised (UTC)"),
    "decision",
    "decided_by",
]


def _row(flag) -> dict:
    first, second = flag.records
    return {
        "flag_id": flag.flag_id,
        "kind": flag.kind,
        "state": flag.state,
        "person_a": first.person_id,
        "household_a": first.household_id,
        "person_b": second.person_id,
        "household_b": second.household_id,
        "reason": flag.reason,
        "source": flag.source,
        "raised_by": flag.raised_by,
        "raised_at": flag.raised_at.isoformat(),
        "decision": flag.decision,
        "decided_by": flag.decided_by,
        "decided_at": flag.decided_at.isoformat() if flag.decided_at else None,
    }


def _choice(value: str | None, allowed: tuple[str, ...], option: str) -> str | None:
    if value is not None and value not in allowed:
        raise fail(f"{option} must be one of {', '.join(allowed)}: got '{value}'")
    return value


@review_app.command("list")
def list_command(
    state: str = typer.Option(OPEN, help=f"{' or '.join(STATES)}, or 'all'"),
    kind: str | None = typer.Option(None, help=f"only this kind: {', '.join(KINDS)}"),
    page: int = typer.Option(1, min=1, help="1 for the first page"),
    page_size: int = typer.Option(50, min=1, max=1000, help="flags per page"),
    output: OutputOption = Output.table,
) -> None:
    """List the pairs of records flagged for review, oldest first (open ones by default).

    Example: sijill review-flags list --kind duplicate_national_id --output csv
    """
    from sijill.registry.reviews.service import list_flags

    wanted = None if state == "all" else _choice(state, STATES, "--state")
    _choice(kind, KINDS, "--kind")
    with (
        acting_user() as (sessions, principal),
        audited_transaction(sessions, principal) as session,
    ):
        flags, total = list_flags(
            session, principal, state=wanted, kind=kind, page=page, page_size=page_size
        )
    emit([_row(flag) for flag in flags], LIST_COLUMNS, output)
    if output is Output.table:
        console.print(f"{total:,} flags match; page {page} shows {len(flags)}.")


@review_app.command("decide")
def decide_command(
    flag_id: int = typer.Argument(..., min=1, help="the flag's ID (from `review-flags list`)"),
    decision: str = typer.Argument(..., help=f"{', '.join(DECISIONS)}"),
    output: OutputOption = Output.table,
) -> None:
    """Decide an open flag: same_person (the linkage stage merges them), different_persons
    (one of the numbers is wrong) or dismissed.

    Example: sijill review-flags decide 12 different_persons
    """
    from sijill.registry.reviews.service import decide_flag

    _choice(decision, DECISIONS, "DECISION")
    with (
        acting_user() as (sessions, principal),
        audited_transaction(sessions, principal) as session,
    ):
        flag = decide_flag(session, principal, flag_id, decision)
    emit_one(_row(flag), output, message=f"Flag {flag.flag_id} decided: {flag.decision}.")


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review-flags")
