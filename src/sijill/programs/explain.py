"""Why a program run chose a household, or did not, in plain words: replayed from the record.

An explanation reads only what the run recorded: the decision row (status, rank, the bitmask
of the clauses that passed), the run (each clause as written and as run, the parameter
values in force on its date, the feature snapshot, the scoring runs) and the spec version's
text (names, labels, quota). The values a clause read come from the run's feature snapshot,
its file checked against the recorded checksum, and from the scoring runs' household_score
rows: an appeal sees the numbers the decision saw, not today's registry. The words are
`programs.wording`'s.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Row, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from sijill.core.db import execute_read
from sijill.core.errors import InvalidInput, NotFound
from sijill.core.i18n import N_, gettext
from sijill.core.i18n.formats import format_list
from sijill.core.ids import format_id
from sijill.core.settings import Settings
from sijill.programs import wording
from sijill.programs.models import (
    SELECTED,
    STATUS_NAMES,
    WAITLISTED,
    EligibilityDecision,
    ProgramRun,
)
from sijill.programs.run_context import (
    RunContext,
    known_context,
    load_contexts,
)
from sijill.programs.spec import AREA_CLAUSE, LANGUAGES
from sijill.registry.lookup import household_area_id
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.targeting.models import FeatureSnapshot, HouseholdScore
from sijill.targeting.service import open_snapshot, snapshot_file
from sijill.targeting.snapshot_rows import snapshot_values

EXPLAIN_ACTION = "programs.explain"
_BATCH = 5000  # households per query when a batch of letters reads scores

SELECTED_RANK = N_("selected: rank {rank} among the eligible households")
ELIGIBLE = N_("eligible")
WAITING = N_("eligible, on the waiting list at position {position}")
REFUSED = N_("not eligible: {reasons}")


@dataclass(frozen=True)
class ClauseReading:
    name: str
    passed: bool
    rule: str  # as written in the spec
    rule_as_run: str  # with the parameters' values of the run's date
    values: dict[str, Any]  # what it read: features and scores
    parameters: dict[str, Any]  # the parameters it names, as the run recorded them
    sentence: str


@dataclass(frozen=True)
class Explanation:
    run_id: int
    program: str
    program_name: str
    version: int
    digest: str
    as_of: date
    snapshot_id: int
    score_runs: dict[str, int]
    household_id: int
    status: str  # selected | waitlisted | not_eligible
    rank: int | None  # among the eligible, 1 first
    position: int | None  # on the waiting list, 1 first
    quota: dict[str, Any] | None
    language: str
    summary: str  # the decision in plain words
    clauses: list[ClauseReading] = field(default_factory=list)

    def failing(self) -> list[str]:
        return [clause.sentence for clause in self.clauses if not clause.passed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "program": self.program,
            "program_name": self.program_name,
            "version": self.version,
            "digest": self.digest,
            "as_of": self.as_of.isoformat(),
            "snapshot_id": self.snapshot_id,
            "score_runs": self.score_runs,
            "household_id": format_id(self.household_id),
            "status": self.status,
            "rank": self.rank,
            "position": self.position,
            "quota": self.quota,
            "language": self.language,
            "summary": self.summary,
            "clauses": [
                {
                    "name": clause.name,
                    "passed": clause.passed,
                    "rule": clause.rule,
                    "rule_as_run": clause.rule_as_run,
                    "values": {name: _plain(value) for name, value in clause.values.items()},
                    "parameters": clause.parameters,
                    "sentence": clause.sentence,
                }
                for clause in self.clauses
            ],
        }


def explain(
    session: Session,
    settings: Settings,
    principal: Principal,
    run_id: int,
    household_id: int,
    language: str = "en",
) -> Explanation:
    """A household's decision in a run, if the household lies in the user's scope (as its
    registry record says now): otherwise, as for a run or a household that does not exist,
    NotFound. Every read is audited: it shows the household's data."""
    check_language(language)
    permission = Permission.PROGRAMS_READ
    principal.require(permission, record_type="household", record_id=str(household_id))
    scope = principal.scope(session, permission)
    decision = session.execute(
        DECISIONS.where(
            EligibilityDecision.run_id == run_id, EligibilityDecision.household_id == household_id
        )
    ).first()
    area_id = household_area_id(session, household_id)
    if decision is None or area_id is None or not scope.allows(area_id):
        principal.audit(EXPLAIN_ACTION, "not_found", "household", str(household_id),
                        permission=permission)  # fmt: skip
        raise NotFound(f"There is no decision of program run {run_id} on household "
                       f"{household_id} in your scope")  # fmt: skip
    return explain_decisions(session, settings, principal, household_id, [decision], language)[0]


def check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise InvalidInput(f"language: '{language}' is not one of {', '.join(LANGUAGES)}")


# Decisions with what explaining them starts from: the key of their run (its rules are then
# derived once per process) and their feature snapshot's file.
DECISIONS = (
    select(
        *(getattr(EligibilityDecision, name) for name in ("run_id", "household_id", "status")),
        EligibilityDecision.passed,
        EligibilityDecision.rank,
        *(getattr(ProgramRun, name) for name in ("program", "version", "digest", "as_of")),
        ProgramRun.finished_at,
        ProgramRun.snapshot_id,
        FeatureSnapshot.file_name,
        FeatureSnapshot.sha256,
    )
    .select_from(ProgramRun)
    .join(EligibilityDecision, EligibilityDecision.run_id == ProgramRun.id)
    .join(FeatureSnapshot, FeatureSnapshot.id == ProgramRun.snapshot_id)
)


_SCORES = select(HouseholdScore.run_id, HouseholdScore.score).where(
    HouseholdScore.run_id.in_(bindparam("runs", expanding=True)),
    HouseholdScore.household_id == bindparam("household"),
)
# The same on PostgreSQL with the runs as one array: a statement written the same for any
# number of runs, which psycopg prepares once (an IN list is written out for each call).
_SCORES_OF_RUNS = select(HouseholdScore.run_id, HouseholdScore.score).where(
    HouseholdScore.run_id == any_(bindparam("runs", type_=ARRAY(BigInteger))),
    HouseholdScore.household_id == bindparam("household"),
)


def explain_decisions(
    session: Session,
    settings: Settings,
    principal: Principal,
    household_id: int,
    decisions: Sequence[Row],
    language: str = "en",
) -> list[Explanation]:
    """Several runs' decisions on one household (rows of `DECISIONS`), explained as `explain`
    explains each (and audited as it audits one, in one record), for a caller that has
    checked the household lies in the user's scope. Runs that read one feature snapshot (a
    program's cycles, or programs run on the same day) find the household's row in it once,
    and its scores are read in one query: a caseworker's page shows twenty decisions."""
    check_language(language)
    contexts = {d.run_id: known_context(d.run_id, d) for d in decisions}
    unknown = [run_id for run_id, context in contexts.items() if context is None]
    if unknown:
        contexts |= load_contexts(session, unknown)
    wanted: dict[int, set[str]] = {}
    files: dict[int, tuple[str, str]] = {}  # snapshot -> its file's name and checksum
    for decision in decisions:
        context = contexts[decision.run_id]
        reads = set(context.reads) - set(context.run.score_runs)
        wanted.setdefault(decision.snapshot_id, set()).update(reads)
        files[decision.snapshot_id] = (decision.file_name, decision.sha256)
    features: dict[int, dict[str, Any]] = {}
    for snapshot_id, columns in wanted.items():
        file_name, sha256 = files[snapshot_id]
        path = snapshot_file(settings, snapshot_id, file_name, sha256)
        found = snapshot_values(path, sha256, sorted(columns), [household_id])
        features[snapshot_id] = found.get(household_id, {})
    score_runs = {run for c in contexts.values() for run in c.run.score_runs.values()}
    scores: dict[int, Any] = {}
    if score_runs:
        wanted_scores = {"runs": list(score_runs), "household": household_id}
        postgresql = session.get_bind().dialect.name == "postgresql"
        statement = _SCORES_OF_RUNS if postgresql else _SCORES
        scores = dict(execute_read(session, statement, wanted_scores).all())
    explanations = []
    for decision in decisions:
        run = contexts[decision.run_id].run
        # A name is a score of this run or a feature of its snapshot, never both.
        values = {k: v for k, v in features[run.snapshot_id].items() if k not in run.score_runs}
        values |= {name: scores[r] for name, r in run.score_runs.items() if r in scores}
        explanations.append(describe(contexts[decision.run_id], decision, values, language))
    if decisions:
        # One record: an entry per decision would say the same thing (who read this
        # household's decisions) once per program, ten times per caseworker's page.
        principal.audit(EXPLAIN_ACTION, "ok", "household", str(household_id),
                        permission=Permission.PROGRAMS_READ)  # fmt: skip
    return explanations


def read_values(
    session: Session, settings: Settings, context: RunContext, household_ids: list[int]
) -> dict[int, dict[str, Any]]:
    """What the run's clauses read for these households: their row of the run's feature
    snapshot (its file checked first) and their scores in the run's scoring runs."""
    run = context.run
    scores = set(run.score_runs)
    wanted = [name for name in context.reads if name not in scores]
    snapshot = open_snapshot(settings, session.get(FeatureSnapshot, run.snapshot_id))
    values = snapshot_values(snapshot.path, snapshot.record.sha256, wanted, household_ids)
    for name, score_run in run.score_runs.items():
        for start in range(0, len(household_ids), _BATCH):
            found = session.execute(
                select(HouseholdScore.household_id, HouseholdScore.score).where(
                    HouseholdScore.run_id == score_run,
                    HouseholdScore.household_id.in_(household_ids[start : start + _BATCH]),
                )
            ).all()
            for household_id, score in found:
                values.setdefault(household_id, {})[name] = score
    return values


def describe(
    context: RunContext,
    decision: EligibilityDecision | Row,
    values: dict[str, Any],
    language: str,
) -> Explanation:
    """The explanation of one decision (its record, or a row of `DECISIONS`), given what its
    clauses read."""
    run, rules = context.run, context.rules
    clauses = []
    words = wording.Words(rules.parameters, rules.labels, values, language)
    for index, clause in enumerate(run.clauses):
        passed = bool(decision.passed >> index & 1)
        read = {name: values.get(name) for name in rules.clause_reads[index]}
        if clause["name"] == AREA_CLAUSE:
            sentence = gettext(wording.IN_AREAS if passed else wording.OUT_OF_AREAS, language)
        else:
            sentence = words.clause(rules.trees[index], clause, passed, read)
        clauses.append(
            ClauseReading(
                name=clause["name"],
                passed=passed,
                rule=clause["where"],
                rule_as_run=clause["sql"],
                values=read,
                parameters=rules.clause_parameters[index],
                sentence=sentence,
            )
        )
    status = decision.status
    position = None
    if status == SELECTED:
        quota = rules.body.get("quota")
        summary = (
            gettext(SELECTED_RANK, language).format(rank=wording.number(decision.rank, language))
            if quota
            else gettext(ELIGIBLE, language)
        )
    elif status == WAITLISTED:
        position = decision.rank - run.selected
        summary = gettext(WAITING, language).format(position=wording.number(position, language))
    else:
        failing = [clause.sentence for clause in clauses if not clause.passed]
        summary = gettext(REFUSED, language).format(reasons=format_list(failing, locale=language))
    return Explanation(
        run_id=run.id,
        program=run.program,
        program_name=(rules.body.get("name") or {}).get(language, run.program),
        version=run.version,
        digest=run.digest,
        as_of=run.as_of,
        snapshot_id=run.snapshot_id,
        score_runs=run.score_runs,
        household_id=decision.household_id,
        status=STATUS_NAMES[status],
        rank=decision.rank,
        position=position,
        quota=rules.body.get("quota"),
        language=language,
        summary=summary,
        clauses=clauses,
    )


def _plain(value: Any) -> Any:
    """A value as JSON carries it."""
    if isinstance(value, Decimal):
        return str(value)
    return value
