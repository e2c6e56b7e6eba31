"""Registry IDs: random digits plus a Verhoeff check digit.

Random so IDs cannot be enumerated or guessed from registration order; a check digit so a
mistyped ID (any single digit or any swap of adjacent digits) is caught at the counter.
Households get 10 digits, jobs (long work, `sijill.jobs`) 11 and persons 12, so one is never
taken for another.

`stdnum.verhoeff` is the reference; the bulk path needs millions of IDs at once, so the same
algorithm runs here over numpy arrays (tests prove both agree).
"""

import secrets
from typing import Literal

import numpy as np
from stdnum import verhoeff
from stdnum.exceptions import ValidationError

from sijill.core.errors import InvalidInput

Kind = Literal["household", "person", "job"]
PAYLOAD_DIGITS: dict[str, int] = {"household": 9, "person": 11, "job": 10}

# Verhoeff's tables: multiplication in the dihedral group D5, the position permutation, inverse.
_D = np.array(
    [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ],
    dtype=np.int8,
)
_P = np.array(
    [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ],
    dtype=np.int8,
)
_INV = np.array([0, 4, 3, 2, 1, 5, 6, 7, 8, 9], dtype=np.int64)


def verhoeff_check_digits(payloads: np.ndarray, n_digits: int) -> np.ndarray:
    """Check digit of each non-negative integer in `payloads` (as if written with n_digits)."""
    remaining = payloads.astype(np.int64)
    checksum = np.zeros(len(remaining), dtype=np.int64)
    # Position 0 is the check digit itself, so the payload's last digit sits at position 1.
    for position in range(1, n_digits + 1):
        digit = remaining % 10
        remaining //= 10
        checksum = _D[checksum, _P[position % 8, digit]]
    return _INV[checksum]


def new_ids(kind: Kind, count: int) -> np.ndarray:
    """`count` fresh random IDs (int64) for households or persons, without repeats among them.

    Uniqueness against IDs already in the registry is the caller's job (the database's primary
    key is the arbiter); see `sijill.registry.bulk` for the bulk path.
    """
    n = PAYLOAD_DIGITS[kind]
    low, span = 10 ** (n - 1), 9 * 10 ** (n - 1)
    ids = np.empty(0, dtype=np.int64)
    while len(ids) < count:
        missing = count - len(ids)
        raw = np.frombuffer(secrets.token_bytes(8 * missing), dtype=np.uint64)
        payloads = (raw % np.uint64(span)).astype(np.int64) + low
        fresh = payloads * 10 + verhoeff_check_digits(payloads, n)
        ids = np.unique(np.concatenate([ids, fresh]))
    # np.unique sorts; shuffle back so the order reveals nothing either.
    rng = np.random.default_rng(secrets.randbits(64))
    return rng.permutation(ids)[:count]


def new_id(kind: Kind) -> int:
    return int(new_ids(kind, 1)[0])


def parse_id(kind: Kind, text: str | int, field: str = "id") -> int:
    """Turn what a person typed into a registry ID, or say clearly what is wrong with it."""
    digits = str(text).strip().replace(" ", "").replace("-", "")
    expected = PAYLOAD_DIGITS[kind] + 1
    label = f"{kind} registry ID"
    if not digits.isdigit() or not digits.isascii():
        raise InvalidInput(f"'{text}' is not a {label}: it must contain digits only")
    if len(digits) != expected:
        raise InvalidInput(f"'{text}' is not a {label}: it must have {expected} digits")
    try:
        verhoeff.validate(digits)
    except ValidationError:
        raise InvalidInput(
            f"'{text}' is not a valid {label}: the check digit does not match, "
            "a digit was probably mistyped"
        ) from None
    return int(digits)


def format_id(value: int) -> str:
    return str(value)
