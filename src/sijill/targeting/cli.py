"""`sijill features`: the household feature view; `sijill pmt`: fit, approve and score a proxy
means test; `sijill mpi`: multidimensional poverty; `sijill targeting evaluate`: who each
design misses."""

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
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
    fail,
    progress_bar,
)

features_app = typer.Typer(help="The household feature view targeting reads.", no_args_is_help=True)
pmt_app = typer.Typer(help="The proxy means test: fit, approve, score.", no_args_is_help=True)
targeting_app = typer.Typer(help="Evaluating targeting designs.", no_args_is_help=True)

AsOf = typer.Option(
    None, "--as-of", formats=["%Y-%m-%d"], help="the registry as it was that day (default today)"
)
Area = typer.Option(None, "--area", help="only the households of this area (a code), and below")
SnapshotOption = typer.Option(
    None, "--snapshot", help="score this stored feature snapshot instead of taking a new one"
)


@features_app.command("list")
def list_features(
    language: str | None = typer.Option(
        None, "--language", help="labels in ar, fr or en (default: the language setting)"
    ),
    output: OutputOption = Output.table,
) -> None:
    """List the features: name, type, unit, label and definition.

    Example: sijill features list --language fr
    """
    from sijill.targeting.features import FEATURES

    language = language or get_settings().language
    if language not in ("ar", "fr", "en"):
        raise fail(f"--language must be ar, fr or en: got {language}")
    rows = [
        {**f.as_dict(), "label": getattr(f.labels, language), "labels": f.labels._asdict()}
        for f in FEATURES
    ]
    columns = ["name", "type", "unit", "label", "definition"]
    if output is Output.table:
        emit(rows, columns, output)
    else:
        emit(rows, [*columns, "labels"], output)


@features_app.command("snapshot")
def snapshot_command(
    as_of: datetime | None = AsOf, area: str | None = Area, output: OutputOption = Output.table
) -> None:
    """Compute the feature view of every consenting household (in your scope) and keep it.

    Scoring runs take a new snapshot unless given one (--snapshot), so every score names the
    exact feature values it was computed from.

    Example: sijill features snapshot --as-of 2026-06-30 --area SJ01
    """
    from sijill.targeting.jobs import SNAPSHOT_JOB, SnapshotParams

    outcome = _run_job(SNAPSHOT_JOB, SnapshotParams(_day(as_of), area), "computing features")
    emit_one(
        outcome,
        output,
        message=f"Snapshot {outcome['snapshot_id']} as of {outcome['as_of']}: "
        f"{outcome['households']:,} households ({outcome['households_without_consent']:,} not "
        "assessed: no consent to eligibility_assessment).",
        soft_wrap=True,
    )


@pmt_app.command("fit")
def pmt_fit(
    survey: Path = typer.Option(
        ..., "--survey", help="the survey: household_key, consumption_pc, weight, stratum"
    ),
    poverty_line: str = typer.Option(
        ..., "--poverty-line", help="per person per year, in the survey's currency"
    ),
    method: str = typer.Option("wls", "--method", help="wls (weighted least squares) or quantile"),
    regions: bool = typer.Option(False, "--regions", help="one model per governorate as well"),
    folds: int = typer.Option(5, "--folds", min=2, help="k of the k-fold validation"),
    as_of: datetime | None = typer.Option(
        None, "--as-of", formats=["%Y-%m-%d"], help="the survey's date, for ages (default today)"
    ),
    save: Path | None = typer.Option(None, "--save", help="also write the model (JSON) here"),
    output: OutputOption = Output.table,
) -> None:
    """Fit a proxy means test on a household survey and store it for approval.

    The survey's households and persons are the exchange-format files beside it. Beside the
    chosen model, quantile regression and gradient boosting are validated the same way (k-fold,
    out of sample) for comparison. Another person approves it (`sijill pmt approve`).

    Example: sijill pmt fit --survey synth/survey.parquet --poverty-line 1800
    """
    from sijill.targeting.jobs import FIT_JOB, FitParams

    line = _decimal(poverty_line, "--poverty-line")
    if method not in ("wls", "quantile"):
        raise fail(f"--method must be wls or quantile: got {method}")
    params = FitParams(survey, line, method, regions, folds, _day(as_of))
    artifact = _run_job(FIT_JOB, params, "fitting")
    if save is not None:
        save.write_text(json.dumps(artifact, indent=2, ensure_ascii=False) + "\n")
    validation = artifact["validation"]
    emit_one(
        {
            "version": artifact["version"],
            "method": method,
            "terms": len(artifact["terms"]),
            "households": artifact["data_source"]["households"],
            "validation": validation,
        },
        output,
        message=f"PMT model {artifact['version']} ({method}, {len(artifact['terms'])} terms) "
        f"fitted on {artifact['data_source']['households']:,} households. Out-of-sample R²: "
        + ", ".join(
            f"{name} {figures['r2']:.3f}" for name, figures in validation["out_of_sample"].items()
        )
        + ". Approve it with: sijill pmt approve "
        + artifact["version"],
        soft_wrap=True,
    )


@pmt_app.command("approve")
def pmt_approve(
    version: str = typer.Argument(..., help="the model's version (pmt-...)"),
    output: OutputOption = Output.table,
) -> None:
    """Approve a fitted PMT for scoring (four eyes: not by the one who fitted it).

    Example: sijill pmt approve pmt-0123456789abcdef
    """
    from sijill.security.roles import Permission
    from sijill.targeting.pmt_models import approve

    settings = get_settings()
    with (
        acting_user(settings) as (sessions, principal),
        audited_transaction(sessions, principal) as session,
    ):
        principal.require(Permission.TARGETING_APPROVE)
        model = approve(session, version, principal.username)
        principal.audit(
            "targeting.pmt_approve", "ok", "pmt_model", version,
            permission=Permission.TARGETING_APPROVE,
        )  # fmt: skip
        shown = {"version": model.version, "fitted_by": model.fitted_by,
                 "approved_by": model.approved_by}  # fmt: skip
    emit_one(shown, output, message=f"PMT model {version} approved for scoring.")


@pmt_app.command("show")
def pmt_show(
    version: str = typer.Argument(..., help="the model's version (pmt-...)"),
    output: OutputOption = Output.table,
) -> None:
    """Show a stored PMT model: its terms (table), or the whole artifact (--output json:
    coefficients, features, data source, validation, approval).

    Example: sijill pmt show pmt-0123456789abcdef -o json > model.json
    """
    from sijill.security.roles import Permission
    from sijill.targeting.pmt_models import get_model

    settings = get_settings()
    with acting_user(settings) as (sessions, principal), sessions() as session:
        if not principal.may(Permission.TARGETING_RUN):
            principal.require(Permission.TARGETING_FIT)
        model = get_model(session, version)
        shown = {**model.body, "approved_by": model.approved_by, "fitted_by": model.fitted_by}
    if output is Output.json:
        typer.echo(json.dumps(shown, indent=2, ensure_ascii=False, default=str))
        return
    rows = [{"feature": "(intercept)", "level": "", "coefficient": shown["intercept"]}]
    rows += [
        {"feature": t["feature"], "level": t["level"] or "", "coefficient": t["coefficient"],
         "std_error": t.get("std_error")}
        for t in shown["terms"]
    ]  # fmt: skip
    approver = shown["approved_by"] or "nobody yet"
    title = f"{version} ({shown['method']}), approved by {approver}"
    emit(rows, ["feature", "level", "coefficient", "std_error"], output, title=title)


@pmt_app.command("score")
def pmt_score(
    model: str = typer.Option(..., "--model", help="an approved model's version (pmt-...)"),
    as_of: datetime | None = AsOf,
    area: str | None = Area,
    snapshot: int | None = SnapshotOption,
    output: OutputOption = Output.table,
) -> None:
    """Score every consenting household (in your scope) with an approved PMT.

    Each household gets its predicted log consumption per person and whether it falls below
    the model's poverty line, recorded with the run (model, snapshot, date).

    Example: sijill pmt score --model pmt-0123456789abcdef
    """
    from sijill.targeting.jobs import PMT_JOB, PmtParams, run_outcome

    report = _run_job(PMT_JOB, PmtParams(model, _day(as_of), area, snapshot), "scoring")
    _emit_run(run_outcome(report), output)


def mpi_command(
    config: Path | None = typer.Option(
        None, "--config", help="dimensions, indicators, weights and k (default: the global MPI)"
    ),
    as_of: datetime | None = AsOf,
    area: str | None = Area,
    snapshot: int | None = SnapshotOption,
    output: OutputOption = Output.table,
) -> None:
    """Multidimensional poverty (Alkire-Foster) of every consenting household in your scope.

    Prints H, A and M0 and each indicator's contribution; the run keeps every household's
    deprivation score and the decompositions by area and group.

    Example: sijill mpi --config my-mpi.yaml
    """
    from sijill.targeting.jobs import MPI_JOB, MpiParams, run_outcome

    report = _run_job(MPI_JOB, MpiParams(config, _day(as_of), area, snapshot), "computing MPI")
    figures = run_outcome(report)
    _emit_run(figures, output)
    if output is Output.table:
        national = report.summary["national"]
        emit(
            [
                {
                    "indicator": i["name"],
                    "uncensored": _share(i["uncensored"]),
                    "censored": _share(i["censored"]),
                    "contribution_%": _share(i["contribution"], 1),
                }
                for i in report.summary["indicators"]
            ],
            ["indicator", "uncensored", "censored", "contribution_%"],
            output,
            title=f"H {_share(national['H'])}  A {_share(national['A'])}  "
            f"M0 {_share(national['M0'])}",
        )


@targeting_app.command("evaluate")
def evaluate_command(
    reference: Path = typer.Option(
        ..., "--reference", help="household_key, consumption_pc [, weight]: a survey or the truth"
    ),
    out: Path = typer.Option(..., "--out", help="the report's folder (new or empty)"),
    pmt: list[str] = typer.Option([], "--pmt", help="a PMT model's version (repeatable)"),
    mpi: bool = typer.Option(True, "--mpi/--no-mpi", help="rank by the MPI's deprivation too"),
    mpi_config: Path | None = typer.Option(None, "--mpi-config", help="default: global MPI"),
    designs: Path | None = typer.Option(None, "--designs", help="hybrid designs (YAML)"),
    coverage: float | None = typer.Option(None, "--coverage", help="share of households, 0-1"),
    budget: str | None = typer.Option(None, "--budget", help="a total to spend instead"),
    transfer: str = typer.Option("1", "--transfer", help="per household (or --per-person)"),
    per_person: bool = typer.Option(False, "--per-person", help="the transfer is per person"),
    poverty_line: str | None = typer.Option(
        None, "--poverty-line", help="per person per year (default: the poorest quintile)"
    ),
    as_of: datetime | None = AsOf,
    area: str | None = Area,
    snapshot: int | None = SnapshotOption,
    source: str | None = typer.Option(
        None, "--source", help="the import source whose household keys the reference uses"
    ),
    force: bool = typer.Option(False, "--force", help="replace an earlier report in --out"),
    output: OutputOption = Output.table,
) -> None:
    """Evaluate targeting designs against reference welfare: inclusion and exclusion errors,
    coverage of the poor and the poorest quintile, leakage, CGH, ROC/AUC and the poverty
    reduction the budget buys, each by area, sex of head, refugees, disability and size.

    Writes report.html (charts inline, works offline), PNG charts, CSV tables and tables.xlsx.

    Example: sijill targeting evaluate --reference truth_households.parquet --pmt pmt-0123...
    --coverage 0.2 --out report/
    """
    from sijill.targeting.jobs import EVALUATE_JOB, EvaluateParams

    if (coverage is None) == (budget is None):
        raise fail("give either --coverage or --budget")
    params = EvaluateParams(
        reference=reference,
        out_dir=out,
        pmt_versions=tuple(pmt),
        use_mpi=mpi,
        mpi_config=mpi_config,
        designs_file=designs,
        coverage=coverage,
        budget=_decimal(budget, "--budget") if budget is not None else None,
        transfer=_decimal(transfer, "--transfer"),
        per_person=per_person,
        poverty_line=_decimal(poverty_line, "--poverty-line") if poverty_line else None,
        as_of=_day(as_of),
        area_code=area,
        snapshot_id=snapshot,
        source=source,
        force=force,
    )
    done = _run_job(EVALUATE_JOB, params, "evaluating")
    emit_one(
        {"folder": str(done.folder), "files": list(done.files), "households": done.households,
         "unmatched": done.unmatched, "snapshot_id": done.snapshot_id},
        output,
        message=f"{len(done.designs)} designs evaluated on {done.households:,} households "
        f"({done.unmatched:,} reference rows without a registry household). Report: "
        f"{done.folder / 'report.html'}",
        soft_wrap=True,
    )  # fmt: skip


def _share(value: float | None, scale: float = 100) -> str:
    """A share as a percentage (scale 100) or a percentage as is (scale 1); hidden: blank."""
    return "" if value is None else f"{value * scale:.1f}"


def _emit_run(figures: dict, output: Output) -> None:
    emit_one(
        {k: v for k, v in figures.items() if k != "summary"} if output is Output.table else figures,
        output,
        message=f"Run {figures['run_id']} ({figures['kind']}, snapshot {figures['snapshot_id']} "
        f"as of {figures['as_of']}): {figures['households_scored']:,} households scored, "
        f"{figures['poor']:,} poor; {figures['households_without_consent']:,} not assessed "
        f"(no consent to eligibility_assessment). {figures['seconds']} s.",
        soft_wrap=True,
    )


def _run_job(kind: str, params, description: str):
    from sijill.jobs.runner import JobRunner

    settings = get_settings()
    with (
        acting_user(settings) as (sessions, principal),
        progress_bar(description, "steps") as update,
        JobRunner(sessions, settings) as runner,
    ):
        return runner.run(
            kind, params, principal, progress=update, stage=lambda what: update(description=what)
        )


def _day(value: datetime | None):
    return value.date() if value is not None else None


def _decimal(text: str, option: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise fail(f"{option} must be a number: got {text}") from None
    if not value.is_finite() or value <= 0:
        raise fail(f"{option} must be above zero: got {text}")
    return value


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")
    app.add_typer(pmt_app, name="pmt")
    app.command("mpi")(mpi_command)
    app.add_typer(targeting_app, name="targeting")
