"""The programs a user can see, and one program as its readers see it: the spec of its latest
run in their scope, that run's counts and cost, and its runs.

A program is known by its runs: a run covers an area (or the whole registry), and a user sees
the runs of their areas (a whole-registry run only with a national scope), as
`service.get_run` decides for one run. A program without a run in the user's scope answers as
one that does not exist.
"""

from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from yaml.nodes import ScalarNode

from sijill.core.errors import NotFound
from sijill.programs.models import ProgramRun, ProgramVersion
from sijill.programs.service import run_record
from sijill.programs.spec import digest
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


# A stored spec keeps its dates and decimals as the text they were written as (`_jsonable`):
# written back as plain YAML scalars they read as what they were.
_RESTORED = {"tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}
_RESTORED_KEYS = _RESTORED | {"tag:yaml.org,2002:int"}
_RESOLVER = yaml.resolver.Resolver()


def _typed(text: str, tags: set[str]) -> Any:
    if _RESOLVER.resolve(ScalarNode, text, (True, False)) in tags:
        return yaml.safe_load(text)
    return text


def _restored(value: Any) -> Any:
    if isinstance(value, dict):
        return {_typed(key, _RESTORED_KEYS): _restored(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_restored(item) for item in value]
    return _typed(value, _RESTORED) if isinstance(value, str) else value


def stored_spec_yaml(found: dict[str, Any]) -> str | None:
    """The spec of a program's latest run (`read_program`) written back as YAML, to run it
    again; None when it cannot be written back with the same rule hash (a quoted text that
    looks like a date, say), so that nothing runs under the version's name with other rules."""
    document = _restored(found["spec"])
    if not document or digest(document) != found["latest"]["digest"]:
        return None
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
