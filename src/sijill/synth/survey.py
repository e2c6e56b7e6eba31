"""A household budget survey drawn from the synthetic population.

A stratified simple random sample: strata are governorate x urban/rural, 1% of the households
of each stratum (at least two), and each sampled household's weight is the inverse of its
inclusion probability N_h / n_h, so the weights add up to the number of households. Surveys
measure consumption with error (recall, under-reporting), so the measured figure differs
from the truth.
"""

import numpy as np
import pyarrow as pa

from sijill.synth.geography import Geography

SAMPLING_RATE = 0.01
MEASUREMENT_SD = 0.20  # of log consumption
UNDER_REPORTING = 0.03  # survey consumption is on average about 3% below the truth

SCHEMA = pa.schema(
    [
        ("household_key", pa.string()),
        ("stratum", pa.string()),
        ("weight", pa.float64()),
        ("consumption_pc", pa.float64()),
    ]
)


def sample(
    rng: np.random.Generator, stratum: np.ndarray, consumption: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sampled (in stratum order), their weights and their measured consumption."""
    counts = np.bincount(stratum, minlength=stratum.max() + 1)
    wanted = np.where(counts > 0, np.maximum(np.round(SAMPLING_RATE * counts), 2), 0)
    wanted = np.minimum(wanted, counts).astype(np.int64)
    # Households by stratum, randomly within it (ties by row); the first n_h of each stratum.
    # Only the rows at or below a stratum's n_h-th smallest draw are sorted: the same rows in
    # the same order as sorting the whole stratum, without a country-sized sort in memory.
    draw = rng.random(len(stratum))
    picked = [np.empty(0, dtype=np.int64)]
    for code in np.flatnonzero(wanted):
        in_stratum = stratum == code
        values = draw[in_stratum]
        values.partition(wanted[code] - 1)
        rows = np.flatnonzero(in_stratum & (draw <= values[wanted[code] - 1]))
        del in_stratum, values
        picked.append(rows[np.argsort(draw[rows], kind="stable")[: wanted[code]]])
    chosen = np.concatenate(picked)
    weight = counts[stratum[chosen]] / wanted[stratum[chosen]]
    error = rng.normal(-UNDER_REPORTING, MEASUREMENT_SD, len(chosen))
    return chosen, weight, consumption[chosen] * np.exp(error)


def stratum_names(geo: Geography) -> list[str]:
    return [f"{code}-{setting}" for code in geo.governorate_code for setting in ("rural", "urban")]


def table(keys: pa.Array, strata: np.ndarray, weight, measured, geo: Geography) -> pa.Table:
    return pa.table(
        {
            "household_key": keys,
            "stratum": pa.array(stratum_names(geo)).take(pa.array(strata.astype(np.int32))),
            "weight": pa.array(weight, pa.float64()),
            "consumption_pc": pa.array(measured),
        },
        schema=SCHEMA,
    )
