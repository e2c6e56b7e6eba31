"""`sijill dedup`: duplicate persons within the registry or an area, proposed for review;
`sijill link`: another agency's list matched to registry persons."""

from datetime import datetime
from pathlib import Path

import typer

from sijill.core.errors import InvalidInput
from sijill.core.settings import get_settings
from sijill.security.cli_common import (
    Output,
    OutputOption,
    acting_user,
    audited_transaction,
    console,
    emit,
    emit_one,
    fail,
    progress_bar,
)


def dedup_command(
    area: str | None = typer.Option(
        None, "--area", help="only the households of this area (a code), and below it"
    ),
    model: Path | None = typer.Option(
        None, "--model", help="score with this saved model instead of training one"
    ),
    save_model: Path | None = typer.Option(
        None, "--save-model", help="write the model the run used (JSON) to this file"
    ),
    threshold: float | None = typer.Option(
        None,
        "--threshold",
        help="propose pairs from this match probability (default: the setting "
        "linkage_review_threshold)",
    ),
    output: OutputOption = Output.table,
) -> None:
    """Find persons registered twice and propose each pair to the review queue.

    The model is trained on the registry itself (or read with --model); every pair at or above
    the threshold becomes a review flag of kind possible_duplicate, unless a reviewer already
    said the two are not the same person. `sijill review-flags list` shows them.

    Example: sijill dedup --area SJ01 --save-model model-2026-11.json
    """
    from sijill.jobs.runner import JobRunner
    from sijill.linkage.jobs import DEDUP_JOB, DedupParams, outcome
    from sijill.linkage.model import load

    if threshold is not None and not 0 < threshold < 1:
        raise fail(f"--threshold must be a probability between 0 and 1: got {threshold}")
    try:
        saved = load(model) if model is not None else None
    except InvalidInput as error:
        raise fail(str(error)) from None
    settings = get_settings()
    with (
        acting_user(settings) as (sessions, principal),
        progress_bar("deduplicating", "steps") as update,
        JobRunner(sessions, settings) as runner,
    ):
        report = runner.run(
            DEDUP_JOB,
            DedupParams(area, saved, str(save_model) if save_model else None, threshold),
            principal,
            progress=update,
            stage=lambda what: update(description=what),
        )
    emit_one(
        outcome(report),
        output,
        message=f"{report.records:,} persons compared ({report.seconds:.1f} s, model "
        f"{report.model_version}): {report.pairs_proposed:,} pairs at or above the threshold, "
        f"{report.flags_raised:,} new review flags ({report.already_open:,} already open, "
        f"{report.decided_before:,} decided 'not the same' before). Run {report.run_id}.",
        soft_wrap=True,
    )


def review_pair_command(
    flag_id: int = typer.Argument(..., help="the review flag's ID (sijill review-flags list)"),
    output: OutputOption = Output.table,
) -> None:
    """Show a flagged pair side by side: both records, the fields that differ, and the linkage
    model's evidence. Decide it with `sijill review-flags decide`.

    Example: sijill review-pair 42
    """
    from sijill.linkage.review import pair_view

    settings = get_settings()
    with (
        acting_user(settings) as (sessions, principal),
        audited_transaction(sessions, principal) as session,
    ):
        view = pair_view(session, principal, flag_id).model_dump(mode="json")
    if output is not Output.table:
        emit_one(view, output)
        return
    first, second = view["records"]
    rows = [
        {
            "field": key,
            "first": _shown(first.get(key)),
            "second": _shown(second.get(key)),
            "differs": "≠" if key in view["differing"] else "",
        }
        for key in sorted(first.keys() | second.keys())
    ]
    evidence = view["evidence"]
    if evidence:
        rows += [
            {
                "field": f"[{name}]",
                "first": part["level"],
                "second": f"{part['weight']:+.2f}",
                "differs": "",
            }
            for name, part in evidence["levels"].items()
        ]
    emit(rows, ["field", "first", "second", "differs"], output)
    if evidence:
        console.print(
            f"match probability {evidence['match_probability']:.4f}, weight "
            f"{evidence['match_weight']:.2f}, model {evidence['model_version']}"
        )


def link_command(
    against: Path = typer.Option(
        ..., "--against", help="the outside list: a CSV, XLSX or Parquet file, a person a row"
    ),
    kind: str = typer.Option(..., "--kind", help="civil, payroll, tax or beneficiaries"),
    mapping: Path | None = typer.Option(
        None, "--mapping", "-m", help="YAML mapping of the list's columns (docs/import-mapping.md)"
    ),
    model: Path | None = typer.Option(
        None, "--model", help="score with this saved model instead of training one"
    ),
    threshold: float | None = typer.Option(
        None,
        "--threshold",
        help="match from this probability (default: the setting linkage_review_threshold)",
    ),
    as_of: datetime | None = typer.Option(
        None,
        "--as-of",
        formats=["%Y-%m-%d"],
        help="the day the list describes: payroll and program facts hold from it (default: "
        "today; a tax list's facts hold from its tax_year)",
    ),
    report: Path | None = typer.Option(
        None, "--report", help="where to write unmatched lines (default: LIST.unmatched.csv)"
    ),
    output: OutputOption = Output.table,
) -> None:
    """Match another agency's list to registry persons and record what it says.

    civil: deaths mark persons deceased (a new version, their membership ended, the household
    flagged for review); payroll, tax, beneficiaries: dated facts on the persons. Every line
    gets its best match at or above the threshold, or none: unmatched lines and lines that
    cannot be read go to a report with their line and reason.

    Example: sijill link --against deaths-2026-10.csv --kind civil --mapping civil.yaml
    """
    from sijill.jobs.runner import JobRunner
    from sijill.linkage.jobs import LINK_JOB, LinkParams, link_outcome
    from sijill.linkage.lists import LIST_KINDS
    from sijill.linkage.model import load

    if kind not in LIST_KINDS:
        raise fail(f"--kind must be one of {', '.join(LIST_KINDS)}: got {kind}")
    if threshold is not None and not 0 < threshold < 1:
        raise fail(f"--threshold must be a probability between 0 and 1: got {threshold}")
    try:
        saved = load(model) if model is not None else None
    except InvalidInput as error:
        raise fail(str(error)) from None
    settings = get_settings()
    params = LinkParams(
        against, kind, None, mapping, saved, threshold, as_of.date() if as_of else None, report
    )
    with (
        acting_user(settings) as (sessions, principal),
        progress_bar("linking", "steps") as update,
        JobRunner(sessions, settings) as runner,
    ):
        done = runner.run(
            LINK_JOB,
            params,
            principal,
            progress=update,
            stage=lambda what: update(description=what),
        )
    message = (
        f"{done.lines:,} lines of {done.list_file} ({done.seconds:.1f} s, model "
        f"{done.model_version}): {done.matched:,} matched, {done.unmatched:,} unmatched, "
        f"{done.rejected:,} unreadable. "
    )
    if kind == "civil":
        message += (
            f"{done.deaths_recorded:,} deaths recorded ({done.deaths_already_recorded:,} "
            f"already known), {done.flags_raised:,} review flags raised. "
        )
    else:
        message += f"{done.facts_added:,} facts added ({done.facts_present:,} already known). "
    if done.report_path:
        message += f"Unmatched lines: {done.report_path}. "
    emit_one(
        {**link_outcome(done), "report_path": done.report_path},
        output,
        message=message + f"Run {done.run_id}.",
        soft_wrap=True,
    )


def _shown(value) -> str:
    return "" if value is None else str(value)


def register(app: typer.Typer) -> None:
    app.command("dedup")(dedup_command)
    app.command("review-pair")(review_pair_command)
    app.command("link")(link_command)
