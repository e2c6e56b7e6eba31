"""What a program run decided by, derived from its record and its spec version's text: each
clause parsed, the parameters' values in force, the labels of scores and parameters. The same
for every household of the run, so explanations and letters derive it once per run (and keep
it, for finished runs, across requests).
"""

from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import sqlglot
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session
from sqlglot import exp

from sijill.core.i18n import N_, gettext
from sijill.programs.models import ProgramRun, ProgramVersion
from sijill.programs.spec import LANGUAGES

SCORE_LABELS = {"pmt": N_("PMT score"), "mpi": N_("deprivation score")}


@dataclass(frozen=True)
class RunRules:
    """What a run decided by, derived from its record and its spec version's text: the same
    for every household, and never changed once the run is recorded."""

    body: dict[str, Any]
    parameters: dict[str, Any]  # name -> value in force (Decimal, bool or text)
    labels: dict[str, dict[str, str]]  # score or parameter -> {language: label}
    trees: list[exp.Expression | None]  # each clause as written, parsed (None: unreadable)
    names: list[frozenset[str]]  # the columns each clause names (parameters included)
    # Each clause's features and scores (sorted), and the parameters it names as the run
    # recorded them: the same for every household an explanation is written for.
    clause_reads: list[tuple[str, ...]]
    clause_parameters: list[dict[str, Any]]


@dataclass(frozen=True)
class RunRecord:
    """What an explanation reads of its run's record: a plain copy, which outlives the
    session that read it (a finished run's record never changes)."""

    id: int
    program: str
    version: int
    digest: str
    as_of: date
    snapshot_id: int
    score_runs: dict[str, int]
    parameters: dict[str, Any]
    clauses: list[dict[str, Any]]
    selected: int

    @classmethod
    def of(cls, run: ProgramRun) -> "RunRecord":
        return cls(**{field.name: getattr(run, field.name) for field in fields(cls)})


@dataclass(frozen=True)
class RunContext:
    """What every explanation of one run shares: the run, its spec version, its rules."""

    run: RunRecord
    rules: RunRules

    @property
    def reads(self) -> list[str]:
        """Every feature and score a clause names."""
        return sorted(frozenset().union(*self.rules.names) - set(self.rules.parameters))


# Finished runs' contexts, by run: a caseworker's page explains a household's decisions in
# the latest runs, which every page shows. The key holds what identifies the run, so a run ID
# used again (SQLite, after a rollback) is never confused; a run still going is not kept.
_CONTEXTS_KEPT = 256
_contexts_kept: dict[tuple, RunContext] = {}


def _key(run_id: int, run: Any) -> tuple:
    """What identifies a run: read from its record, or from a decision row (`DECISIONS`)."""
    return (run_id, run.program, run.version, run.digest, run.as_of, run.finished_at)


def known_context(run_id: int, found: Any) -> RunContext | None:
    """The context this process keeps of a finished run, if `found` (the run's record, or a
    decision row that carries its run's key) names the same run."""
    return _contexts_kept.get(_key(run_id, found))


def load_contexts(session: Session, run_ids: list[int]) -> dict[int, RunContext]:
    """Several runs' contexts, their records and spec versions read in two queries."""
    runs = session.scalars(select(ProgramRun).where(ProgramRun.id.in_(run_ids))).all()
    bodies = _bodies(session, runs)
    return {run.id: run_context(session, run, bodies) for run in runs}


def run_context(
    session: Session, run: ProgramRun, bodies: dict[tuple[str, int], Any] | None = None
) -> RunContext:
    """The run's context; `bodies` (spec versions' bodies by program and version) when the
    caller has read them for several runs at once."""
    key = _key(run.id, run)
    context = _contexts_kept.get(key)
    if context is None:
        if bodies is None or (run.program, run.version) not in bodies:
            bodies = _bodies(session, [run])
        body = bodies.get((run.program, run.version)) or {}
        context = RunContext(RunRecord.of(run), _rules(run, body))
        if run.finished_at is not None:
            if len(_contexts_kept) >= _CONTEXTS_KEPT:
                _contexts_kept.pop(next(iter(_contexts_kept), None), None)
            _contexts_kept[key] = context
    return context


def _rules(run: ProgramRun, body: dict[str, Any]) -> RunRules:
    labels: dict[str, dict[str, str]] = {}
    for name, score in (body.get("scores") or {}).items():
        default = SCORE_LABELS.get(score.get("kind"), name)
        own = score.get("label") or {}
        labels[name] = {lang: own.get(lang) or gettext(default, lang) for lang in LANGUAGES}
    for name, parameter in (body.get("parameters") or {}).items():
        if isinstance(parameter, dict) and isinstance(parameter.get("label"), dict):
            labels[name] = parameter["label"]
    parameters = {name: _value(entry["value"]) for name, entry in run.parameters.items()}
    trees = [_parsed(clause["where"]) for clause in run.clauses]
    names = [
        frozenset() if tree is None else frozenset(c.name for c in tree.find_all(exp.Column))
        for tree in trees
    ]
    clause_reads = [tuple(sorted(named - set(parameters))) for named in names]
    clause_parameters = [
        {name: run.parameters[name] for name in sorted(named) if name in run.parameters}
        for named in names
    ]
    return RunRules(body, parameters, labels, trees, names, clause_reads, clause_parameters)


@lru_cache(maxsize=4096)
def _parsed(where: str) -> exp.Expression | None:
    """A clause as written, parsed; None when unreadable (quoted as written, with no values).
    Runs repeat the same few clauses: each is parsed once per process. The trees are only read
    (`wording` walks them), never changed."""
    try:
        return sqlglot.parse_one(where, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return None


def _bodies(session: Session, runs: list[ProgramRun]) -> dict[tuple[str, int], Any]:
    versions = {(run.program, run.version) for run in runs}
    found = session.execute(
        select(ProgramVersion.program, ProgramVersion.version, ProgramVersion.body).where(
            tuple_(ProgramVersion.program, ProgramVersion.version).in_(versions)
        )
    )
    return {(program, version): body for program, version, body in found}


def _value(text: str) -> Any:
    """A parameter's value as the run recorded it (text) back to what the rule compared."""
    if text in ("True", "False"):
        return text == "True"
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return number if number.is_finite() else text
