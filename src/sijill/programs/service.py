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

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.errors import Conflict, InvalidInput, NotFound
from sijill.core.pg_copy import copy_frame
from sijill.core.settings import Settings
from sijill.programs import rules
from sijill.programs.benefits import parse_formula
from sijill.programs.models import (
    DECLINED,
    ENROLLED,
    EXITED,
    NOT_ELIGIBLE,
    NOTIFIED,
    SELECTED,
    WAITLISTED,
    EligibilityDecision,
    Enrollment,
    EnrollmentEvent,
    ProgramRun,
    ProgramVersion,
)
from sijill.programs.spec import ProgramSpec, load_spec
from sijill.registry.models import Household
from sijill.security.area_scope import run_area
from sijill.security.audit.service import append
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.targeting.inputs import read_query
from sijill.targeting.models import PmtModel, TargetingRun
from sijill.targeting.runs import run_mpi, score_pmt
from sijill.targeting.service import Snapshot, load_snapshot, take_snapshot, timer

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
    spec = spec if spec is not None else load_spec(spec_path)
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
    score_runs = _score_runs(engine, settings, principal, spec, snapshot, stage)
    clock_at.lap("scoring")
    if not dry_run:
        earlier = _same_run(engine, spec, kind, snapshot, score_runs, as_of)
        if earlier is not None:
            return _report_of(earlier, spec, unchanged=True)
    stage("evaluating the rules")
    compiled = rules.compile_rules(spec, formula, as_of, values)
    view = snapshot.columns(["household_id", *spec.feature_names(), *_formula_columns(formula)])
    scores = {name: _scores(engine, settings, run_id) for name, run_id in score_runs.items()}
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
            transitions = _notify(session, spec, run, decisions, principal)
        else:
            transitions = _recertify(session, spec, run, decisions, principal)
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


def _score_runs(
    engine: Engine,
    settings: Settings,
    principal: Principal,
    spec: ProgramSpec,
    snapshot: Snapshot,
    stage: Stage,
) -> dict[str, int]:
    """Each named score's run on this snapshot: the latest one, or a new one."""
    found: dict[str, int] = {}
    for score in spec.scores:
        model = score.model
        with Session(engine) as session:
            if score.kind == "pmt" and model is None:
                model = session.scalar(
                    select(PmtModel.version)
                    .where(PmtModel.approved_at.is_not(None))
                    .order_by(PmtModel.approved_at.desc())
                    .limit(1)
                )
                if model is None:
                    raise InvalidInput(
                        f"score {score.name}: there is no approved PMT model yet "
                        "(sijill pmt fit, then sijill pmt approve)"
                    )
            query = select(TargetingRun.id).where(
                TargetingRun.snapshot_id == snapshot.record.id,
                TargetingRun.kind == score.kind,
                TargetingRun.finished_at.is_not(None),
            )
            if model is not None:
                query = query.where(TargetingRun.model_version == model)
            run_id = session.scalar(query.order_by(TargetingRun.id.desc()).limit(1))
        if run_id is None:
            stage(f"scoring {score.name}")
            scorer = score_pmt if score.kind == "pmt" else run_mpi
            extra = {"model_version": model} if score.kind == "pmt" else {}
            run_id = scorer(
                engine, settings, principal=principal, snapshot_id=snapshot.record.id, **extra
            ).run_id
        found[score.name] = run_id
    return found


def _scores(engine: Engine, settings: Settings, run_id: int) -> pl.DataFrame:
    """A scoring run's scores. A finished run's scores never change, so the first read (by
    COPY) is kept as Parquet in the private work folder and every later program reads that:
    ten programs on one national snapshot read the registry's scores once."""
    with Session(engine) as session:
        started = session.scalar(select(TargetingRun.started_at).where(TargetingRun.id == run_id))
    folder = settings.work_dir / "targeting" / "scores"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The start time tells a run from another of the same number in a registry made afresh.
    path = folder / f"run-{run_id}-{started:%Y%m%dT%H%M%S%f}.parquet"
    if path.is_file():
        return pl.read_parquet(path)
    query = f"SELECT household_id, score FROM household_score WHERE run_id = {int(run_id)}"
    schema = {"household_id": pl.Int64, "score": pl.Float64}
    scores = read_query(engine, query, schema, settings.work_dir)
    partial = path.with_name(f".{path.name}.partial")
    scores.write_parquet(partial)
    partial.chmod(0o600)
    partial.rename(path)
    return scores


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


def _copy_rows(session: Session, table: str, rows: pl.DataFrame) -> None:
    """Rows into a table: COPY on PostgreSQL, executemany elsewhere."""
    if not rows.height:
        return
    if session.bind.dialect.name != "postgresql":
        model = {"eligibility_decision": EligibilityDecision, "enrollment_event": EnrollmentEvent}
        target = model.get(table, Enrollment)
        session.execute(insert(target), rows.to_dicts())
        return
    if "household_id" in rows.columns:
        # In key order, each index grows at its right edge instead of at random pages.
        rows = rows.sort("household_id")
    copy_frame(session.connection().connection.driver_connection, table, rows)


def _write_decisions(session: Session, run_id: int, decisions: pl.DataFrame) -> None:
    rows = decisions.select(
        pl.lit(run_id, pl.Int64).alias("run_id"),
        "household_id",
        "status",
        "passed",
        "rank",
    )
    _copy_rows(session, "eligibility_decision", rows)


def _current(session: Session, program: str) -> pl.DataFrame:
    """Where every household of the program stands, read in the run's own transaction (by
    COPY on PostgreSQL: a national program holds millions)."""
    schema = {"household_id": pl.Int64, "status": pl.String, "recertify_on": pl.Date}
    if session.bind.dialect.name == "postgresql":
        raw = session.connection().connection.driver_connection
        query = (
            "COPY (SELECT household_id, status, recertify_on FROM enrollment "
            "WHERE program = %s) TO STDOUT (FORMAT csv)"
        )
        buffer = io.BytesIO()
        with raw.cursor() as cursor, cursor.copy(query, (program,)) as copy:
            for chunk in copy:
                buffer.write(chunk)
        if not buffer.tell():
            return pl.DataFrame(schema=schema)
        buffer.seek(0)
        return pl.read_csv(buffer, has_header=False, new_columns=list(schema), schema=schema)
    rows = session.execute(
        select(Enrollment.household_id, Enrollment.status, Enrollment.recertify_on).where(
            Enrollment.program == program
        )
    ).all()
    return pl.DataFrame(rows, schema=schema, orient="row")


def _events(changes: pl.DataFrame, run: ProgramRun, principal: Principal, to: str) -> pl.DataFrame:
    """Event rows for `changes` (household_id, from_status, reason): all made by this run."""
    return changes.select(
        pl.lit(run.program).alias("program"),
        "household_id",
        pl.lit(run.id, pl.Int64).alias("run_id"),
        pl.col("from_status").cast(pl.String),
        pl.lit(to).alias("to_status"),
        pl.lit(run.as_of).alias("on_date"),
        pl.lit(clock.utcnow()).alias("recorded_at"),
        pl.lit(principal.username).alias("recorded_by"),
        pl.col("reason").cast(pl.String),
        pl.lit(False).alias("by_hand"),
    )


_BATCH = 10_000  # households per UPDATE: a bounded statement, whatever the run's size


def _update(session: Session, program: str, ids: pl.Series, **values: Any) -> None:
    for start in range(0, ids.len(), _BATCH):
        chunk = ids.slice(start, _BATCH)
        session.execute(
            Enrollment.__table__.update()
            .where(Enrollment.program == program, Enrollment.household_id.in_(chunk.to_list()))
            .values(**values)
        )


def _notify(
    session: Session, spec: ProgramSpec, run: ProgramRun, decisions: pl.DataFrame, principal
) -> dict[str, int]:
    """Selected households not in the program are notified; so are those that had left it.
    Households already notified, enrolled or that declined are left as they are."""
    current = _current(session, spec.code)
    selected = decisions.filter(pl.col("status") == SELECTED).select("household_id")
    fresh = selected.join(current.select("household_id"), on="household_id", how="anti")
    returning = selected.join(
        current.filter(pl.col("status") == EXITED).select("household_id"),
        on="household_id",
        how="semi",
    )
    _update(
        session, spec.code, returning["household_id"],
        status=NOTIFIED, since=run.as_of, run_id=run.id, recertify_on=None,
    )  # fmt: skip
    rows = fresh.select(
        pl.lit(spec.code).alias("program"),
        "household_id",
        pl.lit(NOTIFIED).alias("status"),
        pl.lit(run.as_of).alias("since"),
        pl.lit(run.id, pl.Int64).alias("run_id"),
        pl.lit(None, pl.Date).alias("recertify_on"),
    )
    _copy_rows(session, "enrollment", rows)
    changes = pl.concat(
        [
            fresh.with_columns(from_status=pl.lit(None, pl.String)),
            returning.with_columns(from_status=pl.lit(EXITED)),
        ]
    ).with_columns(reason=pl.lit("selected"))
    _copy_rows(session, "enrollment_event", _events(changes, run, principal, NOTIFIED))
    return {"notified": fresh.height, "notified_again": returning.height}


def _recertify(
    session: Session, spec: ProgramSpec, run: ProgramRun, decisions: pl.DataFrame, principal
) -> dict[str, int]:
    """Enrolled and notified households leave on an exit rule, or when due for
    recertification and no longer eligible; the others due are recertified for a period."""
    current = _current(session, spec.code).filter(pl.col("status").is_in([NOTIFIED, ENROLLED]))
    # Households in the program but not in this run's snapshot (moved out of the area,
    # withdrew consent) are left as they are: the run cannot see them.
    judged = current.join(
        decisions.select("household_id", pl.col("status").alias("decision"), "exits"),
        on="household_id",
    )
    exit_reason = pl.lit(None, pl.String)
    for index, clause in reversed(list(enumerate(spec.exits))):  # the first matching rule
        matched = (pl.col("exits") & (1 << index)) != 0
        exit_reason = pl.when(matched).then(pl.lit(f"exit:{clause.name}")).otherwise(exit_reason)
    due = pl.col("recertify_on").is_not_null() & (pl.col("recertify_on") <= run.as_of)
    judged = judged.with_columns(
        reason=pl.when(exit_reason.is_not_null())
        .then(exit_reason)
        .when(due & (pl.col("decision") == NOT_ELIGIBLE))
        .then(pl.lit("not_eligible_at_recertification")),
        due=due,
    )
    gone = judged.filter(pl.col("reason").is_not_null())
    renewed = judged.filter(pl.col("reason").is_null() & pl.col("due"))
    _update(
        session, spec.code, gone["household_id"],
        status=EXITED, since=run.as_of, run_id=run.id, recertify_on=None,
    )  # fmt: skip
    changes = gone.select("household_id", pl.col("status").alias("from_status"), "reason")
    _copy_rows(session, "enrollment_event", _events(changes, run, principal, EXITED))
    months = spec.recertification_months or 0
    if months:
        _update(
            session, spec.code, renewed["household_id"],
            recertify_on=_add_months(run.as_of, months), run_id=run.id,
        )  # fmt: skip
        changes = renewed.select(
            "household_id", pl.col("status").alias("from_status"), reason=pl.lit("recertified")
        )
        _copy_rows(session, "enrollment_event", _events(changes, run, principal, ENROLLED))
    return {"exited": gone.height, "recertified": renewed.height}


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def enroll(
    engine: Engine,
    *,
    principal: Principal,
    program: str,
    household_ids: list[int],
    answer: str,
    on: date | None = None,
) -> int:
    """Record notified households' answers: enrolled (from `on`, due for recertification
    after the program's period) or declined. Every household must be notified in this program
    and lie in the user's scope; otherwise nothing is recorded."""
    if answer not in (ENROLLED, DECLINED):
        raise InvalidInput(f"the answer is {ENROLLED} or {DECLINED}")
    on = on or clock.utcnow().date()
    wanted = sorted(set(household_ids))
    with Session(engine) as session, session.begin():
        principal.require(Permission.PROGRAMS_ENROLL)
        scope = principal.scope(session, Permission.PROGRAMS_ENROLL)
        rows = session.execute(
            select(Enrollment, Household.area_id)
            .join(Household, Household.id == Enrollment.household_id)
            .where(Enrollment.program == program, Enrollment.household_id.in_(wanted))
        ).all()
        found = {row.Enrollment.household_id: row for row in rows if scope.allows(row.area_id)}
        missing = [h for h in wanted if h not in found]
        if missing:
            raise NotFound(
                f"{len(missing)} of the households are not in program {program} in your scope "
                f"(first: {missing[0]})"
            )
        pending = [h for h in wanted if found[h].Enrollment.status != NOTIFIED]
        if pending:
            raise Conflict(
                f"{len(pending)} of the households are not waiting for an answer "
                f"(first: {pending[0]}, {found[pending[0]].Enrollment.status})"
            )
        version = session.scalar(
            select(ProgramVersion.body)
            .where(ProgramVersion.program == program)
            .order_by(ProgramVersion.version.desc())
            .limit(1)
        )
        months = (version or {}).get("recertification_months")
        now = clock.utcnow()
        for household_id in wanted:
            enrollment = found[household_id].Enrollment
            enrollment.status = answer
            enrollment.since = on
            if answer == ENROLLED and isinstance(months, int):
                enrollment.recertify_on = _add_months(on, months)
            session.add(
                EnrollmentEvent(
                    program=program,
                    household_id=household_id,
                    run_id=None,
                    from_status=NOTIFIED,
                    to_status=answer,
                    on_date=on,
                    recorded_at=now,
                    recorded_by=principal.username,
                    reason="answered",
                    by_hand=True,
                )
            )
        principal.audit(
            f"programs.{answer}", "ok", "enrollment", program, permission=Permission.PROGRAMS_ENROLL
        )
        append(session, principal.take_audit())
    return len(wanted)


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
