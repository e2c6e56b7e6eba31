"""What the registration form records besides welfare: documents, phones, dates, consent.

Numbers are kept as integers here (the document number's digits, a date as days since
1970-01-01) and only turned into text when the tables are written, so that duplicates can be
made by arithmetic (one digit mistyped, day and month swapped).
"""

from dataclasses import dataclass

import numpy as np

from sijill.synth import national_ids
from sijill.synth.codes import permute
from sijill.synth.geography import Geography
from sijill.synth.population import ASYLUM, CITIZEN, MIGRANT, NON_RELATIVE, REFUGEE, SPOUSE

ID_TYPES = ("national_id", "unhcr", "passport", "residence_permit")
NATIONAL_ID, UNHCR, PASSPORT, RESIDENCE_PERMIT = range(4)
FULL, YEAR_MONTH, YEAR = range(3)  # how much of a birth date is known
REGISTRATION_YEARS = 3
DAYS_PER_YEAR = 365.25
DOCUMENT_SPAN = 9 * 10**8  # document numbers other than national IDs: nine digits
# Mobile numbers are +999, an operator digit and eight subscriber digits from 70,000,000 up:
# 30 million numbers per operator. Person counters take operator 7's numbers first, then 6's,
# and so on: the first 30 million persons keep the numbers they had when 7 was the only
# operator, so countries of up to 5 million households are written as they were.
PHONE_COUNTRY = "+999"
PHONE_OPERATORS = (7, 6, 5, 4)
PHONE_FIRST_SUBSCRIBER = 70_000_000
PHONE_BLOCK = 30_000_000
PHONE_CAPACITY = PHONE_BLOCK * len(PHONE_OPERATORS)


@dataclass(frozen=True)
class Keys:
    """Permutation keys derived from the seed, one per kind of number."""

    national_id: int
    unhcr: int
    passport: int
    permit: int
    phone: int
    household: int

    @classmethod
    def from_seed(cls, seed: int) -> "Keys":
        draws = np.random.default_rng([seed, 3]).integers(0, 2**62, 6)
        return cls(*(int(d) for d in draws))


def documents(rng: np.random.Generator, hh: dict, p: dict, keys: Keys) -> None:
    """Nationality, residency status and identity document of each person (updates `p`)."""
    home, age, counter = p["hh"], p["age"], p["counter"]
    n = len(age)
    worker = p["rel"] == NON_RELATIVE
    residency = np.where(worker, MIGRANT, hh["residency"][home]).astype(np.int8)
    nationality = np.where(worker, p["worker_nationality"], hh["nationality"][home])
    u = rng.random(n)
    citizen_has_id = u < np.where(age >= 16, 0.97, 0.35 + 0.035 * age)
    migrant_doc = np.where(
        age >= 18,
        np.select([u < 0.55, u < 0.95], [PASSPORT, RESIDENCE_PERMIT], -1),
        np.where(u < 0.6, PASSPORT, -1),
    )
    worker_doc = np.where(u < 0.7, RESIDENCE_PERMIT, PASSPORT)
    id_type = np.select(
        [residency == CITIZEN, np.isin(residency, (REFUGEE, ASYLUM)), worker, residency == MIGRANT],
        [
            np.where(citizen_has_id, NATIONAL_ID, -1),
            np.where(u < 0.95, UNHCR, -1),
            worker_doc,
            migrant_doc,
        ],
        -1,
    )
    number = np.select(
        [id_type == NATIONAL_ID, id_type == UNHCR, id_type == PASSPORT],
        [
            national_ids.payloads_for(counter, keys.national_id),
            permute(counter, DOCUMENT_SPAN, keys.unhcr),
            permute(counter, DOCUMENT_SPAN, keys.passport),
        ],
        permute(counter, DOCUMENT_SPAN, keys.permit),
    )
    p["residency"], p["nationality"] = residency, nationality.astype(np.int8)
    p["id_type"], p["id_number"] = id_type.astype(np.int8), np.where(id_type >= 0, number, -1)


def phones(rng: np.random.Generator, hh: dict, p: dict, keys: Keys) -> None:
    """Mobile numbers: most adults have their own; some wives give their husband's."""
    home, age = p["hh"], p["age"]
    n = len(age)
    own_p = np.where(age >= 18, np.where(hh["urban"][home], 0.87, 0.76), 0.3 * (age >= 15))
    number = phone_numbers(p["counter"], keys.phone)
    phone = np.where(rng.random(n) < own_p, number, -1)
    head_row = np.concatenate([[0], np.cumsum(hh["size"])[:-1]])
    wife = (p["rel"] == SPOUSE) & ~p["sex_male"] & (phone < 0)
    shares = wife & (rng.random(n) < 0.4)
    p["phone"] = np.where(shares, phone[head_row[home]], phone)


def phone_numbers(person_counter: np.ndarray, key: int) -> np.ndarray:
    """A distinct nine-digit number (operator digit, subscriber) for each distinct counter.

    Written after `PHONE_COUNTRY`. Each operator's block is permuted with its own key, so
    counters 30 million apart do not get the same subscriber digits.
    """
    block, within = np.divmod(person_counter.astype(np.int64), PHONE_BLOCK)
    if person_counter.size and (block.min() < 0 or block.max() >= len(PHONE_OPERATORS)):
        raise ValueError(f"more persons than the {PHONE_CAPACITY:,} synthetic phone numbers")
    number = np.empty(len(block), dtype=np.int64)
    for index, operator in enumerate(PHONE_OPERATORS):
        rows = np.flatnonzero(block == index)
        if rows.size:
            subscriber = permute(within[rows], PHONE_BLOCK, key + index)
            number[rows] = operator * 10**8 + PHONE_FIRST_SUBSCRIBER + subscriber
    return number


def birth_dates(rng: np.random.Generator, hh: dict, p: dict, reference_day: int) -> None:
    """Birth date (days since epoch) and how much of it is known (updates `p`)."""
    age, n = p["age"], len(p["age"])
    p["birth_days"] = (reference_day - np.floor(age * DAYS_PER_YEAR)).astype(np.int32)
    foreign_born = p["residency"] != CITIZEN
    year_only_p = np.where(age > 50, np.where(foreign_born, 0.25, 0.10), 0.0)
    u = rng.random(n)
    precision = np.where(u < year_only_p, YEAR, FULL)
    month_only = (age >= 18) & (rng.random(n) < 0.03)
    p["birth_precision"] = np.where(month_only & (precision == FULL), YEAR_MONTH, precision).astype(
        np.int8
    )


def household_form(rng: np.random.Generator, hh: dict, geo: Geography, reference_day: int) -> None:
    """Registration date, enumerator, consent, address and GPS point (updates `hh`)."""
    n = len(hh["size"])
    hh["registration_days"] = _registration_days(rng, n, reference_day)
    district = geo.district[hh["locality"]]
    hh["enumerator"] = (1 + rng.integers(0, 10**6, n) % geo.enumerators[district]).astype(np.int16)
    hh["consent"] = rng.random(n) < 0.985
    hh["purposes"] = ((rng.random(n) < 0.12) * 1 + (rng.random(n) < 0.08) * 2).astype(np.int8)
    box = geo.box[hh["locality"]]
    for axis, name in ((0, "longitude"), (1, "latitude")):
        lo, hi = box[:, axis], box[:, axis + 2]
        margin = 0.02 * (hi - lo)
        hh[name] = np.round(rng.uniform(lo + margin, hi - margin), 6)
    hh["house_no"] = rng.integers(1, 200, n).astype(np.int16)
    hh["street"] = rng.integers(1, 60, n).astype(np.int16)
    hh["address_arabic"] = rng.random(n) < 0.45


def _registration_days(rng: np.random.Generator, n: int, reference_day: int) -> np.ndarray:
    span = int(REGISTRATION_YEARS * DAYS_PER_YEAR)
    return (reference_day - rng.integers(0, span, n)).astype(np.int32)


def reregistration(rng: np.random.Generator, hh: dict, geo: Geography, reference_day: int):
    """A second registration of the same households: another day, maybe another enumerator."""
    n = len(hh["size"])
    hh["registration_days"] = _registration_days(rng, n, reference_day)
    district = geo.district[hh["locality"]]
    hh["enumerator"] = (1 + rng.integers(0, 10**6, n) % geo.enumerators[district]).astype(np.int16)
    hh["consent"] = rng.random(n) < 0.985
    for name in ("latitude", "longitude"):
        hh[name] = np.round(hh[name] + rng.normal(0, 0.0004, n), 6)  # another GPS reading
