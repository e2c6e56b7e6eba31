"""`sijill persons merge KEPT LOST` and `sijill persons unmerge MERGE_ID`: merging two records
of one person and undoing it, under the API's rules (`registry.merges.service`)."""

import typer

from sijill.core.errors import InvalidInput
from sijill.core.ids import parse_id
from sijill.registry.merges.models import KEPT, SIDES
from sijill.security.cli_common import (
    Output,
    OutputOption,
    acting_user,
    audited_transaction,
    emit_one,
    fail,
)

persons_app = typer.Typer(help="Persons: merging two records of one person.", no_args_is_help=True)


def _person(text: str, argument: str) -> int:
    try:
        return parse_id("person", text)
    except InvalidInput as error:
        raise fail(f"{argument}: {error.detail}") from None


def _row(merge) -> dict:
    return {
        "merge_id": merge.merge_id,
        "state": merge.state,
        "kept_person_id": merge.kept_person_id,
        "lost_person_id": merge.lost_person_id,
        "keep_membership_of": merge.keep_membership_of,
        "household_id": merge.household_id,
        "memberships_ended": len(merge.memberships_ended),
        "membership_created": merge.membership_created,
        "merged_by": merge.merged_by,
        "merged_at": merge.merged_at.isoformat(),
        "unmerged_by": merge.unmerged_by,
        "unmerged_at": merge.unmerged_at.isoformat() if merge.unmerged_at else None,
    }


@persons_app.command("merge")
def merge_command(
    kept: str = typer.Argument(..., help="the registry ID of the record that is kept"),
    lost: str = typer.Argument(..., help="the registry ID of the record merged into it"),
    keep_membership_of: str = typer.Option(
        KEPT,
        help="when the two live in two households, whose membership continues: kept or lost",
    ),
    output: OutputOption = Output.table,
) -> None:
    """Merge LOST into KEPT: both records and histories stay, LOST points to KEPT, and the
    memberships not continued end with the reason merged. `persons unmerge` undoes it.

    Example: sijill persons merge 482910573104 771203948812 --keep-membership-of lost
    """
    from sijill.registry.merges.service import merge_persons

    if keep_membership_of not in SIDES:
        raise fail(f"--keep-membership-of must be one of {', '.join(SIDES)}")
    kept_id, lost_id = _person(kept, "KEPT"), _person(lost, "LOST")
    with (
        acting_user() as (sessions, principal),
        audited_transaction(sessions, principal) as session,
    ):
        merge = merge_persons(
            session, principal, kept_id, lost_id, keep_membership_of=keep_membership_of
        )
    emit_one(
        _row(merge),
        output,
        message=f"Merge {merge.merge_id} made: the lost record points to the kept one.",
    )


@persons_app.command("unmerge")
def unmerge_command(
    merge_id: int = typer.Argument(..., min=1, help="the merge's ID (from `persons merge`)"),
    output: OutputOption = Output.table,
) -> None:
    """Undo a merge: both records, their memberships and households exactly as before it.

    Example: sijill persons unmerge 42
    """
    from sijill.registry.merges.service import unmerge

    with (
        acting_user() as (sessions, principal),
        audited_transaction(sessions, principal) as session,
    ):
        merge = unmerge(session, principal, merge_id)
    emit_one(_row(merge), output, message=f"Merge {merge.merge_id} undone.")


def register(app: typer.Typer) -> None:
    app.add_typer(persons_app, name="persons")
