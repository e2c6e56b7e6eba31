"""Running a program over the registry: eligibility, ranking and enrollment in bulk.

An eligibility run reads a feature snapshot (a new one by default: the registry as of the
run's date, consenting households in the user's scope) and the scoring runs the spec names
(the latest on that snapshot, scored now if there is none), evaluates the spec's rules in
DuckDB, and records the run, one narrow decision per household (COPY on PostgreSQL) and the
enrollment transitions it causes (selected households not enrolled yet are notified), with
one audit record, in one transaction: a run writes everything or nothing. A dry run stops
before writing and reports the counts and the cost per cycle.

A recertification run re-evaluates the enrolled and notified households on the current
registry: those that meet an exit rule leave, those due for recertification that no longer
pass leave, the others are recertified for another period; each change is an event.

Re-running a spec on the same snapshot changes nothing: the earlier run is returned.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.errors import Conflict, InvalidInput, NotFound
from sijill.core.settings import Settings
from sijill.programs import rules
from sijill.programs.benefits import parse_formula
from sijill.programs.checks import check_spec
from sijill.programs.enrollment import notify, recertify
from sijill.programs.models import (
    NOT_ELIGIBLE,
    SELECTED,
    WAITLISTED,
    EligibilityDecision,
    ProgramRun,
    ProgramVersion,
)
from sijill.programs.scores import find_score_runs, read_scores
from sijill.programs.spec import ProgramSpec
from sijill.programs.writes import write_rows
from sijill.security.area_scope import run_area
from sijill.security.audit.service import append
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.targeting.service import load_snapshot, take_snapshot, timer

ELIGIBILITY, RECERTIFICATION = "eligibility", "recertification"
RUN_RECORD = "program_run"
Stage = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class ProgramReport:
    run_id: int | None  # None for a dry run
    program: str
    version: int
    kind: str
    as_of: date
    snapshot_id: int
    households_assessed: int
    households_without_consent: int
    eligible: int
    selected: int
    waitlisted: int
    cost_per_cycle: int | None  # minor units
    currency: str
    transitions: dict[str, int] = field(default_factory=dict)
    failed_by_clause: dict[str, int] = field(default_factory=dict)
    unchanged: bool = False  # the same spec had already run on this snapshot
    dry_run: bool = False
    seconds: dict[str, float] = field(default_factory=dict)  # by step, and the total


def run_program(
    engine: Engine,
    settings: Settings,
    *,
    principal: Principal,
    spec_path: Path | None = None,
    spec: ProgramSpec | None = None,
    as_of: date | None = None,
    area_code: str | None = None,
    snapshot_id: int | None = None,
    dry_run: bool = False,
    kind: str = ELIGIBILITY,
    job_id: int | None = None,
    stage: Stage = _quiet,
) -> ProgramReport:
    """Evaluate a spec over the registry and record (unless `dry_run`) what it decided."""
    if kind not in (ELIGIBILITY, RECERTIFICATION):
        raise ValueError(f"kind {kind!r}")
    spec = spec if spec is not None else check_spec(spec_path).spec
    formula = parse_formula(spec)
    started, began = timer()
    clock_at = _Stopwatch(began)
    with Session(engine) as session:
        principal.require(Permission.PROGRAMS_RUN)
        area_id = run_area(
            session, principal, Permission.PROGRAMS_RUN, area_code,
            whole_registry="Running a program over the whole registry",
        )  # fmt: skip
        _check_version(session, spec)
        snapshot = None
        if snapshot_id is not None:
            snapshot = load_snapshot(session, settings, principal, snapshot_id)
    if snapshot is not None:
        # The rules are those of the day the features describe: one date for both.
        if as_of is not None and as_of != snapshot.record.as_of:
            raise InvalidInput(
                f"feature snapshot {snapshot_id} is as of {snapshot.record.as_of}, not {as_of}"
            )
        if snapshot.record.area_id != area_id:
            raise InvalidInput(f"feature snapshot {snapshot_id} covers another area than the run")
        as_of = snapshot.record.as_of
    as_of = as_of or started.date()
    values = spec.values_on(as_of)  # a parameter without a value on that day stops here
    if snapshot is None:
        snapshot = take_snapshot(
            engine, settings, principal=principal, as_of=as_of, area_code=area_code, stage=stage
        )
    clock_at.lap("snapshot")
    score_runs = find_score_runs(engine, settings, principal, spec, snapshot, stage)
    clock_at.lap("scoring")
    if not dry_run:
        earlier = _same_run(engine, spec, kind, snapshot, score_runs, as_of)
        if earlier is not None:
            return _report_of(earlier, spec, unchanged=True)
    stage("evaluating the rules")
    compiled = rules.compile_rules(spec, formula, as_of, values)
    view = snapshot.columns(["household_id", *spec.feature_names(), *_formula_columns(formula)])
    scores = {name: read_scores(engine, settings, run_id) for name, run_id in score_runs.items()}
    clock_at.lap("reading")
    decisions = rules.evaluate(compiled, view, scores)
    counts = _counts(decisions, compiled)
    clock_at.lap("evaluating")
    report = ProgramReport(
        run_id=None,
        program=spec.code,
        version=spec.version,
        kind=kind,
        as_of=as_of,
        snapshot_id=snapshot.record.id,
        households_assessed=decisions.height,
        households_without_consent=snapshot.record.households_without_consent,
        currency=spec.currency,
        dry_run=dry_run,
        **counts,
    )
    report.seconds = clock_at.laps
    if dry_run:
        return report
    stage("recording the decisions")
    parameters = {
        name: {
            "value": str(parameter.in_force(as_of).value),
            "since": parameter.in_force(as_of).start.isoformat(),
            "reference": parameter.in_force(as_of).reference or parameter.reference,
            "unit": parameter.unit,
        }
        for name, parameter in spec.parameters.items()
    }
    with Session(engine, expire_on_commit=False) as session, session.begin():
        _register_version(session, spec, principal)
        run = ProgramRun(
            program=spec.code,
            version=spec.version,
            digest=spec.digest,
            kind=kind,
            as_of=as_of,
            area_id=area_id,
            snapshot_id=snapshot.record.id,
            score_runs=score_runs,
            parameters=parameters,
            clauses=compiled.clauses,
            job_id=job_id,
            run_by=principal.username,
            started_at=started,
            households_assessed=report.households_assessed,
            households_without_consent=report.households_without_consent,
            eligible=report.eligible,
            selected=report.selected,
            waitlisted=report.waitlisted,
            cost_per_cycle=report.cost_per_cycle,
        )
        session.add(run)
        session.flush()
        _write_decisions(session, run.id, decisions)
        clock_at.lap("writing_decisions")
        if kind == ELIGIBILITY:
            transitions = notify(session, spec, run, decisions, principal)
        else:
            transitions = recertify(session, spec, run, decisions, principal)
        clock_at.lap("enrollment")
        run.summary = {
            "transitions": transitions,
            "failed_by_clause": report.failed_by_clause,
            "seconds": clock_at.laps,
        }
        run.finished_at = clock.utcnow()
        principal.audit(
            f"programs.{kind}", "ok", RUN_RECORD, str(run.id), permission=Permission.PROGRAMS_RUN
        )
        append(session, principal.take_audit())
    clock_at.lap("committing")
    report.run_id = run.id
    report.transitions = transitions
    report.seconds = clock_at.laps
    return report


class _Stopwatch:
    """Seconds spent in each step of a run, for its record and the benchmarks."""

    def __init__(self, began: float):
        self.began = self.last = began
        self.laps: dict[str, float] = {}

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.laps[step] = round(now - self.last, 3)
        self.laps["total"] = round(now - self.began, 3)
        self.last = now


def _formula_columns(formula) -> list[str]:
    return sorted(formula.columns()) if formula is not None else []


def _check_version(session: Session, spec: ProgramSpec) -> None:
    known = session.get(ProgramVersion, (spec.code, spec.version))
    if known is not None and known.digest != spec.digest:
        raise Conflict(
            f"version {spec.version} of {spec.code} has already run with other rules: "
            "raise the version to change them"
        )


def _register_version(session: Session, spec: ProgramSpec, principal: Principal) -> None:
    if session.get(ProgramVersion, (spec.code, spec.version)) is None:
        session.add(
            ProgramVersion(
                program=spec.code,
                version=spec.version,
                digest=spec.digest,
                body=_jsonable(spec.document),
                registered_by=principal.username,
                registered_at=clock.utcnow(),
            )
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, str | int | bool) or value is None:
        return value
    return str(value)  # dates and decimals, as written


def _same_run(engine, spec, kind, snapshot, score_runs, as_of) -> ProgramRun | None:
    with Session(engine, expire_on_commit=False) as session:
        runs = session.scalars(
            select(ProgramRun).where(
                ProgramRun.program == spec.code,
                ProgramRun.digest == spec.digest,
                ProgramRun.kind == kind,
                ProgramRun.snapshot_id == snapshot.record.id,
                ProgramRun.as_of == as_of,
            )
        ).all()
    return next((run for run in runs if run.score_runs == score_runs), None)


def _report_of(run: ProgramRun, spec: ProgramSpec, unchanged: bool = False) -> ProgramReport:
    summary = run.summary or {}
    return ProgramReport(
        run_id=run.id,
        program=run.program,
        version=run.version,
        kind=run.kind,
        as_of=run.as_of,
        snapshot_id=run.snapshot_id,
        households_assessed=run.households_assessed,
        households_without_consent=run.households_without_consent,
        eligible=run.eligible,
        selected=run.selected,
        waitlisted=run.waitlisted,
        cost_per_cycle=run.cost_per_cycle,
        currency=spec.currency,
        transitions={} if unchanged else summary.get("transitions", {}),
        failed_by_clause=summary.get("failed_by_clause", {}),
        unchanged=unchanged,
    )


def _counts(decisions: pl.DataFrame, compiled: rules.Compiled) -> dict[str, Any]:
    status = decisions["status"]
    selected = decisions.filter(pl.col("status") == SELECTED)
    failed = {
        clause["name"]: int((decisions["passed"] & (1 << index) == 0).sum())
        for index, clause in enumerate(compiled.clauses)
    }
    cost = None
    if decisions.height and decisions["amount"].null_count() < decisions.height:
        cost = int(selected["amount"].fill_null(0).sum())
    return {
        "eligible": int((status != NOT_ELIGIBLE).sum()),
        "selected": int((status == SELECTED).sum()),
        "waitlisted": int((status == WAITLISTED).sum()),
        "cost_per_cycle": cost,
        "failed_by_clause": failed,
    }


def _write_decisions(session: Session, run_id: int, decisions: pl.DataFrame) -> None:
    rows = decisions.select(
        pl.lit(run_id, pl.Int64).alias("run_id"),
        "household_id",
        "status",
        "passed",
        "rank",
    )
    write_rows(session, EligibilityDecision.__table__, rows)


def get_run(session: Session, principal: Principal, run_id: int) -> ProgramRun:
    run = session.get(ProgramRun, run_id)
    scope = principal.scope(session, Permission.PROGRAMS_READ)
    allowed = run is not None and (
        scope.national if run.area_id is None else scope.allows(run.area_id)
    )
    if not allowed:
        raise NotFound(f"There is no program run {run_id} in your scope")
    return run


def run_record(run: ProgramRun) -> dict[str, Any]:
    """A run as its readers see it: what it was decided from, and its counts."""
    return {
        "run_id": run.id,
        "program": run.program,
        "version": run.version,
        "digest": run.digest,
        "kind": run.kind,
        "as_of": run.as_of.isoformat(),
        "snapshot_id": run.snapshot_id,
        "score_runs": run.score_runs,
        "parameters": run.parameters,
        "clauses": run.clauses,
        "run_by": run.run_by,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "households_assessed": run.households_assessed,
        "households_without_consent": run.households_without_consent,
        "eligible": run.eligible,
        "selected": run.selected,
        "waitlisted": run.waitlisted,
        "cost_per_cycle": run.cost_per_cycle,
        "summary": run.summary or {},
    }
