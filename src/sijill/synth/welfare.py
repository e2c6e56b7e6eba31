"""Disability, education, work and the household's latent consumption.

Consumption is the truth a proxy means test tries to predict. Its log is a linear function of
where the household lives, its size and dependants, its head's education, whether anyone has a
formal job, disability, refugee status and an unobserved family background, plus noise. The
coefficients are set so that, with the dwelling and asset indicators drawn from it afterwards
(`dwelling.py`), an OLS on everything a registry observes explains about half of the variance of
log consumption, as real PMTs do (R² 0.4-0.6), not all of it.
"""

import numpy as np

from sijill.registry.codes import PERSON_CODES
from sijill.synth.population import ASYLUM, HEAD, MIGRANT, NON_RELATIVE, REFUGEE, STATELESS

EDUCATION = PERSON_CODES["education_level"]
EMPLOYMENT = PERSON_CODES["employment_status"]
EMPLOYED, UNEMPLOYED, INACTIVE, STUDENT, RETIRED, UNABLE, NOT_APPLICABLE = range(7)
SECTORS = PERSON_CODES["employment_sector"]
FORMAL, INFORMAL = 0, 1
WG_DOMAINS = ("seeing", "hearing", "walking", "cognition", "selfcare", "communication")

# Consumption model. The level is annual consumption per person in local currency units.
LOG_CONSUMPTION_BASE = 8.14
NOISE_SD = 0.50
# Mean and sd of log consumption over households: the dwelling indicators read a standardised
# signal, and these constants (not the chunk's own moments) keep chunks alike.
LOG_CONSUMPTION_MEAN = 8.11
LOG_CONSUMPTION_SD = 0.67
# Poverty lines (local currency units per person per year), fixed for the synthetic country so
# that about 22% of people are poor and about 6% extremely poor.
POVERTY_LINE = 1_800
EXTREME_POVERTY_LINE = 1_100


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def disability(rng: np.random.Generator, age: np.ndarray, ses: np.ndarray) -> np.ndarray:
    """Washington Group levels (1-4) per domain, 0 where not asked (under 5)."""
    n = len(age)
    older = np.maximum(age - 40, 0)
    mild_p = np.column_stack(
        [
            0.030 + 0.004 * older,
            0.010 + 0.003 * np.maximum(age - 50, 0),
            0.015 + 0.004 * np.maximum(age - 45, 0),
            0.015 + 0.002 * np.maximum(age - 55, 0),
            0.005 + 0.002 * np.maximum(age - 60, 0),
            np.full(n, 0.008),
        ]
    )
    levels = np.where(rng.random((n, 6)) < mild_p, 2, 1).astype(np.int8)
    # Severe difficulty rises steeply after 60 and is more frequent in poorer families.
    severe_p = (0.019 + 0.30 * _logistic((age - 72) / 8)) * np.exp(-0.25 * ses)
    severe = np.flatnonzero(rng.random(n) < severe_p)
    elderly = age[severe] >= 50
    domain_p = np.where(
        elderly[:, None], [0.30, 0.15, 0.35, 0.10, 0.05, 0.05], [0.15, 0.10, 0.25, 0.30, 0.05, 0.15]
    )
    # One domain each, and a second one for about 30% of them.
    for rows in (severe, severe[rng.random(len(severe)) < 0.3]):
        cumulative = np.cumsum(domain_p[np.searchsorted(severe, rows)], axis=1)
        domain = (rng.random(len(rows))[:, None] > cumulative).sum(axis=1).clip(0, 5)
        levels[rows, domain] = np.where(rng.random(len(rows)) < 0.25, 4, 3)
    levels[age < 5] = 0
    return levels


def education_potential(rng: np.random.Generator, hh: dict, p: dict) -> np.ndarray:
    """The highest level (0-5) each person reaches or would reach, from family and cohort."""
    home, age, male = p["hh"], p["age"], p["sex_male"]
    group = hh["group"][home]
    cohort = -0.03 * np.maximum(age - 30, 0)
    gender = np.where(male, 0.0, np.select([age >= 50, age >= 30], [-0.5, -0.25], 0.0))
    z = (
        0.85 * hh["ses"][home]
        + cohort
        + gender
        + 0.45 * hh["urban"][home]
        - 0.2 * np.isin(group, (REFUGEE, ASYLUM))
        - 0.3 * (group == MIGRANT)
        + rng.normal(0, 0.9, len(age))
    )
    potential = np.searchsorted([-1.3, -0.45, 0.2, 0.9, 1.3], z).astype(np.int8)
    worker = p["rel"] == NON_RELATIVE
    return np.where(worker, rng.integers(1, 4, len(age)), potential).astype(np.int8)


def age_cap(age: np.ndarray) -> np.ndarray:
    """The level a pupil of this age attends (or has reached) when schooling is on time."""
    return np.searchsorted([6, 12, 15, 18, 22], age, side="right").astype(np.int8)


def adult_activity(rng: np.random.Generator, hh: dict, p: dict) -> dict[str, np.ndarray]:
    """Education, enrolment, employment and sector of everyone aged 18 and over."""
    age, potential = p["age"], p["potential"]
    adult = age >= 18
    enrolled = adult & (age < 25) & (potential >= 4) & (rng.random(len(age)) < 0.7)
    level = np.where(adult, np.minimum(potential, age_cap(age)), 0).astype(np.int8)
    status = np.where(adult, _work_status(rng, hh, p, enrolled), NOT_APPLICABLE).astype(np.int8)
    sector = np.where(status == EMPLOYED, _sector(rng, hh, p), -1).astype(np.int8)
    return {"education": level, "enrolled": enrolled, "employment": status, "sector": sector}


def _work_status(rng: np.random.Generator, hh: dict, p: dict, enrolled: np.ndarray):
    """Labour force status: few women in the labour force, high youth unemployment (MENA)."""
    home, age, male = p["hh"], p["age"], p["sex_male"]
    n = len(age)
    group = hh["group"][home]
    degree = p["potential"] >= 4
    in_force = np.where(male, 0.82, 0.12 + 0.14 * degree + 0.08 * hh["urban"][home])
    refugee = np.isin(group, (REFUGEE, ASYLUM))
    unemployment = 0.11 + 0.10 * (age < 25) + 0.06 * ~male + 0.08 * refugee - 0.03 * degree
    employed = np.where(rng.random(n) < unemployment, UNEMPLOYED, EMPLOYED)
    status = np.where(rng.random(n) < in_force, employed, INACTIVE)
    still_working = rng.random(n) < np.where(male, 0.2, 0.05)
    old_status = np.select(
        [rng.random(n) < np.where(male, 0.45, 0.12), still_working], [RETIRED, EMPLOYED], INACTIVE
    )
    status = np.where(age >= 60, old_status, status)
    severe = p["wg"].max(axis=1) >= 3
    status = np.where(severe & (rng.random(n) < 0.6), UNABLE, status)
    status = np.where(enrolled, STUDENT, status)
    # Migrant workers came to work; domestic workers live where they work.
    migrant_man = (group == MIGRANT) & male & (age < 60)
    status = np.where(migrant_man & (rng.random(n) < 0.9), EMPLOYED, status)
    return np.where(p["rel"] == NON_RELATIVE, EMPLOYED, status)


def _sector(rng: np.random.Generator, hh: dict, p: dict) -> np.ndarray:
    """Formal or informal, were the person employed: education, towns and papers decide."""
    home, group = p["hh"], hh["group"][p["hh"]]
    formal_p = _logistic(
        -1.6
        + 0.55 * p["potential"]
        + 0.5 * hh["urban"][home]
        + 0.35 * hh["ses"][home]
        + 0.4 * ~p["sex_male"]
        - 1.8 * np.isin(group, (REFUGEE, ASYLUM))
        - 1.0 * (group == MIGRANT)
        - 1.0 * (group == STATELESS)
    )
    formal = (rng.random(len(home)) < formal_p) & (p["rel"] != NON_RELATIVE)
    return np.where(formal, FORMAL, INFORMAL)


def household_profile(hh: dict, p: dict) -> dict[str, np.ndarray]:
    """Per-household aggregates of the roster that consumption depends on."""
    n_hh, home = len(hh["size"]), p["hh"]

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(home, weights=mask, minlength=n_hh)

    size = hh["size"].astype(np.float64)
    age = p["age"]
    head = p["rel"] == HEAD
    head_education = np.zeros(n_hh)
    head_education[home[head]] = p["education"][head]
    return {
        "dependency": count((age < 15) | (age >= 65)) / size,
        "head_education": head_education,
        "formal": count((p["sector"] == FORMAL) & (age >= 18)),
        "earners": count((p["employment"] == EMPLOYED) & (age >= 18)),
        "disabled": count(p["wg"].max(axis=1) >= 3) > 0,
    }


def log_consumption(rng: np.random.Generator, hh: dict, profile: dict) -> np.ndarray:
    """Natural log of annual per-capita consumption, one per household."""
    size = hh["size"].astype(np.float64)
    group = hh["group"]
    refugee = np.isin(group, (REFUGEE, ASYLUM))
    return (
        LOG_CONSUMPTION_BASE
        + hh["effect"]
        + 0.12 * hh["urban"]
        - 0.24 * np.log(size)
        - 0.35 * profile["dependency"]
        + 0.06 * profile["head_education"]
        + 0.16 * (profile["formal"] > 0)
        + 0.25 * profile["earners"] / size
        - 0.10 * profile["disabled"]
        - 0.22 * refugee
        - 0.12 * hh["camp"]
        - 0.10 * (group == STATELESS)
        - 0.05 * hh["head_female"]
        + 0.12 * hh["ses"]
        + rng.normal(0.0, NOISE_SD, len(size))
    )


def child_activity(rng: np.random.Generator, hh: dict, p: dict, wealth: np.ndarray) -> None:
    """Schooling (and, from 15, work) of under-18s, which poverty cuts short. Updates `p`."""
    home, age = p["hh"], p["age"]
    n = len(age)
    child = age < 18
    cap = age_cap(age)
    refugee = np.isin(hh["group"][home], (REFUGEE, ASYLUM))
    base = np.select([age < 6, age < 12, age < 15], [-9.0, 3.2, 2.2], 1.0)
    attend_p = _logistic(
        base
        + 0.9 * wealth[home]
        + 0.5 * (p["potential"] - cap)
        + 0.4 * hh["urban"][home]
        - 0.8 * refugee
    )
    enrolled = child & (rng.random(n) < attend_p)
    dropout_level = np.clip(np.minimum(p["potential"], cap - 1), 0, None)
    level = np.where(enrolled, cap, np.where(age < 6, 0, dropout_level))
    p["education"] = np.where(child, level, p["education"]).astype(np.int8)
    p["enrolled"] = np.where(child, enrolled, p["enrolled"])
    teen = child & (age >= 15)
    works = rng.random(n) < np.where(p["sex_male"], 0.35, 0.06) * np.exp(-0.8 * wealth[home])
    teen_status = np.where(enrolled, STUDENT, np.where(works, EMPLOYED, INACTIVE))
    p["employment"] = np.where(teen, teen_status, p["employment"]).astype(np.int8)
    p["sector"] = np.where(teen & (teen_status == EMPLOYED), INFORMAL, p["sector"]).astype(np.int8)
