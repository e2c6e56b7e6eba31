"""A program's spec: the YAML file a policy officer reads, checked before anything runs.

    program: jo-naf-cash            # the program's code (lower case, digits, '-')
    version: 3                      # raised whenever the rules change
    name: {ar: ..., fr: ..., en: ...}
    owner: National Aid Fund
    currency: JOD                   # ISO 4217 code; minor_units: 3 (default 2)
    cycle: monthly                  # monthly | bimonthly | quarterly
    areas: [G03, D0412]             # optional: the geographic scope (any level)
    scores:                         # optional: scoring runs the rules read, by name
      pmt_score: {kind: pmt, model: jo-2026-1}
    parameters:                     # dated, referenced (see core.parameters)
      cutoff: {description: ..., unit: log consumption, reference: ..., values: {2024-01-01: 7.1}}
    # a score or a parameter may have `label: {ar: ..., fr: ..., en: ...}`: what an
    # explanation of a decision calls it
    eligibility:                    # every clause must pass
      - {name: poor, where: "pmt_score < cutoff"}
    ranking: {by: pmt_score, order: ascending}   # poorest first when oversubscribed
    quota: {households: 50000}      # or {budget: 1000000.00} per cycle, in major units
    benefit: ...                    # see programs.benefits
    recipient: head                 # head | female_caregiver
    recertification_months: 24
    exits: [{name: aged_out, where: "n_children_0_17 = 0"}]
    incompatible_with: [eg-karama]
    ceiling: {amount: 900.00, with: [eg-karama]}

Expressions are the checked language of `targeting.expressions` over the feature catalogue,
the named scores and the spec's own parameters; a parameter is replaced by its value on the
run's date, so the same spec replays the rule of any day. Every error names the place in the
file (`eligibility[1].where: ...`).
"""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from sijill.core.files import read_yaml
from sijill.core.parameters import Parameter, Value, parse_parameter
from sijill.programs.clauses import (
    AREA_CLAUSE,
    Clause,
    SpecError,
    area_expression,
    name_ok,
    parse_clause,
    parse_ranking,
    split_clauses,
)
from sijill.targeting import expressions
from sijill.targeting.expressions import Expression

CYCLES = {"monthly": 1, "bimonthly": 2, "quarterly": 3}  # months per cycle
RECIPIENTS = ("head", "female_caregiver")
SCORE_KINDS = ("pmt", "mpi")
LANGUAGES = ("ar", "fr", "en")
MAX_CLAUSES = 62  # the decision's bitmask is a signed 64-bit integer; one bit is the area
_CODE = re.compile(r"^[a-z][a-z0-9-]{1,47}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Score:
    name: str
    kind: str  # pmt | mpi
    model: str | None  # the PMT model version; None: the latest approved model


@dataclass(frozen=True)
class Quota:
    households: int | None = None
    budget: Decimal | None = None  # per cycle, major units


@dataclass(frozen=True)
class ProgramSpec:
    code: str
    version: int
    names: dict[str, str]
    owner: str
    currency: str
    minor_units: int
    cycle: str
    areas: tuple[str, ...]
    scores: tuple[Score, ...]
    parameters: dict[str, Parameter]
    clauses: tuple[Clause, ...]  # the area clause first when the spec has areas
    ranking: Expression | None
    ascending: bool
    quota: Quota | None
    benefit: dict[str, Any] | None  # checked by programs.benefits
    recipient: str
    recertification_months: int | None
    exits: tuple[Clause, ...]
    incompatible_with: tuple[str, ...]
    ceiling: dict[str, Any] | None
    document: dict[str, Any] = field(repr=False)
    digest: str = ""  # the rule hash: sha256 of the spec's canonical JSON

    @property
    def columns(self) -> dict[str, str]:
        """Every name an expression of this spec may read, with its type."""
        return spec_columns(self.scores, self.parameters)

    def feature_names(self) -> list[str]:
        """The feature columns the rules read (scores and parameters left out)."""
        own = {score.name for score in self.scores} | set(self.parameters)
        used: set[str] = set()
        for clause in (*self.clauses, *self.exits):
            used |= clause.expression.columns
        if self.ranking is not None:
            used |= self.ranking.columns
        return sorted(used - own)

    def values_on(self, day: date) -> dict[str, Value]:
        return {name: parameter.value_at(day) for name, parameter in self.parameters.items()}


def spec_columns(scores, parameters: dict[str, Parameter]) -> dict[str, str]:
    extra = {score.name: "number" for score in scores}
    for name, parameter in parameters.items():
        extra[name] = _value_type(parameter.values[0].value)
    return expressions.feature_columns(extra)


def _value_type(value: Value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal):
        return "number"
    return "text"


def load_spec(path: Path) -> ProgramSpec:
    return parse_spec(read_yaml(path), path.name)


def parse_spec(document: Any, where: str = "spec") -> ProgramSpec:
    if not isinstance(document, dict):
        raise SpecError(f"{where}: a program spec is a mapping of fields")
    known = {
        "program", "version", "name", "owner", "source", "currency", "minor_units", "cycle",
        "areas", "scores", "parameters", "eligibility", "ranking", "quota", "benefit",
        "recipient", "recertification_months", "exits", "incompatible_with", "ceiling",
        "conditions",
    }  # fmt: skip
    for key in document:
        if key not in known:
            raise SpecError(f"{where}: {key}: not a field of a program spec")
    read = _Reader(where, document)
    code = read.text("program")
    if not _CODE.match(code):
        raise SpecError(f"{where}: program: '{code}' is not a code (a-z, 0-9, '-')")
    version = read.integer("version", minimum=1)
    names = read.mapping("name")
    for language in LANGUAGES:
        if not isinstance(names.get(language), str) or not names[language].strip():
            raise SpecError(f"{where}: name.{language}: the name in {language} is missing")
    currency = read.text("currency")
    if not _CURRENCY.match(currency):
        raise SpecError(f"{where}: currency: '{currency}' is not an ISO 4217 code")
    minor_units = read.integer("minor_units", default=2, minimum=0, maximum=4)
    cycle = read.text("cycle")
    if cycle not in CYCLES:
        raise SpecError(f"{where}: cycle: '{cycle}' is not one of {', '.join(CYCLES)}")
    areas = tuple(str(area) for area in read.sequence("areas"))
    scores = tuple(_score(where, name, body) for name, body in read.mapping("scores").items())
    parameters = {}
    for name, body in read.mapping("parameters").items():
        name_ok(where, f"parameters.{name}", name)
        parameters[name] = parse_parameter(name, body, f"{where}: parameters.{name}")
    for key in ("scores", "parameters"):
        for name, body in read.mapping(key).items():
            if isinstance(body, dict) and "label" in body:
                _labels(where, f"{key}.{name}.label", body["label"])
    for score in scores:
        if score.name in parameters:
            raise SpecError(f"{where}: {score.name}: both a score and a parameter")
    columns = spec_columns(scores, parameters)
    for name in (*parameters, *(score.name for score in scores)):
        if name in expressions.feature_columns():
            raise SpecError(f"{where}: {name}: already the name of a feature; choose another")
    clauses = [
        parse_clause(where, "eligibility", i, c, columns)
        for i, c in _items(read, "eligibility", columns)
    ]
    if not clauses:
        raise SpecError(f"{where}: eligibility: a program needs at least one clause")
    if areas:
        clauses.insert(0, Clause(AREA_CLAUSE, area_expression(areas, columns)))
    if len(clauses) > MAX_CLAUSES:
        raise SpecError(f"{where}: eligibility: more than {MAX_CLAUSES} clauses")
    _unique(where, "eligibility", [clause.name for clause in clauses])
    ranking, ascending = parse_ranking(where, read.mapping("ranking"), columns)
    quota = _quota(where, read.mapping("quota"))
    if quota is not None and ranking is None:
        raise SpecError(f"{where}: quota: a quota needs a ranking (who comes first?)")
    recipient = read.text("recipient", default="head")
    if recipient not in RECIPIENTS:
        raise SpecError(f"{where}: recipient: '{recipient}' is not one of {', '.join(RECIPIENTS)}")
    exits = tuple(
        parse_clause(where, "exits", i, c, columns) for i, c in _items(read, "exits", columns)
    )
    _unique(where, "exits", [clause.name for clause in exits])
    recertification = read.integer("recertification_months", default=None, minimum=1)
    incompatible = tuple(str(code) for code in read.sequence("incompatible_with"))
    if code in incompatible:
        raise SpecError(f"{where}: incompatible_with: a program cannot exclude itself")
    return ProgramSpec(
        code=code,
        version=version,
        names={language: names[language] for language in LANGUAGES},
        owner=read.text("owner"),
        currency=currency,
        minor_units=minor_units,
        cycle=cycle,
        areas=areas,
        scores=scores,
        parameters=parameters,
        clauses=tuple(clauses),
        ranking=ranking,
        ascending=ascending,
        quota=quota,
        benefit=document.get("benefit"),
        recipient=recipient,
        recertification_months=recertification,
        exits=exits,
        incompatible_with=incompatible,
        ceiling=document.get("ceiling"),
        document=document,
        digest=digest(document),
    )


def digest(document: dict[str, Any]) -> str:
    """The rule hash: the same spec, however laid out in YAML, has the same hash."""
    canonical = orjson.dumps(
        document, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str
    )
    return hashlib.sha256(canonical).hexdigest()


class _Reader:
    def __init__(self, where: str, document: dict[str, Any]):
        self.where = where
        self.document = document

    def text(self, key: str, default: str | None = None) -> str:
        value = self.document.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise SpecError(f"{self.where}: {key}: missing or not text")
        return value.strip()

    def integer(self, key: str, default: Any = ..., minimum=None, maximum=None) -> Any:
        if key not in self.document:
            if default is ...:
                raise SpecError(f"{self.where}: {key}: missing")
            return default
        value = self.document[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{self.where}: {key}: '{value}' is not a whole number")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise SpecError(f"{self.where}: {key}: {value} is out of range")
        return value

    def mapping(self, key: str) -> dict[Any, Any]:
        value = self.document.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise SpecError(f"{self.where}: {key}: a mapping is needed")
        return value

    def sequence(self, key: str) -> list[Any]:
        value = self.document.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise SpecError(f"{self.where}: {key}: a list is needed")
        return value


def _items(read: _Reader, key: str, columns: dict[str, str]):
    value = read.document.get(key)
    if isinstance(value, str):  # a single `where:` expression: its AND-ed parts are clauses
        return list(enumerate(split_clauses(value, columns)))
    return list(enumerate(read.sequence(key)))


def _labels(where: str, place: str, labels: Any) -> None:
    """What an explanation calls a score or a parameter, in each language."""
    if not isinstance(labels, dict) or set(labels) != set(LANGUAGES):
        raise SpecError(f"{where}: {place}: a label is {{ar: ..., fr: ..., en: ...}}")
    for language in LANGUAGES:
        if not isinstance(labels[language], str) or not labels[language].strip():
            raise SpecError(f"{where}: {place}.{language}: the label in {language} is missing")


def _score(where: str, name: Any, body: Any) -> Score:
    name_ok(where, f"scores.{name}", name)
    if not isinstance(body, dict) or body.get("kind") not in SCORE_KINDS:
        raise SpecError(f"{where}: scores.{name}: kind is one of {', '.join(SCORE_KINDS)}")
    model = body.get("model")
    if body["kind"] == "mpi" and model:
        raise SpecError(f"{where}: scores.{name}: an MPI score has no model")
    # A PMT score without a model reads the latest approved one; the run records which.
    return Score(name, body["kind"], str(model) if model else None)


def _quota(where: str, body: dict) -> Quota | None:
    if not body:
        return None
    if set(body) - {"households", "budget"} or len(body) != 1:
        raise SpecError(f"{where}: quota: either households: N or budget: AMOUNT")
    if "households" in body:
        value = body["households"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SpecError(f"{where}: quota.households: a whole number of households")
        return Quota(households=value)
    try:
        budget = Decimal(str(body["budget"]))
    except ArithmeticError:
        raise SpecError(f"{where}: quota.budget: '{body['budget']}' is not an amount") from None
    if not budget.is_finite() or budget < 0:
        raise SpecError(f"{where}: quota.budget: '{body['budget']}' is not an amount")
    return Quota(budget=budget)


def _unique(where: str, key: str, names: list[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise SpecError(f"{where}: {key}: the name '{name}' is used twice")
        seen.add(name)
