"""The programs a user can see, and one program as its readers see it: the spec of its latest
run in their scope, that run's counts and cost, and its runs.

A program is known by its runs: a run covers an area (or the whole registry), and a user sees
the runs of their areas (a whole-registry run only with a national scope), as
`service.get_run` decides for one run. A program without a run in the user's scope answers as
one that does not exist.
"""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sijill.core.errors import NotFound
from sijill.programs.models import ProgramRun, ProgramVersion
from sijill.programs.service import run_record
from sijill.security.principal import Principal
from sijill.security.roles import Permission

MAX_RUNS = 100  # a program's page lists its latest runs


def _visible(session: Session, principal: Principal):
    scope = principal.scope(session, Permission.PROGRAMS_READ)
    return scope.condition(ProgramRun.area_id)


def _counts(run: ProgramRun) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "version": run.version,
        "digest": run.digest,
        "kind": run.kind,
        "as_of": run.as_of,
        "households_assessed": run.households_assessed,
        "households_without_consent": run.households_without_consent,
        "eligible": run.eligible,
        "selected": run.selected,
        "waitlisted": run.waitlisted,
        "cost_per_cycle": run.cost_per_cycle,  # minor units of the spec's currency
    }


def _spec_of(session: Session, run: ProgramRun) -> dict[str, Any]:
    version = session.get(ProgramVersion, (run.program, run.version))
    return version.body if version is not None else {}


def list_programs(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """Each program with a run in the user's scope: its names, currency and latest run."""
    principal.require(Permission.PROGRAMS_READ)
    visible = _visible(session, principal)
    latest = (
        select(ProgramRun.program, func.max(ProgramRun.id).label("run_id"), func.count())
        .where(visible)
        .group_by(ProgramRun.program)
        .order_by(ProgramRun.program)
    )
    programs = []
    for program, run_id, runs in session.execute(latest).all():
        run = session.get(ProgramRun, run_id)
        spec = _spec_of(session, run)
        programs.append(
            {
                "program": program,
                "names": spec.get("name", {}),
                "owner": spec.get("owner"),
                "currency": spec.get("currency"),
                "minor_units": int(spec.get("minor_units", 2)),
                "cycle": spec.get("cycle"),
                "runs": runs,
                "latest": _counts(run),
            }
        )
    return programs


def read_program(session: Session, principal: Principal, program: str) -> dict[str, Any]:
    """A program: the spec of its latest run in the user's scope (as it was registered), that
    run's full record, and its latest runs, newest first."""
    principal.require(Permission.PROGRAMS_READ)
    runs = session.scalars(
        select(ProgramRun)
        .where(ProgramRun.program == program, _visible(session, principal))
        .order_by(ProgramRun.id.desc())
        .limit(MAX_RUNS)
    ).all()
    if not runs:
        raise NotFound(f"There is no program {program} in your scope")
    spec = _spec_of(session, runs[0])
    return {
        "program": program,
        "spec": spec,
        "minor_units": int(spec.get("minor_units", 2)),
        "latest": run_record(runs[0]),
        "runs": [_counts(run) for run in runs],
    }
