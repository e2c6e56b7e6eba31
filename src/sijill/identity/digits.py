"""Digits as clerks type them, read the same way on both paths.

Arabic keyboards type Arabic-Indic digits (U+0660..U+0669), Persian and Urdu ones the Eastern
Arabic-Indic digits (U+06F0..U+06F9); text copied from Arabic documents carries invisible
direction marks around numbers. Each rule is a `CharacterMap`, data applied per value on the
transactional path (`str.translate`) and per column on the bulk path (one `replace_many` pass),
as `identity.names` does for names; a property test holds the two equal.
"""

import polars as pl

ARABIC_INDIC_DIGITS = "٠١٢٣٤٥٦٧٨٩"
PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹"
LOCAL_DIGITS = ARABIC_INDIC_DIGITS + PERSIAN_DIGITS
# Invisible direction marks: LRM, RLM, ALM, the embeddings and overrides, the isolates.
BIDI_MARKS = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Whitespace, spelt out: what Python's `str.isspace` counts (Rust's `\s` lacks U+001C..U+001F).
SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)
SPACE = "[" + SPACES + "]"  # the same as a regular expression's character class
# The Arabic decimal separator and thousands separator, read in numbers (rooms, coordinates).
NUMBER_PUNCTUATION = {"\u066b": ".", "\u066c": ""}
# A value holding any of these needs `ascii_number` (a cheap test before converting a column).
LOCAL_NUMBER_CHARACTERS = "[" + LOCAL_DIGITS + "".join(NUMBER_PUNCTUATION) + "]"

_TO_ASCII = dict(zip(LOCAL_DIGITS, "0123456789" * 2, strict=True))


class CharacterMap:
    """Characters read as other characters (or as nothing), one at a time: `value` for one
    string, `column` for a Polars string column, the same map for both."""

    def __init__(self, mapping: dict[str, str]):
        assert all(len(key) == 1 for key in mapping), "a CharacterMap maps single characters"
        # Applied at once: no replacement may be read again by another entry.
        assert not set("".join(mapping.values())) & set(mapping)
        self.mapping = mapping
        self._table = str.maketrans(mapping)
        self._keys, self._values = list(mapping), list(mapping.values())

    def __or__(self, other: "CharacterMap") -> "CharacterMap":
        return CharacterMap({**self.mapping, **other.mapping})

    def value(self, text: str) -> str:
        return text.translate(self._table)

    def column(self, column: pl.Expr) -> pl.Expr:
        return column.str.replace_many(self._keys, self._values)


LOCAL_TO_ASCII = CharacterMap(_TO_ASCII)
WITHOUT_MARKS = CharacterMap(dict.fromkeys(BIDI_MARKS, ""))
WITHOUT_SPACES = CharacterMap(dict.fromkeys(SPACES, ""))
# A number as typed: local digits read as ASCII, direction marks dropped (spaces are kept).
PLAIN = LOCAL_TO_ASCII | WITHOUT_MARKS
ASCII_NUMBER = LOCAL_TO_ASCII | CharacterMap(NUMBER_PUNCTUATION)


def plain(text: str) -> str:
    """A number as typed, without direction marks and with ASCII digits (spaces are kept)."""
    return PLAIN.value(text)


def plain_column(column: pl.Expr) -> pl.Expr:
    return PLAIN.column(column)


def ascii_number(text: str) -> str:
    """Local digits read as ASCII, the Arabic decimal and thousands separators as `.` and
    nothing: how numbers, codes and dates of agencies' lists are read (`bulk.mapping`)."""
    return ASCII_NUMBER.value(text)


def ascii_number_column(column: pl.Expr) -> pl.Expr:
    return ASCII_NUMBER.column(column)
