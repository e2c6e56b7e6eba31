"""What an enumerator sees: the dwelling, its amenities, assets, livestock, income sources.

Each indicator is drawn from the household's latent consumption through a noisy threshold (its
own noise, so two indicators do not reveal the same information twice), shifted by urban or rural
life and by camp life. The noise is what keeps a proxy means test honest: the indicators
predict consumption well, never perfectly.
"""

import numpy as np

from sijill.registry.codes import HOUSEHOLD_CODES, HOUSEHOLD_LISTS
from sijill.synth.population import ASYLUM, REFUGEE
from sijill.synth.welfare import EMPLOYED, FORMAL, INFORMAL, RETIRED

# The registry's code lists, in their order: the synthetic country encodes values by position.
TENURE = HOUSEHOLD_CODES["dwelling_tenure"]
WALLS = HOUSEHOLD_CODES["dwelling_walls"]
ROOF = HOUSEHOLD_CODES["dwelling_roof"]
FLOOR = HOUSEHOLD_CODES["dwelling_floor"]
WATER = HOUSEHOLD_CODES["water_source"]
SANITATION = HOUSEHOLD_CODES["sanitation"]
FUEL = HOUSEHOLD_CODES["cooking_fuel"]
ELECTRICITY = HOUSEHOLD_CODES["electricity"]
ASSETS = HOUSEHOLD_LISTS["assets"]
INCOME = HOUSEHOLD_LISTS["income_sources"]

# Level of the living-standard signal above which an asset is owned, in towns and in villages
# (villagers own fewer appliances at the same consumption, and more motorcycles).
ASSET_THRESHOLDS = {
    "tv": (-2.2, -1.6),
    "fridge": (-1.3, -0.9),
    "washing_machine": (-0.5, 0.0),
    "air_conditioner": (0.7, 1.3),
    "computer": (0.8, 1.4),
    "mobile_phone": (-2.0, -1.6),
    "car": (0.5, 0.6),
    "motorcycle": (1.6, 0.9),
    "satellite_dish": (-0.8, -0.8),
    "water_heater": (0.1, 0.6),
}
# What the indicators share beyond consumption: how much of a household's means go into its
# house and goods rather than its daily consumption (savings, inheritance, tastes, prices). With
# many indicators, independent noise would average out and the indicators would reveal
# consumption almost exactly (R² above 0.9); this shared part is what real PMTs cannot see past.
WEALTH_WEIGHT = 0.45
SIGNAL_NOISE = 0.6  # sd of each indicator's own noise


# Each indicator's ladder in towns and in villages: (value, lowest signal for it), best first.
# Villages have wells and no sewers; bottled gas is what nearly everyone cooks with.
LADDERS = {
    "walls": (
        WALLS,
        [("concrete", -0.3), ("brick", -1.4), ("stone", -2.2), ("tin", None)],
        [("concrete", 0.2), ("brick", -0.6), ("stone", -1.3), ("mud", -2.0), ("wood", None)],
    ),
    "roof": (
        ROOF,
        [("concrete", -1.2), ("tin", -2.0), ("wood", -2.6), ("thatch", None)],
        [("concrete", -1.2), ("tin", -2.0), ("wood", -2.6), ("thatch", None)],
    ),
    "floor": (
        FLOOR,
        [("tiles", -0.4), ("cement", -2.0), ("earth", -3.0), ("other", None)],
        [("tiles", -0.4), ("cement", -2.0), ("earth", -3.0), ("other", None)],
    ),
    "water": (
        WATER,
        [("piped_dwelling", -0.8), ("piped_yard", -1.8), ("public_tap", -2.6), ("tanker", None)],
        [("piped_dwelling", 0.2), ("piped_yard", -0.6), ("well", -1.4), ("tanker", -2.3),
         ("surface", None)],
    ),
    "sanitation": (
        SANITATION,
        [("flush_sewer", -0.4), ("flush_septic", -1.8), ("pit_latrine", -2.4), ("shared", None)],
        [("flush_septic", -0.5), ("pit_latrine", -1.7), ("shared", -2.4), ("none", None)],
    ),
    "fuel": (
        FUEL,
        [("electricity", 1.9), ("gas", -2.0), ("kerosene", -2.6), ("wood", -3.0),
         ("charcoal", -3.3), ("dung", None)],
        [("electricity", 1.9), ("gas", -2.0), ("kerosene", -2.6), ("wood", -3.0),
         ("charcoal", -3.3), ("dung", None)],
    ),
    "power": (
        ELECTRICITY,
        [("grid", -2.3), ("generator", -2.8), ("solar", -3.3), ("none", None)],
        [("grid", -2.3), ("generator", -2.8), ("solar", -3.3), ("none", None)],
    ),
}  # fmt: skip


def living_standard(rng: np.random.Generator, wealth: np.ndarray) -> np.ndarray:
    """The standardised signal all indicators read: part consumption, part what else shows."""
    other = rng.normal(0.0, 1.0, len(wealth))
    return WEALTH_WEIGHT * wealth + np.sqrt(1 - WEALTH_WEIGHT**2) * other


def _ladder(signal: np.ndarray, table: tuple[str, ...], ladder: list) -> np.ndarray:
    """Codes of the ladder's steps: each step's value where the signal is above its floor."""
    steps = [step for step, _ in ladder]
    floors = np.array([floor for _, floor in ladder[:-1]])
    return _codes(table, steps)[(signal[:, None] < floors[None, :]).sum(axis=1)]


def _codes(table: tuple[str, ...], values) -> np.ndarray:
    """Index in `table` of each value (an array of names, or one name)."""
    order = np.argsort(table)
    return order[np.searchsorted(np.array(table), values, sorter=order)]


def _noisy(rng: np.random.Generator, wealth: np.ndarray, sd: float = SIGNAL_NOISE):
    return wealth + rng.normal(0.0, sd, len(wealth))


def dwelling(rng: np.random.Generator, hh: dict, wealth: np.ndarray) -> dict[str, np.ndarray]:
    """Codes of walls, roof, floor, water, sanitation, fuel, power, tenure; number of rooms."""
    urban = hh["urban"]
    signal = {k: _noisy(rng, wealth) + np.where(urban, 0.4, -0.4) for k in (*LADDERS, "tenure")}
    d = {}
    for name, (table, town, village) in LADDERS.items():
        d[name] = np.where(
            urban, _ladder(signal[name], table, town), _ladder(signal[name], table, village)
        )
    d["tenure"] = _tenure(rng, hh, signal["tenure"])
    rooms = 0.6 + 0.28 * hh["size"] + 0.55 * _noisy(rng, wealth, 0.9)
    d["rooms"] = np.clip(np.round(rooms), 1, 10)
    _camp_life(rng, d, hh["camp"])
    return {k: v.astype(np.int8) for k, v in d.items()}


def _tenure(rng: np.random.Generator, hh: dict, signal: np.ndarray) -> np.ndarray:
    n, urban = len(signal), hh["urban"]
    owned = rng.random(n) < np.where(urban, 0.62, 0.85)
    tenure = np.where(owned, "owned", np.where(rng.random(n) < 0.85, "rented", "free_use"))
    tenure = np.where(urban & (signal < -2.0), "informal_settlement", tenure)
    refugee = np.isin(hh["group"], (REFUGEE, ASYLUM))
    tenure = np.where(refugee & (tenure == "owned"), "rented", tenure)  # refugees rarely own
    return _codes(TENURE, tenure)


def _camp_life(rng: np.random.Generator, d: dict, camp: np.ndarray) -> None:
    """Camps: tents or prefabricated tin caravans, shared taps and latrines."""
    rows = np.flatnonzero(camp)
    k = len(rows)
    tent = rng.random(k) < 0.45

    def put(name: str, table: tuple[str, ...], values) -> None:
        d[name][rows] = _codes(table, values)

    put("tenure", TENURE, "camp")
    put("walls", WALLS, np.where(tent, "tent", "tin"))
    put("roof", ROOF, np.where(tent, "tent", "tin"))
    put("floor", FLOOR, np.where(rng.random(k) < 0.5, "cement", "earth"))
    put("water", WATER, np.where(rng.random(k) < 0.7, "public_tap", "tanker"))
    put("sanitation", SANITATION, "shared")
    put("power", ELECTRICITY, np.where(rng.random(k) < 0.6, "grid", "solar"))
    put("fuel", FUEL, "gas")
    d["rooms"][rows] = np.clip(d["rooms"][rows], 1, 2)


def assets(rng: np.random.Generator, hh: dict, wealth: np.ndarray) -> np.ndarray:
    """Bit mask of owned assets (bit i = ASSETS[i])."""
    n = len(wealth)
    signal = wealth[:, None] + rng.normal(0.0, SIGNAL_NOISE, (n, len(ASSETS)))
    town, village = np.array([ASSET_THRESHOLDS[a] for a in ASSETS]).T
    thresholds = np.where(hh["urban"][:, None], town, village)
    owned = signal > thresholds
    return (owned * (1 << np.arange(len(ASSETS)))).sum(axis=1).astype(np.int16)


def livestock(rng: np.random.Generator, hh: dict, wealth: np.ndarray) -> np.ndarray:
    """Head counts per kind (columns in LIVESTOCK order); herders are rural."""
    n = len(wealth)
    herding = ~hh["urban"] & ~hh["camp"] & (rng.random(n) < 0.38)
    # Bigger herds with more wealth, but herding itself is the poorer rural livelihood.
    scale = np.exp(0.5 * _noisy(rng, wealth, 0.8))
    mean = np.array([1.5, 12.0, 8.0, 0.4, 15.0])
    keeps = rng.random((n, 5)) < np.array([0.25, 0.55, 0.45, 0.05, 0.70])
    counts = rng.poisson(mean[None, :] * scale[:, None]) * keeps * herding[:, None]
    return np.minimum(counts, 2000).astype(np.int16)


def income_sources(
    rng: np.random.Generator, hh: dict, p: dict, wealth: np.ndarray, herd: np.ndarray
) -> np.ndarray:
    """Bit mask of income sources (bit i = INCOME[i])."""
    n, home = len(wealth), p["hh"]

    def any_member(mask: np.ndarray) -> np.ndarray:
        return np.bincount(home, weights=mask, minlength=n) > 0

    employed = p["employment"] == EMPLOYED
    farming = ~hh["urban"] & ~hh["camp"] & (rng.random(n) < 0.25)
    # Social assistance reaches the poor more often, with the errors real targeting has.
    assisted_p = 1 / (1 + np.exp(2.2 + 1.3 * _noisy(rng, wealth, 0.8)))
    source = {
        "wages_formal": any_member(employed & (p["sector"] == FORMAL)),
        "wages_informal": any_member(employed & (p["sector"] == INFORMAL)),
        "agriculture": (herd.sum(axis=1) > 0) | farming,
        "own_business": _noisy(rng, wealth, 1.2) + rng.normal(0, 0.5, n) > 1.4,
        "pension": any_member(p["employment"] == RETIRED) & (rng.random(n) < 0.8),
        "remittances": rng.random(n) < 0.08 + 0.05 * hh["camp"],
        "social_assistance": rng.random(n) < assisted_p,
        "rent": _noisy(rng, wealth) > 2.0,
    }
    source["none"] = ~np.any(list(source.values()), axis=0)
    bits = np.column_stack([source[item] for item in INCOME])
    return (bits * (1 << np.arange(len(INCOME)))).sum(axis=1).astype(np.int16)
