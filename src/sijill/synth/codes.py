"""Record keys and printed numbers, built for millions of rows at once.

Keys come from a keyed permutation of a running counter rather than from random draws: a
counter is unique by construction, so no collision check is needed across chunks, and the
permutation hides the order in which records were generated (a linkage method must not be able
to cheat by looking at key order).
"""

import numpy as np
import pyarrow as pa

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _round_function(half: np.ndarray, key: int, bits: int) -> np.ndarray:
    # A multiply-xorshift mixer; numpy's uint64 arithmetic wraps, which is what we want.
    x = (half + np.uint64(key)) & _MASK64
    x = x * np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(29)
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(32)
    return x & np.uint64((1 << bits) - 1)


def _feistel(x: np.ndarray, key: int, half_bits: int) -> np.ndarray:
    mask = np.uint64((1 << half_bits) - 1)
    left, right = x >> np.uint64(half_bits), x & mask
    for round_index in range(4):
        round_key = (key * 0x100000001B3 + round_index * 0x632BE59BD9B4E019) % (1 << 63)
        left, right = right, left ^ _round_function(right, round_key, half_bits)
    return (left << np.uint64(half_bits)) | right


def permute(counter: np.ndarray, domain: int, key: int) -> np.ndarray:
    """A bijection of [0, domain) onto itself, chosen by `key`, applied to every counter value.

    A Feistel network permutes the next power of four; values that land outside the domain are
    sent through again ("cycle walking"), which keeps the map one-to-one on the domain. A
    counter outside the domain is refused: it would land on another counter's value.
    """
    if counter.size and (counter.min() < 0 or counter.max() >= domain):
        raise ValueError(f"a counter is outside the permutation's domain [0, {domain:,})")
    half_bits = max(1, (int(domain - 1).bit_length() + 1) // 2)
    x = _feistel(counter.astype(np.uint64), key, half_bits)
    outside = np.flatnonzero(x >= np.uint64(domain))
    while outside.size:
        x[outside] = _feistel(x[outside], key, half_bits)
        outside = outside[x[outside] >= np.uint64(domain)]
    return x.astype(np.int64)


def digit_matrix(values: np.ndarray, width: int) -> np.ndarray:
    """The decimal digits of each non-negative value, most significant first, zero-padded."""
    # One division per column over the whole array: ten times faster than broadcasting powers.
    out = np.empty((len(values), width), dtype=np.uint8)
    remaining = values.astype(np.int64)
    for column in range(width - 1, -1, -1):
        remaining, out[:, column] = np.divmod(remaining, 10)
    return out


def strings_from_bytes(matrix: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """One ASCII string per row of a uint8 matrix, built straight into Arrow buffers."""
    rows, width = matrix.shape
    offsets = np.arange(rows + 1, dtype=np.int32) * width
    data = np.ascontiguousarray(matrix, dtype=np.uint8)
    validity = None
    if valid is not None:
        validity = pa.py_buffer(np.packbits(valid.astype(bool), bitorder="little"))
    return pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(data), validity)


def fixed_strings(
    values: np.ndarray, width: int, prefix: str = "", valid: np.ndarray | None = None
) -> pa.Array:
    """`prefix` followed by each value written with exactly `width` digits."""
    digits = digit_matrix(values, width) + ord("0")
    if prefix:
        head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
        digits = np.hstack([np.broadcast_to(head, (len(values), len(head))), digits])
    return strings_from_bytes(digits, valid)


def template_strings(template: str, values: np.ndarray, valid: np.ndarray | None = None):
    """Fill each `#` of `template` with the next decimal digit of each value (left to right).

    E.g. `###-##C#####` with 123456789 gives `012-34C56789`; letters and dashes stay as they are.
    """
    slots = [i for i, char in enumerate(template) if char == "#"]
    digits = digit_matrix(values, len(slots)) + ord("0")
    matrix = np.broadcast_to(
        np.frombuffer(template.encode("ascii"), dtype=np.uint8), (len(values), len(template))
    ).copy()
    matrix[:, slots] = digits
    return strings_from_bytes(matrix, valid)
