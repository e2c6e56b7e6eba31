"""Typing mistakes in names, in Latin or Arabic script, applied to whole arrays.

The mistakes are the ones data-entry clerks make: a letter swapped for one that sounds or looks
alike (e/i, k/q; ة/ه, ى/ي, أ/ا), a letter dropped or doubled, two neighbours swapped. Names are
turned into a matrix of code points (one row per name), edited with index arithmetic, and turned
back, so a million typos cost the same handful of numpy calls as ten.
"""

import numpy as np
import pyarrow as pa

CONFUSABLE = {
    "a": "eo",
    "e": "ia",
    "i": "ey",
    "o": "ua",
    "u": "oa",
    "y": "ie",
    "k": "qc",
    "q": "kg",
    "c": "ks",
    "s": "zc",
    "z": "sd",
    "d": "tz",
    "t": "dh",
    "h": "kt",
    "b": "pv",
    "p": "b",
    "m": "n",
    "n": "m",
    "l": "r",
    "r": "l",
    "g": "jq",
    "j": "gy",
    "f": "v",
    "v": "f",
    "w": "ou",
    "x": "ks",
    "ة": "ه",
    "ه": "ةح",
    "ى": "ي",
    "ي": "ى",
    "أ": "اإ",
    "إ": "اأ",
    "آ": "ا",
    "ا": "أع",
    "ذ": "زد",
    "ز": "ذ",
    "ث": "ست",
    "س": "صث",
    "ص": "س",
    "ض": "دظ",
    "د": "ذض",
    "ظ": "ضز",
    "ط": "ت",
    "ت": "طث",
    "ق": "كغ",
    "ك": "ق",
    "ح": "هخ",
    "خ": "ح",
    "ع": "اغ",
    "غ": "ع",
    "و": "ؤ",
    "ؤ": "و",
    "ئ": "ي",
    "ن": "ت",
    "ب": "ت",
    "ر": "ز",
    "ل": "ا",
    "م": "ن",
    "ف": "ق",
    "ش": "س",
    "ج": "ح",
}
SUBSTITUTE, DELETE, DOUBLE, TRANSPOSE = range(4)
OP_SHARES = (0.40, 0.20, 0.15, 0.25)


def _replacement_table() -> np.ndarray:
    """For every code point up to U+07FF, two letters it may be mistyped as."""
    table = np.empty((0x800, 2), dtype=np.uint32)
    table[:] = ord("a")
    table[ord("a")] = ord("e")
    table[0x0600:0x0700] = ord("ا")  # an Arabic letter without a look-alike becomes alef
    for char, options in CONFUSABLE.items():
        picks = [ord(o) for o in (options * 2)[:2]]
        table[ord(char)] = picks
        if char.isascii():
            table[ord(char.upper())] = [ord(o.upper()) for o in (options * 2)[:2]]
    return table


_TABLE = _replacement_table()


def _substitute(codes: np.ndarray, rows: np.ndarray, pos: np.ndarray, rng) -> None:
    old = codes[rows, pos]
    choice = rng.integers(0, 2, len(rows))
    codes[rows, pos] = _TABLE[np.minimum(old, 0x7FF), choice]


def apply(strings: pa.Array, rng: np.random.Generator) -> pa.Array:
    """Each string with one typo; every result differs from its original."""
    values = np.asarray(strings.to_numpy(zero_copy_only=False), dtype=str)
    n = len(values)
    if n == 0:
        return strings
    width = values.dtype.itemsize // 4
    codes = np.zeros((n, width + 1), dtype=np.uint32)  # room for a doubled letter
    codes[:, :width] = values.view(np.uint32).reshape(n, width)
    length = (codes != 0).sum(axis=1)
    op = np.searchsorted(np.cumsum(OP_SHARES), rng.random(n) * sum(OP_SHARES), side="right")
    op = np.where((op == TRANSPOSE) & (length < 3), SUBSTITUTE, op)
    # Swapping the capital initial with the next letter ("aFtima") is not a slip anyone makes.
    swap = op == TRANSPOSE
    pos = swap + np.floor(rng.random(n) * (length - 2 * swap)).astype(np.int64)
    column = np.arange(width + 1)[None, :]
    at = pos[:, None]
    source = np.select(
        [(op == DELETE)[:, None], (op == DOUBLE)[:, None], (op == TRANSPOSE)[:, None]],
        [
            column + (column >= at),
            column - (column > at),
            np.where(column == at, at + 1, np.where(column == at + 1, at, column)),
        ],
        column,
    )
    edited = np.take_along_axis(codes, np.minimum(source, width), axis=1)
    rows = np.flatnonzero(op == SUBSTITUTE)
    _substitute(edited, rows, pos[rows], rng)
    result = edited.view(f"<U{width + 1}").ravel()
    # A transposition of two equal letters changes nothing; such names get a substitution.
    same = np.flatnonzero(result == values)
    if len(same):
        fix = codes[same].copy()
        _substitute(fix, np.arange(len(same)), pos[same], rng)
        result[same] = fix.view(f"<U{width + 1}").ravel()
    return pa.array(result, pa.string())
