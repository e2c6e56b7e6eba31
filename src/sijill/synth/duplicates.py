"""Duplicate registrations with ground truth: the cases record linkage has to catch.

Two ways a person ends up registered twice, as in real registries:

- a whole household registered again (another survey round, another enumerator) under a new
  household key; each member's second record differs from the first in one way: a `typo`, a
  `transliteration` (another Latin spelling), the ID left blank (`national_id_missing`), the ID
  mistyped in a way its checksum accepts (`national_id_mistyped`), day and month swapped
  (`day_month_swapped`), or the names written in the other script (`other_script`: the
  original record then has its names in Arabic only and the copy in Latin only, or the
  reverse, as two agencies' lists do; the Latin record spells each name with one of its
  variants drawn at random, so no one table turns the Arabic into it);
- one person also listed in another household (`moved_household`): a son listed by his parents
  and by his wife's family, a relative listed where she stays.

Typos are applied to the written names (`tables.py`); everything else here, on codes.
"""

import numpy as np

from sijill.synth import names, national_ids
from sijill.synth.population import NON_RELATIVE, OTHER
from sijill.synth.registration import FULL

KINDS = (
    "typo",
    "transliteration",
    "national_id_missing",
    "national_id_mistyped",
    "day_month_swapped",
    "other_script",
    "moved_household",
)
TYPO, TRANSLITERATION, ID_MISSING, ID_MISTYPED, DAY_MONTH, OTHER_SCRIPT, MOVED = range(7)
# Among members of a re-registered household, one per kind before MOVED. `other_script` took
# 0.15 from the others, whose proportions stayed about as they were.
KIND_SHARES = (0.25, 0.20, 0.13, 0.10, 0.17, 0.15)
# Which scripts a record's names are written in (`script`): both unless one of an
# `other_script` pair.
BOTH_SCRIPTS, ARABIC_ONLY, LATIN_ONLY = -1, 0, 1
HOUSEHOLD_RATE = 0.022  # households registered twice
MOVED_RATE = 0.013  # persons aged 15+ also listed in another household
NAME_PARTS = ("given", "father", "grandfather", "family")
PART_SHARES = (0.50, 0.25, 0.10, 0.15)


def inject(rng: np.random.Generator, hh: dict, p: dict) -> tuple[dict, dict]:
    """Households and persons with the duplicates added (households: originals first).

    Persons get `dup_of` (row of the original, -1 for originals) and `dup_kind` (-1 for
    originals); households get `dup_of` the same way.
    """
    n_hh, n_p = len(hh["size"]), len(p["hh"])
    p["dup_of"] = np.full(n_p, -1, dtype=np.int64)
    p["dup_kind"] = np.full(n_p, -1, dtype=np.int8)
    hh["dup_of"] = np.full(n_hh, -1, dtype=np.int64)

    again = np.flatnonzero(rng.random(n_hh) < HOUSEHOLD_RATE)
    new_hh = {k: v[again] for k, v in hh.items()}
    new_hh["dup_of"] = again
    members = np.flatnonzero(np.isin(p["hh"], again))
    copies = _copy(p, members)
    copies["hh"] = n_hh + np.searchsorted(again, p["hh"][members])
    _vary(rng, copies)
    _other_script(rng, p, copies)

    # (A household alone in its chunk has nowhere else to be listed.)
    movers = np.flatnonzero((p["age"] >= 15) & (rng.random(n_p) < MOVED_RATE) & (n_hh > 1))
    moved = _copy(p, movers)
    moved["dup_kind"][:] = MOVED
    target = rng.integers(0, max(n_hh - 1, 1), len(movers))
    target = np.where(target >= p["hh"][movers], target + 1, target)  # never their own
    moved["hh"] = target.astype(np.int32)
    moved["rel"] = np.where(rng.random(len(movers)) < 0.75, OTHER, NON_RELATIVE).astype(np.int8)
    # Appended after the target's own members, in the order they were drawn.
    order = np.argsort(target, kind="stable")
    first = np.searchsorted(target[order], target[order])
    rank = np.empty(len(movers), dtype=np.int64)
    rank[order] = np.arange(len(movers)) - first
    moved["line"] = (hh["size"][target] + 1 + rank).astype(np.int16)

    households = {k: np.concatenate([hh[k], new_hh[k]]) for k in hh}
    persons = {k: np.concatenate([p[k], copies[k], moved[k]]) for k in p}
    return households, persons


def _copy(p: dict, rows: np.ndarray) -> dict:
    out = {k: v[rows] for k, v in p.items()}
    out["dup_of"] = rows.astype(np.int64)
    return out


def _vary(rng: np.random.Generator, c: dict) -> None:
    """Give each copied member of a re-registered household one difference from the original."""
    n = len(c["hh"])
    has_id = c["id_type"] >= 0
    year, month, day = _ymd(c["birth_days"])
    swappable = (c["birth_precision"] == FULL) & (day <= 12) & (day != month)
    spellable = _spellable(c)
    # (Domestic workers' names have no Arabic form to write.)
    arabic = _has_arabic(names.GIVEN, c["given"]) & _has_arabic(names.SURNAMES, c["family"])
    eligible = np.column_stack(
        [np.ones(n, bool), spellable.any(axis=1), has_id, has_id, swappable, arabic]
    )
    wanted = _draw(rng, np.broadcast_to(KIND_SHARES, (n, len(KIND_SHARES))))
    kind = np.where(
        eligible[np.arange(n), wanted],
        wanted,
        np.where(eligible[:, TRANSLITERATION], TRANSLITERATION, TYPO),
    )
    c["dup_kind"] = kind.astype(np.int8)

    rows = np.flatnonzero(kind == TRANSLITERATION)
    part = _draw(rng, spellable[rows] * np.array(PART_SHARES))
    for k, name in enumerate(NAME_PARTS):
        chosen = rows[part == k]
        ids = c[name][chosen]
        table = names.SURNAMES if name == "family" else names.GIVEN
        spellings = table.n_spellings[ids]
        shift = 1 + np.floor(rng.random(len(chosen)) * (spellings - 1)).astype(np.int32)
        c[f"spell_{name}"][chosen] = (table.canonical[ids] + shift) % spellings

    missing = kind == ID_MISSING
    c["id_type"] = np.where(missing, -1, c["id_type"]).astype(np.int8)
    c["id_number"] = np.where(missing, -1, c["id_number"])
    # The number is kept without check digits, so a mistyped national ID gets correct ones when
    # written: the typo a form with a checksum lets through.
    rows = np.flatnonzero(kind == ID_MISTYPED)
    c["id_number"][rows] = national_ids.mistype(c["id_number"][rows], rng)

    rows = np.flatnonzero(kind == DAY_MONTH)
    c["birth_days"][rows] = _days(year[rows], day[rows], month[rows])

    rows = np.flatnonzero(kind == TYPO)
    c["typo_field"][rows] = _typo_fields(rng, c, rows)


def _other_script(rng: np.random.Generator, p: dict, c: dict) -> None:
    """Write each `other_script` pair in one script per record: the original in Arabic and the
    copy in Latin, or the reverse (half each); the Latin one romanised its own way.

    Runs before anyone is copied into another household, so such a copy is written as its
    original is.
    """
    rows = np.flatnonzero(c["dup_kind"] == OTHER_SCRIPT)
    originals = c["dup_of"][rows]
    latin_copy = rng.random(len(rows)) < 0.5
    c["script"][rows] = np.where(latin_copy, LATIN_ONLY, ARABIC_ONLY)
    p["script"][originals] = np.where(latin_copy, ARABIC_ONLY, LATIN_ONLY)
    _romanise(rng, c, rows[latin_copy])
    _romanise(rng, p, originals[~latin_copy])


def _romanise(rng: np.random.Generator, d: dict, rows: np.ndarray) -> None:
    """Each name part of `rows` spelled with one of its Latin variants, drawn uniformly."""
    for name in NAME_PARTS:
        table = names.SURNAMES if name == "family" else names.GIVEN
        ids = d[name][rows]
        spellings = table.n_spellings[np.maximum(ids, 0)]
        drawn = np.floor(rng.random(len(rows)) * spellings).astype(np.int32)
        d[f"spell_{name}"][rows] = np.where(ids >= 0, drawn, -1)


def _has_arabic(table: names.NameTable, ids: np.ndarray) -> np.ndarray:
    """Whether each name id has an Arabic form (an absent name, id -1, has none)."""
    written = table.arabic.is_valid().to_numpy(zero_copy_only=False)
    return (ids >= 0) & written[np.maximum(ids, 0)]


def _spellable(c: dict) -> np.ndarray:
    """Which name parts (columns) have another Latin spelling to switch to."""
    columns = []
    for name in NAME_PARTS:
        table = names.SURNAMES if name == "family" else names.GIVEN
        ids = c[name]
        columns.append((ids >= 0) & (table.n_spellings[np.maximum(ids, 0)] > 1))
    return np.column_stack(columns)


def _typo_fields(rng: np.random.Generator, c: dict, rows: np.ndarray) -> np.ndarray:
    """Which written name gets the typo: 2 * name part + (0 Arabic, 1 Latin)."""
    present = np.column_stack([c[name][rows] >= 0 for name in NAME_PARTS])
    part = _draw(rng, present * np.array(PART_SHARES))
    has_arabic = _has_arabic(names.GIVEN, c["given"][rows])
    latin = (rng.random(len(rows)) < 0.6) | ~has_arabic
    return (2 * part + latin).astype(np.int8)


def _draw(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One column index per row, with probability proportional to the row's weights."""
    cumulative = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cumulative[:, -1]
    return (u[:, None] >= cumulative).sum(axis=1).clip(0, weights.shape[1] - 1)


def _ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = days.astype("datetime64[D]")
    months = d.astype("datetime64[M]")
    years = d.astype("datetime64[Y]")
    year = years.astype(np.int64) + 1970
    month = (months - years).astype(np.int64) + 1
    day = (d - months).astype(np.int64) + 1
    return year, month, day


def _days(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    months = (year - 1970).astype("datetime64[Y]") + (month - 1).astype("timedelta64[M]")
    return (months.astype("datetime64[D]") + (day - 1).astype("timedelta64[D]")).astype(np.int32)
