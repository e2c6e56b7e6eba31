"""The person facts the region's programs test: school grade, contributory pension, orphanhood
and own monthly income.

Drawn once the roster, schooling, work and consumption are known (`welfare.py`), from a random
stream of their own, so adding them left every other column of a seed's output as it was.

- `school_grade`: an enrolled child of 6 to 17 attends grade (age - 5), less the years repeated;
  a year is repeated with probability logistic(-2.1 - 0.7 x wealth) (about 13% of pupils
  are behind, twice as many in poor households as in others), a second one a quarter as
  often. The child's `education_level` is then the level of that grade (1-6 primary, 7-9
  lower secondary, 10-12 upper secondary). Others, students beyond secondary included, have
  none.
- `contributory_pension` (from 60): logistic(-2.6 + 0.9 x wealth + 0.5 urban + 0.4 male +
  0.9 widowed (survivors' pensions) - 2.5 non-citizen + 3.2 retired, and + 1.0 more when the
  household form lists a pension among its income sources): about a third of the 60+, most
  retirees, few in poor, rural or refugee households. False for everyone else.
- `orphanhood` (under 18; empty for adults): follows the roster. A child of the head whose head
  is widowed lost the other parent: a widow's children are paternal orphans, a widower's
  maternal orphans. A grandchild, sibling or other relative under 18 is an orphan with
  probability (0.02 + 0.003 x age) x exp(-0.4 x wealth), doubled in refugee households, split
  60/25/15 paternal/maternal/double, but never of a parent the roster lists alive (the head's
  parents are a sibling's). Non-orphans under 18 are `none`.
- `monthly_income` (minor units, 1/100 of the currency): a pension is 1.6 x the household's
  monthly consumption per person x lognormal(0, 0.35), at least the monthly poverty line. The
  household's earnings are its monthly consumption less its pensions (at least 30% of the
  consumption) x lognormal(0, 0.2), shared among its workers in weights formal 1.4, informal
  1.0, under 18 0.4, each x lognormal(0, 0.3). Members of 15 and over with neither earn 0;
  children under 15 who do not work have no income recorded (empty).
  The registry holds what was declared: formal wages and pensions as they are (they are on
  record), informal earnings under-declared by lognormal(-0.15, 0.25) and not known at all for
  15% of informal workers (their income is then empty). The true income is in the ground truth
  (`truth_persons.true_monthly_income`); the other three facts are registered as they are.
"""

import numpy as np

from sijill.registry.codes import PERSON_CODES
from sijill.synth import dwelling
from sijill.synth.population import (
    CHILD,
    CITIZEN,
    GRANDCHILD,
    HEAD,
    OTHER,
    PARENT,
    REFUGEE,
    SIBLING,
    WIDOWED,
)
from sijill.synth.welfare import (
    EMPLOYED,
    FORMAL,
    INFORMAL,
    LOG_CONSUMPTION_MEAN,
    LOG_CONSUMPTION_SD,
    POVERTY_LINE,
    RETIRED,
)

ORPHANHOOD = PERSON_CODES["orphanhood"]
NONE, PATERNAL, MATERNAL, DOUBLE = range(4)
MINOR_UNITS = 100  # the synthetic currency's minor unit is 1/100
PENSION_AGE = 60
# The lowest pension: the poverty line of one person for a month.
MINIMUM_PENSION = POVERTY_LINE / 12
INFORMAL_UNKNOWN = 0.15
_PENSION_BIT = 1 << dwelling.INCOME.index("pension")
_LEVEL_OF_GRADE = np.array([0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3], dtype=np.int8)


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def draw(rng: np.random.Generator, hh: dict, p: dict) -> None:
    """Add `grade`, `pension`, `orphan`, `income` and `true_income` to `p` (and make the
    education level of pupils that of their grade)."""
    wealth = (hh["log_consumption"] - LOG_CONSUMPTION_MEAN) / LOG_CONSUMPTION_SD
    person_wealth = wealth[p["hh"]]
    p["grade"] = _grades(rng, p, person_wealth)
    pupil = p["grade"] > 0
    p["education"] = np.where(pupil, _LEVEL_OF_GRADE[p["grade"]], p["education"]).astype(np.int8)
    p["pension"] = _pensions(rng, hh, p, person_wealth)
    p["orphan"] = _orphanhood(rng, hh, p, person_wealth)
    p["true_income"], p["income"] = _incomes(rng, hh, p)


def _grades(rng: np.random.Generator, p: dict, wealth: np.ndarray) -> np.ndarray:
    """The grade attended (1-12), 0 when none."""
    years = np.floor(p["age"]).astype(np.int16)
    n = len(years)
    repeat_p = _logistic(-2.1 - 0.7 * wealth)
    repeated = (rng.random(n) < repeat_p).astype(np.int16)
    repeated += (rng.random(n) < repeat_p / 4) & (repeated > 0)
    school = p["enrolled"] & (years >= 6) & (years <= 17)
    return np.where(school, np.clip(years - 5 - repeated, 1, 12), 0).astype(np.int8)


def _pensions(rng: np.random.Generator, hh: dict, p: dict, wealth: np.ndarray) -> np.ndarray:
    home = p["hh"]
    retired = p["employment"] == RETIRED
    listed = (hh["income"][home] & _PENSION_BIT) > 0
    logit = (
        -2.6
        + 0.9 * wealth
        + 0.5 * hh["urban"][home]
        + 0.4 * p["sex_male"]
        + 0.9 * (p["marital"] == WIDOWED)
        - 2.5 * (hh["group"][home] != CITIZEN)
        + retired * (3.2 + 1.0 * listed)
    )
    return (p["age"] >= PENSION_AGE) & (rng.random(len(home)) < _logistic(logit))


def _orphanhood(rng: np.random.Generator, hh: dict, p: dict, wealth: np.ndarray) -> np.ndarray:
    """Orphanhood code of each person under 18, -1 (empty) for adults."""
    home, rel, age, male = p["hh"], p["rel"], p["age"], p["sex_male"]
    n_hh, n = len(hh["size"]), len(home)
    head = rel == HEAD
    head_widowed = np.zeros(n_hh, dtype=bool)
    head_widowed[home[head]] = p["marital"][head] == WIDOWED
    head_female = hh["head_female"][home]
    # A widowed head's child lost the other parent.
    child_of_widow = (rel == CHILD) & head_widowed[home]
    code = np.where(child_of_widow, np.where(head_female, PATERNAL, MATERNAL), NONE)

    # Other relatives: drawn, but never orphaned of a parent the roster lists (a sibling's
    # parents are the head's).
    def parent_listed(sex_male: bool) -> np.ndarray:
        listed = np.bincount(home, weights=(rel == PARENT) & (male == sex_male), minlength=n_hh)
        return (listed > 0)[home] & (rel == SIBLING)

    refugee = hh["group"][home] == REFUGEE
    other = np.isin(rel, (GRANDCHILD, SIBLING, OTHER)) & (age < 18)
    orphan_p = (0.02 + 0.003 * age) * np.exp(-0.4 * wealth) * np.where(refugee, 2.0, 1.0)
    orphaned = other & (rng.random(n) < orphan_p)
    kind = np.searchsorted(np.cumsum([0.60, 0.25, 0.15]), rng.random(n), side="right") + 1
    kind = np.minimum(kind, DOUBLE)
    father_alive, mother_alive = parent_listed(True), parent_listed(False)
    possible = np.select(
        [kind == PATERNAL, kind == MATERNAL],
        [~father_alive, ~mother_alive],
        ~(father_alive | mother_alive),
    )
    code = np.where(orphaned & possible, kind, code)
    return np.where(age < 18, code, -1).astype(np.int8)


def _incomes(rng: np.random.Generator, hh: dict, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """True and declared own monthly income in minor units; -1 where none is recorded."""
    home, age = p["hh"], p["age"]
    n_hh, n = len(hh["size"]), len(home)
    per_person = np.exp(hh["log_consumption"]) / 12  # a month's consumption, local units
    total = per_person * hh["size"]

    pension = np.where(
        p["pension"],
        np.maximum(MINIMUM_PENSION, 1.6 * per_person[home] * rng.lognormal(0, 0.35, n)),
        0.0,
    )
    works = p["employment"] == EMPLOYED
    formal = works & (p["sector"] == FORMAL)
    informal = works & (p["sector"] == INFORMAL)
    weight = np.select([age < 18, formal], [0.4, 1.4], 1.0) * works * rng.lognormal(0, 0.3, n)
    weights = np.bincount(home, weights=weight, minlength=n_hh)
    pensions = np.bincount(home, weights=pension, minlength=n_hh)
    earned = np.maximum(total - pensions, 0.3 * total) * rng.lognormal(0, 0.2, n_hh)
    share = np.divide(weight, weights[home], out=np.zeros(n), where=weights[home] > 0)
    earnings = earned[home] * share

    true = _minor_units(earnings + pension)
    declared_earnings = np.where(informal, earnings * rng.lognormal(-0.15, 0.25, n), earnings)
    declared = _minor_units(declared_earnings + pension)
    recorded = (age >= 15) | works | p["pension"]
    unknown = informal & (rng.random(n) < INFORMAL_UNKNOWN)
    return np.where(recorded, true, -1), np.where(recorded & ~unknown, declared, -1)


def _minor_units(amount: np.ndarray) -> np.ndarray:
    return np.rint(amount * MINOR_UNITS).astype(np.int64)
