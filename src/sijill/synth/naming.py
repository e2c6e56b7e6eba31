"""Four-part Arabic names that follow kinship.

A person's name is given name, father's given name, grandfather's given name, family name. So a
child of a male head has the head's given name as father's name, the head's father's name as
grandfather's name and the head's family name; the head's father is named by the head's father's
and grandfather's names; a wife keeps her own father's line (and often, not always, another
family). Domestic workers from Asia and East Africa have a given and a family name in Latin only.
"""

import numpy as np

from sijill.synth import names
from sijill.synth.population import (
    CHILD,
    DOMESTIC_ORIGINS,
    GRANDCHILD,
    NATIONALITIES,
    NON_RELATIVE,
    OTHER,
    PARENT,
    SIBLING,
    SPOUSE,
)

COUSIN_MARRIAGE = 0.25  # share of wives from the husband's own family (a regional estimate)


def _given(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    n = len(male)
    men = names.GIVEN.sample(rng, n, *names.MALE_RANGE)
    women = names.GIVEN.sample(rng, n, *names.FEMALE_RANGE)
    return np.where(male, men, women)


def _men(rng: np.random.Generator, n: int) -> np.ndarray:
    return names.GIVEN.sample(rng, n, *names.MALE_RANGE)


def _families(rng: np.random.Generator, n: int) -> np.ndarray:
    return names.SURNAMES.sample(rng, n, 0, len(names.FAMILY))


def assign(rng: np.random.Generator, hh: dict, p: dict) -> dict[str, np.ndarray]:
    """Name ids per person: `given`, `father`, `grandfather` (GIVEN table), `family`."""
    rel, home, male = p["rel"], p["hh"], p["sex_male"]
    n = len(rel)
    given = _given(rng, male)
    father, grandfather, family = _men(rng, n), _men(rng, n), _families(rng, n)
    # The head keeps the names drawn above: its line is the household's.
    head_row = np.concatenate([[0], np.cumsum(hh["size"])[:-1]])
    head = {
        "given": given[head_row],
        "father": father[head_row],
        "grandfather": grandfather[head_row],
        "family": family[head_row],
    }
    dad = _childrens_father(rng, hh, head_row, given, father, family)
    is_ = {r: rel == r for r in (SPOUSE, CHILD, GRANDCHILD, PARENT, SIBLING, OTHER)}

    def follow(mask: np.ndarray, of_father, of_grandfather, of_family) -> None:
        """Give `mask`'s persons these per-household names (None: keep what was drawn)."""
        nonlocal father, grandfather, family
        if of_father is not None:
            father = np.where(mask, of_father[home], father)
        if of_grandfather is not None:
            grandfather = np.where(mask, of_grandfather[home], grandfather)
        family = np.where(mask, of_family[home], family)

    follow(is_[CHILD], dad["given"], dad["father"], dad["family"])
    follow(is_[SIBLING], head["father"], head["grandfather"], head["family"])
    # Grandchildren here are the children of a male head's sons.
    grand_line = is_[GRANDCHILD] & ~hh["head_female"][home]
    follow(grand_line, None, head["given"], head["family"])
    # The head's father is named by the head's own father's and grandfather's names.
    head_father = is_[PARENT] & male
    given = np.where(head_father, head["father"][home], given)
    follow(head_father, head["grandfather"], None, head["family"])
    cousins = (is_[SPOUSE] | is_[PARENT]) & ~male & (rng.random(n) < COUSIN_MARRIAGE)
    kin = is_[OTHER] & (rng.random(n) < 0.5)
    family = np.where(cousins | kin, head["family"][home], family)
    given = _distinct_within_households(rng, home, male, given, keep=head_father)
    ids = {"given": given, "father": father, "grandfather": grandfather, "family": family}
    _name_domestic_workers(rng, p, ids)
    return {k: v.astype(np.int32) for k, v in ids.items()}


def _distinct_within_households(rng, home, male, given, keep: np.ndarray) -> np.ndarray:
    """Redraw a given name already borne by an earlier member (two sons are not both Mahmoud);
    `keep` marks names fixed by kinship. A few rounds leave next to no repeats."""
    for _ in range(4):
        order = np.lexsort((np.arange(len(given)), given, home))
        same = (home[order][1:] == home[order][:-1]) & (given[order][1:] == given[order][:-1])
        repeat = order[1:][same]
        repeat = repeat[~keep[repeat]]
        if not len(repeat):
            break
        given[repeat] = _given(rng, male[repeat])
    return given


def _childrens_father(rng, hh: dict, head_row, given, father, family) -> dict[str, np.ndarray]:
    """Per household, the names of the man whose children live there: the head, the husband of
    a female head, or (for a widow's or divorcee's children) a man who is not on the roster."""
    n_hh = len(head_row)
    spouse_row = np.where(hh["counts"][:, SPOUSE] == 1, head_row + 1, head_row)
    husband = hh["head_female"] & (hh["counts"][:, SPOUSE] == 1)
    absent = hh["head_female"] & ~husband
    row = np.where(husband, spouse_row, head_row)
    return {
        "given": np.where(absent, _men(rng, n_hh), given[row]),
        "father": np.where(absent, _men(rng, n_hh), father[row]),
        "family": np.where(absent, _families(rng, n_hh), family[row]),
    }


def _name_domestic_workers(rng: np.random.Generator, p: dict, ids: dict) -> None:
    workers = np.flatnonzero(p["rel"] == NON_RELATIVE)
    codes, shares = zip(*DOMESTIC_ORIGINS, strict=True)
    cumulative = np.cumsum(shares) / np.sum(shares)
    origin = np.array(codes)[np.searchsorted(cumulative, rng.random(len(workers)), side="right")]
    p["worker_nationality"] = np.full(len(p["rel"]), -1, dtype=np.int8)
    p["worker_nationality"][workers] = origin
    for code in np.unique(origin):
        rows = workers[origin == code]
        country = NATIONALITIES[code]
        ids["given"][rows] = names.GIVEN.sample(rng, len(rows), *names.foreign_given_range(country))
        fam_lo, fam_hi = names.foreign_family_range(country)
        ids["family"][rows] = names.SURNAMES.sample(rng, len(rows), fam_lo, fam_hi)
        ids["father"][rows] = -1
        ids["grandfather"][rows] = -1
