"""One chunk of the synthetic population, from household draws to finished Arrow tables.

A chunk depends only on the seed, its index and the counters where it starts, so the output is
the same whatever the machine and however fast it runs; chunks bound the memory.
"""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sijill.synth import (
    duplicates,
    dwelling,
    facts,
    naming,
    population,
    registration,
    tables,
    welfare,
)
from sijill.synth.geography import Geography
from sijill.synth.registration import Keys

DUPLICATE_HOUSEHOLD_BASE = 500_000_000  # household counters of re-registrations start here


@dataclass(frozen=True)
class Context:
    """What every chunk of one run shares."""

    seed: int
    geo: Geography
    keys: Keys
    reference_day: int  # the synthetic "today", as days since 1970-01-01
    poverty_lines: tuple[int, int]  # poverty, extreme poverty


@dataclass
class Start:
    """Where a chunk's counters start (totals of the chunks before it)."""

    households: int = 0
    persons: int = 0
    duplicate_households: int = 0


@dataclass
class Chunk:
    tables: dict[str, pa.Table]
    # For the survey and the summary: one entry per original household.
    stratum: np.ndarray
    consumption: np.ndarray
    household_counter: np.ndarray
    size: np.ndarray
    n_persons: int
    n_duplicate_households: int


def _originals(rng: np.random.Generator, n: int, start: Start, ctx: Context):
    """The population as it really is: households, members, welfare, documents."""
    geo, keys = ctx.geo, ctx.keys
    hh = population.draw_households(rng, n, geo)
    for name, per_locality in (("urban", geo.urban), ("camp", geo.camp), ("effect", geo.effect)):
        hh[name] = per_locality[hh["locality"]]
    hh["counter"] = start.households + np.arange(n, dtype=np.int64)
    p = population.expand_rosters(rng, hh)
    n_p = len(p["hh"])
    p["counter"] = start.persons + np.arange(n_p, dtype=np.int64)
    p.update(naming.assign(rng, hh, p))
    for part in duplicates.NAME_PARTS:
        p[f"spell_{part}"] = np.full(n_p, -1, dtype=np.int32)
    p["typo_field"] = np.full(n_p, -1, dtype=np.int8)
    p["script"] = np.full(n_p, duplicates.BOTH_SCRIPTS, dtype=np.int8)

    p["wg"] = welfare.disability(rng, p["age"], hh["ses"][p["hh"]])
    p["potential"] = welfare.education_potential(rng, hh, p)
    p.update(welfare.adult_activity(rng, hh, p))
    hh["log_consumption"] = welfare.log_consumption(rng, hh, welfare.household_profile(hh, p))
    wealth = (hh["log_consumption"] - welfare.LOG_CONSUMPTION_MEAN) / welfare.LOG_CONSUMPTION_SD
    welfare.child_activity(rng, hh, p, wealth)

    seen = dwelling.living_standard(rng, wealth)
    hh.update(dwelling.dwelling(rng, hh, seen))
    hh["assets"] = dwelling.assets(rng, hh, seen)
    hh["livestock"] = dwelling.livestock(rng, hh, seen)
    hh["income"] = dwelling.income_sources(rng, hh, p, seen, hh["livestock"])

    registration.documents(rng, hh, p, keys)
    registration.phones(rng, hh, p, keys)
    registration.birth_dates(rng, hh, p, ctx.reference_day)
    registration.household_form(rng, hh, geo, ctx.reference_day)
    return hh, p


def build(index: int, n: int, start: Start, ctx: Context) -> Chunk:
    """Chunk number `index`: `n` households whose counters begin at `start`."""
    rng = np.random.default_rng([ctx.seed, 1, index])
    hh, p = _originals(rng, n, start, ctx)
    # A stream of their own: the facts added later left the other columns of a seed unchanged.
    facts.draw(np.random.default_rng([ctx.seed, 4, index]), hh, p)
    n_p = len(p["hh"])
    hh, p = duplicates.inject(rng, hh, p)
    extra = _register_again(rng, hh, start, ctx)
    hh, p = _shuffle(rng, hh, p)
    geo = ctx.geo
    keys_hh = tables.household_keys(hh["counter"], ctx.keys.household)
    persons, person_keys = tables.persons(p, keys_hh, rng)
    original = hh["dup_of"] < 0
    return Chunk(
        tables={
            "households": tables.households(hh, geo, keys_hh),
            "persons": persons,
            "truth_households": tables.truth_households(hh, keys_hh, geo, ctx.poverty_lines),
            "truth_persons": tables.truth_persons(p, person_keys),
        },
        stratum=(2 * geo.governorate[hh["locality"]] + hh["urban"])[original].astype(np.int8),
        consumption=np.exp(hh["log_consumption"][original]),
        household_counter=hh["counter"][original],
        size=hh["size"][original],
        n_persons=n_p,
        n_duplicate_households=len(extra),
    )


def _register_again(rng: np.random.Generator, hh: dict, start: Start, ctx: Context):
    """Give the copied households their own key, date, enumerator; return their rows."""
    extra = np.flatnonzero(hh["dup_of"] >= 0)
    hh["counter"][extra] = (
        DUPLICATE_HOUSEHOLD_BASE + start.duplicate_households + np.arange(len(extra))
    )
    again = {k: v[extra] for k, v in hh.items()}
    registration.reregistration(rng, again, ctx.geo, ctx.reference_day)
    for k, v in again.items():
        hh[k][extra] = v
    return extra


def _shuffle(rng: np.random.Generator, hh: dict, p: dict) -> tuple[dict, dict]:
    """Households in random order (re-registrations mixed in), each one's members together."""
    order = rng.permutation(len(hh["size"]))
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    hh = {k: v[order] for k, v in hh.items()}
    hh["dup_of"] = np.where(hh["dup_of"] >= 0, position[np.maximum(hh["dup_of"], 0)], -1)
    rows = np.lexsort((p["line"], position[p["hh"]]))
    new_row = np.empty_like(rows)
    new_row[rows] = np.arange(len(rows))
    p = {k: v[rows] for k, v in p.items()}
    p["hh"] = position[p["hh"]]
    p["dup_of_row"] = np.where(p["dup_of"] >= 0, new_row[np.maximum(p["dup_of"], 0)], -1)
    return hh, p
