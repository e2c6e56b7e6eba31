"""Who lives in each household: its type, its roster, each member's age, sex and marital status.

A household is drawn as a count of members per relationship to the head (one head, at most one
spouse, children, grandchildren, parents, siblings, other relatives, a live-in domestic worker).
Rosters are then expanded person by person with `np.repeat`, so the work is whole-array: no loop
over households or persons. Ages follow the relationships by construction: a mother is at least
17 years older than her children, the head's parents at least 18 years older than the head.
"""

import numpy as np

from sijill.registry.codes import PERSON_CODES
from sijill.synth.geography import Geography

RELATIONSHIPS = PERSON_CODES["relationship"]
HEAD, SPOUSE, CHILD, GRANDCHILD, PARENT, SIBLING, OTHER, NON_RELATIVE = range(8)

MARITAL = PERSON_CODES["marital_status"]
NEVER, MARRIED, DIVORCED, WIDOWED, SEPARATED = range(5)

RESIDENCY = PERSON_CODES["residency_status"]
CITIZEN, REFUGEE, ASYLUM, MIGRANT, STATELESS = range(5)

# Index 0 is the synthetic country; stateless persons have no nationality (-1).
NATIONALITIES = ("XSJ", "SYR", "IRQ", "YEM", "SDN", "EGY", "PHL", "ETH", "LKA", "BGD")
REFUGEE_ORIGINS = ((1, 0.70), (2, 0.15), (3, 0.10), (4, 0.05))
MIGRANT_ORIGINS = ((5, 0.75), (4, 0.25))
DOMESTIC_ORIGINS = ((6, 0.35), (7, 0.30), (8, 0.20), (9, 0.15))

# Shares of households by legal status: refugees ~4%, a middle-sized caseload for the region.
GROUP_SHARES = {CITIZEN: 0.932, REFUGEE: 0.040, MIGRANT: 0.025, STATELESS: 0.003}
SINGLE, COUPLE, NUCLEAR, SINGLE_PARENT, EXTENDED = range(5)
TYPE_SHARES = {
    CITIZEN: (0.06, 0.09, 0.58, 0.09, 0.18),
    REFUGEE: (0.03, 0.05, 0.60, 0.14, 0.18),
    MIGRANT: (0.45, 0.12, 0.38, 0.02, 0.03),
    STATELESS: (0.05, 0.08, 0.58, 0.11, 0.18),
}
CAMP_SHARE = 0.55  # of refugee households, living in a camp


def _pick(rng: np.random.Generator, n: int, probabilities) -> np.ndarray:
    cumulative = np.cumsum(probabilities) / np.sum(probabilities)
    return np.searchsorted(cumulative, rng.random(n), side="right").astype(np.int8)


def _weighted_locality(rng: np.random.Generator, n: int, weight: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(weight) / np.sum(weight)
    return np.searchsorted(cumulative, rng.random(n), side="right").astype(np.int16)


def _localities(rng: np.random.Generator, group: np.ndarray, geo: Geography) -> np.ndarray:
    locality = _weighted_locality(rng, len(group), geo.weight)
    # Refugees outside camps settle in towns near the camps; migrants in towns; the stateless
    # (bidoon) mostly in the steppe governorate.
    for g, bias in (
        (REFUGEE, np.where(geo.urban, 1.5, 1.0) * np.where(_near_camp(geo), 3.0, 1.0)),
        (MIGRANT, np.where(geo.urban, 2.5, 1.0)),
        (STATELESS, np.where(geo.governorate == 5, 6.0, 1.0)),
    ):
        rows = np.flatnonzero(group == g)
        locality[rows] = _weighted_locality(rng, len(rows), geo.weight * bias)
    refugees = np.flatnonzero(group == REFUGEE)
    in_camp = refugees[rng.random(len(refugees)) < CAMP_SHARE]
    camps = np.flatnonzero(geo.camp)
    locality[in_camp] = camps[rng.integers(0, len(camps), len(in_camp))]
    return locality


def _near_camp(geo: Geography) -> np.ndarray:
    return np.isin(geo.governorate, np.unique(geo.governorate[geo.camp]))


def _nationality(rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
    nat = np.zeros(len(group), dtype=np.int8)
    for g, origins in (
        (REFUGEE, REFUGEE_ORIGINS),
        (ASYLUM, REFUGEE_ORIGINS),
        (MIGRANT, MIGRANT_ORIGINS),
    ):
        rows = np.flatnonzero(group == g)
        codes, p = zip(*origins, strict=True)
        nat[rows] = np.array(codes, dtype=np.int8)[_pick(rng, len(rows), p)]
    nat[group == STATELESS] = -1
    return nat


def _head_ages(rng: np.random.Generator, kind: np.ndarray, female: np.ndarray, group):
    n = len(kind)
    age = np.clip(rng.normal(42, 10, n), 20, 75)  # nuclear
    single = kind == SINGLE
    age = np.where(single & female, np.clip(rng.normal(66, 10, n), 30, 95), age)
    age = np.where(single & ~female, 22 + 55 * rng.beta(1.1, 2.0, n), age)
    young_couple = rng.random(n) < 0.5
    couple_age = np.where(
        young_couple, np.clip(rng.normal(28, 4, n), 18, 40), np.clip(rng.normal(64, 8, n), 45, 95)
    )
    age = np.where(kind == COUPLE, couple_age, age)
    age = np.where(kind == SINGLE_PARENT, np.clip(rng.normal(44, 9, n), 22, 75), age)
    age = np.where(kind == EXTENDED, np.clip(rng.normal(50, 12, n), 22, 88), age)
    return np.where(group == MIGRANT, np.clip(rng.normal(33, 7, n), 19, 60), age)


def draw_households(rng: np.random.Generator, n: int, geo: Geography) -> dict[str, np.ndarray]:
    """Household-level draws: where, which group, which type, and the members per relationship."""
    groups, shares = zip(*GROUP_SHARES.items(), strict=True)
    group = np.array(groups, dtype=np.int8)[_pick(rng, n, shares)]
    # An asylum seeker's household is a refugee household whose claim is not yet decided.
    residency = np.where((group == REFUGEE) & (rng.random(n) < 0.15), ASYLUM, group)
    locality = _localities(rng, group, geo)
    kind = np.empty(n, dtype=np.int8)
    for g, p in TYPE_SHARES.items():
        rows = np.flatnonzero(group == g)
        kind[rows] = _pick(rng, len(rows), p)
    ses = rng.normal(0.0, 1.0, n)  # family background: unobserved, shared by all members
    hh = {
        "group": group,
        "residency": residency.astype(np.int8),
        "locality": locality,
        "kind": kind,
        "ses": ses,
        "nationality": _nationality(rng, residency),
    }
    hh.update(_composition(rng, hh, geo))
    return hh


def _composition(rng: np.random.Generator, hh: dict, geo: Geography) -> dict[str, np.ndarray]:
    kind, group, ses = hh["kind"], hh["group"], hh["ses"]
    n = len(kind)
    rural = ~geo.urban[hh["locality"]]
    p_female_head = np.select(
        [kind == SINGLE, kind == SINGLE_PARENT], [np.where(group == MIGRANT, 0.1, 0.5), 0.85], 0.03
    )
    head_female = rng.random(n) < p_female_head
    head_age = _head_ages(rng, kind, head_female, group)
    has_spouse = np.isin(kind, (COUPLE, NUCLEAR)) | ((kind == EXTENDED) & (rng.random(n) < 0.8))
    gap = np.clip(rng.normal(5.5, 4.0, n), -3, 20)  # husband's age minus wife's
    spouse_age = np.where(head_female, head_age + gap, np.maximum(head_age - gap, 17))
    spouse_age = np.where(has_spouse, spouse_age, np.nan)
    mother_age = np.select([head_female, has_spouse], [head_age, spouse_age], head_age - 4)

    # Children: the youngest ones still at home, born from the mother's first birth onwards.
    first_birth = rng.uniform(18, 26, n)
    leave_age = rng.uniform(19, 34, n)
    oldest_child = np.minimum(mother_age - first_birth, leave_age)
    room = np.where(oldest_child >= 0, 1 + np.floor(np.maximum(oldest_child, 0) / 3.4), 0)
    fertility = (
        2.5 + 0.4 * rural - 0.25 * ses + 0.3 * (group == REFUGEE) - 0.8 * geo.effect[hh["locality"]]
    )
    wanted = rng.poisson(np.clip(fertility, 0.3, None))
    wanted = np.select(
        [np.isin(kind, (NUCLEAR, SINGLE_PARENT)), kind == EXTENDED], [1 + wanted, wanted], 0
    )
    children = np.minimum(np.minimum(wanted, room), 10).astype(np.int16)

    extended = kind == EXTENDED
    grandchildren = np.where(extended & (head_age >= 42), rng.poisson(1.2, n), 0)
    siblings = np.where(extended & (head_age <= 50), rng.poisson(0.5, n), 0)
    parents = np.where(extended & (head_age <= 62), _pick(rng, n, (0.45, 0.38, 0.17)), 0)
    others = np.where(extended, rng.poisson(0.25, n), (rng.random(n) < 0.015).astype(int))
    others = np.where(extended & (grandchildren + siblings + parents + others == 0), 1, others)
    domestic = (group == CITIZEN) & ~rural & (ses > 1.5) & (kind != SINGLE) & (rng.random(n) < 0.3)
    counts = np.column_stack(
        [
            np.ones(n),
            has_spouse,
            children,
            np.minimum(grandchildren, 6),
            parents,
            np.minimum(siblings, 4),
            np.minimum(others, 3),
            domestic,
        ]
    ).astype(np.int16)
    return {
        "head_female": head_female,
        "head_age": head_age,
        "spouse_age": spouse_age,
        "mother_age": mother_age,
        "oldest_child": oldest_child,
        "counts": counts,
        "size": counts.sum(axis=1).astype(np.int16),
    }


def expand_rosters(rng: np.random.Generator, hh: dict) -> dict[str, np.ndarray]:
    """One row per member, households contiguous, members in roster order (head first)."""
    counts = hh["counts"]
    n_hh = len(counts)
    flat = counts.ravel()
    rel = np.repeat(np.tile(np.arange(8, dtype=np.int8), n_hh), flat)
    home = np.repeat(np.arange(n_hh, dtype=np.int32), hh["size"])
    first_of_hh = np.concatenate([[0], np.cumsum(hh["size"])[:-1]])
    line = (np.arange(len(rel)) - first_of_hh[home] + 1).astype(np.int16)
    group_start = np.concatenate([[0], np.cumsum(flat)[:-1]])
    rank = (np.arange(len(rel)) - np.repeat(group_start, flat)).astype(np.int16)
    p = {"hh": home, "line": line, "rel": rel, "rank": rank}
    p["sex_male"] = _sexes(rng, hh, p)
    p["age"] = _ages(rng, hh, p, group_first=np.repeat(group_start, flat))
    p["marital"] = _marital(rng, hh, p)
    return p


def _sexes(rng: np.random.Generator, hh: dict, p: dict) -> np.ndarray:
    rel, home = p["rel"], p["hh"]
    head_male = ~hh["head_female"][home]
    male = rng.random(len(rel)) < 0.51
    male = np.where(rel == HEAD, head_male, male)
    male = np.where(rel == SPOUSE, ~head_male, male)
    # With two parents the first listed is the father; a lone parent is most often a widow.
    two_parents = hh["counts"][home, PARENT] == 2
    parent_male = np.where(two_parents, p["rank"] == 0, rng.random(len(rel)) < 0.35)
    male = np.where(rel == PARENT, parent_male, male)
    return np.where(rel == NON_RELATIVE, rng.random(len(rel)) < 0.1, male)


def _ages(rng: np.random.Generator, hh: dict, p: dict, group_first: np.ndarray) -> np.ndarray:
    rel, home = p["rel"], p["hh"]
    n = len(rel)
    head_age = hh["head_age"][home]
    age = head_age.copy()
    age = np.where(rel == SPOUSE, hh["spouse_age"][home], age)
    # Each child is 1.3 to 3.4 years younger than the previous one (3.4 is what `room` assumed).
    spacing = np.where(p["rank"] > 0, rng.uniform(1.3, 3.4, n), 0.0) * (rel == CHILD)
    behind = np.cumsum(spacing)
    child_age = hh["oldest_child"][home] - (behind - behind[group_first])
    age = np.where(rel == CHILD, child_age, age)
    age = np.where(rel == GRANDCHILD, rng.uniform(0, 1, n) * np.clip(head_age - 38, 0, 17), age)
    father = p["sex_male"] & (rel == PARENT)
    age = np.where(
        rel == PARENT,
        head_age + np.where(father, rng.uniform(24, 38, n), rng.uniform(19, 32, n)),
        age,
    )
    age = np.where(rel == SIBLING, np.maximum(head_age + rng.uniform(-15, 3, n), 5), age)
    age = np.where(rel == OTHER, rng.uniform(3, 85, n), age)
    age = np.where(rel == NON_RELATIVE, rng.uniform(22, 45, n), age)
    return np.clip(age, 0, 99.9)


def _marital(rng: np.random.Generator, hh: dict, p: dict) -> np.ndarray:
    rel, home, age, male = p["rel"], p["hh"], p["age"], p["sex_male"]
    n = len(rel)
    counts = hh["counts"][home]
    adult_single = _pick(rng, n, (0.88, 0.0, 0.07, 0.02, 0.03))
    status = np.where(age < 18, NEVER, adult_single).astype(np.int8)
    # Heads without a spouse: widows, divorcees, bachelors, in the proportions of the region.
    alone = _pick(rng, n, (0.0, 0.0, 0.3, 0.55, 0.15))  # single parents and extended
    old_female = _pick(rng, n, (0.15, 0.0, 0.12, 0.73, 0.0))
    young_male = _pick(rng, n, (0.80, 0.0, 0.15, 0.0, 0.05))
    older_male = _pick(rng, n, (0.35, 0.0, 0.25, 0.40, 0.0))
    kind = hh["kind"][home]
    single_status = np.select([~male, age < 35], [old_female, young_male], older_male)
    head_status = np.where(kind == SINGLE, single_status, alone)
    head_status = np.where(counts[:, SPOUSE] == 1, MARRIED, head_status)
    status = np.where(rel == HEAD, head_status, status)
    status = np.where(rel == SPOUSE, MARRIED, status)
    status = np.where(rel == PARENT, np.where(counts[:, PARENT] == 2, MARRIED, WIDOWED), status)
    status = np.where(rel == GRANDCHILD, NEVER, status)
    other = _pick(rng, n, (0.25, 0.30, 0.10, 0.35, 0.0))
    status = np.where((rel == OTHER) & (age >= 18), other, status)
    worker = np.where(rng.random(n) < 0.4, MARRIED, NEVER)
    return np.where(rel == NON_RELATIVE, worker, status).astype(np.int8)
