"""National ID numbers of the synthetic country, computed over whole arrays.

Sijill's synthetic country borrows the Turkish T.C. Kimlik scheme (python-stdnum's
`stdnum.tr.tckimlik`): 11 digits, the first not zero, the last two are check digits over the
first nine. The default `SIJILL_NATIONAL_ID_SCHEME` is `tr.tckimlik`, so the registry validates
these numbers with stdnum itself; the code here is the same arithmetic over numpy arrays, and the
tests prove both agree.
"""

import numpy as np

from sijill.synth.codes import permute

PAYLOAD_LOW = 10**8  # nine digits, the first not zero
PAYLOAD_SPAN = 9 * 10**8


def check_digits(payloads: np.ndarray) -> np.ndarray:
    """The two check digits (as a number 0..99) of each nine-digit payload."""
    odd = np.zeros(len(payloads), dtype=np.int32)  # sum of the 1st, 3rd, ... 9th digit
    even = np.zeros(len(payloads), dtype=np.int32)
    remaining = payloads.astype(np.int32)  # nine digits fit, and int32 division is faster
    for position in range(9, 0, -1):  # from the 9th digit back to the 1st
        remaining, digit = np.divmod(remaining, 10)
        if position % 2:
            odd += digit
        else:
            even += digit
    first = (10 - (3 * odd + even) % 10) % 10
    second = (first + odd + even) % 10
    return (first * 10 + second).astype(np.int64)


def full_numbers(payloads: np.ndarray) -> np.ndarray:
    """The 11-digit national ID (as int64) of each nine-digit payload."""
    return payloads.astype(np.int64) * 100 + check_digits(payloads)


def is_valid(numbers: np.ndarray) -> np.ndarray:
    """Whether each int64 is an 11-digit number whose check digits are right."""
    numbers = numbers.astype(np.int64)
    in_range = (numbers >= PAYLOAD_LOW * 100) & (numbers < 10**11)
    payloads = numbers // 100
    return in_range & (check_digits(np.where(in_range, payloads, PAYLOAD_LOW)) == numbers % 100)


def payloads_for(person_counter: np.ndarray, key: int) -> np.ndarray:
    """A distinct nine-digit payload for each distinct person counter (so IDs never repeat)."""
    return PAYLOAD_LOW + permute(person_counter, PAYLOAD_SPAN, key)


def mistype(payloads: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each payload with one digit among its last seven changed to another digit.

    The leading digits stay, so the result is still a nine-digit payload; when the caller
    recomputes the check digits the number passes validation, as a typo that a form with a
    checksum accepted would.
    """
    position = rng.integers(0, 7, len(payloads))
    scale = 10 ** position.astype(np.int64)
    old = (payloads // scale) % 10
    new = (old + rng.integers(1, 10, len(payloads))) % 10
    return payloads + (new - old) * scale
