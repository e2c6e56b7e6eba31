"""Enrollment: where each household stands in a program, and every move it makes.

A run's selected households not in the program are notified (and so are those that had left
it); a caseworker records their answer (enrolled or declined); a recertification run makes
households leave on an exit rule, or when due and no longer eligible, and recertifies the
others for another period. Each move is an `enrollment_event` naming the run or the person
that made it, on the date it took effect.
"""

from datetime import date
from typing import Any

import polars as pl
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.errors import Conflict, InvalidInput, NotFound
from sijill.core.pg_copy import query_frame
from sijill.programs.models import (
    DECLINED,
    ENROLLED,
    EXITED,
    NOT_ELIGIBLE,
    NOTIFIED,
    SELECTED,
    Enrollment,
    EnrollmentEvent,
    ProgramRun,
    ProgramVersion,
)
from sijill.programs.spec import ProgramSpec
from sijill.programs.writes import in_batches, write_rows
from sijill.registry.models import Household
from sijill.security.audit.service import append
from sijill.security.principal import Principal
from sijill.security.roles import Permission


def _current(session: Session, program: str) -> pl.DataFrame:
    """Where every household of the program stands, read in the run's own transaction (by
    COPY on PostgreSQL: a national program holds millions)."""
    schema = {"household_id": pl.Int64, "status": pl.String, "recertify_on": pl.Date}
    quoted = program.replace("'", "''")
    return query_frame(
        session,
        f"SELECT household_id, status, recertify_on FROM enrollment WHERE program = '{quoted}'",
        schema,
    )


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


def _update(session: Session, program: str, ids: pl.Series, **values: Any) -> None:
    # In bounded slices: one statement per slice, whatever the run's size.
    for chunk in in_batches(ids.to_list()):
        session.execute(
            Enrollment.__table__.update()
            .where(Enrollment.program == program, Enrollment.household_id.in_(chunk))
            .values(**values)
        )


def notify(
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
    write_rows(session, Enrollment.__table__, rows)
    changes = pl.concat(
        [
            fresh.with_columns(from_status=pl.lit(None, pl.String)),
            returning.with_columns(from_status=pl.lit(EXITED)),
        ]
    ).with_columns(reason=pl.lit("selected"))
    write_rows(session, EnrollmentEvent.__table__, _events(changes, run, principal, NOTIFIED))
    return {"notified": fresh.height, "notified_again": returning.height}


def recertify(
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
    write_rows(session, EnrollmentEvent.__table__, _events(changes, run, principal, EXITED))
    months = spec.recertification_months or 0
    if months:
        _update(
            session, spec.code, renewed["household_id"],
            recertify_on=_add_months(run.as_of, months), run_id=run.id,
        )  # fmt: skip
        changes = renewed.select(
            "household_id", pl.col("status").alias("from_status"), reason=pl.lit("recertified")
        )
        write_rows(session, EnrollmentEvent.__table__, _events(changes, run, principal, ENROLLED))
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
    """`record_answers` in a transaction of its own, with its audit record."""
    with Session(engine) as session, session.begin():
        count = record_answers(
            session,
            principal=principal,
            program=program,
            household_ids=household_ids,
            answer=answer,
            on=on,
        )
        append(session, principal.take_audit())
    return count


def record_answers(
    session: Session,
    *,
    principal: Principal,
    program: str,
    household_ids: list[int],
    answer: str,
    on: date | None = None,
) -> int:
    """Record notified households' answers in the caller's transaction: enrolled (from `on`,
    due for recertification after the program's period) or declined. Every household must be
    notified in this program and lie in the user's scope; otherwise nothing is recorded. The
    audit entry is noted on the principal for the caller to append."""
    if answer not in (ENROLLED, DECLINED):
        raise InvalidInput(f"the answer is {ENROLLED} or {DECLINED}")
    on = on or clock.utcnow().date()
    wanted = sorted(set(household_ids))
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
    return len(wanted)
