"""Phone numbers in E.164 form (`+`, a country code, 8 to 15 digits in all).

Spaces and dashes are ignored, local digits read as ASCII digits (`identity.digits`) and a
leading `00` read as `+`; anything else is refused rather than guessed at. One rule, applied per
value (`normalise_phone`, which says what is wrong) and per column (`phone_column`, null where
the value is refused); a property test holds the two equal.
"""

import re

import polars as pl

from sijill.identity.digits import PLAIN, WITHOUT_SPACES, CharacterMap

E164 = r"\+[1-9][0-9]{7,14}"
# What a phone number is read through first: local digits, no marks, spaces or dashes.
COMPACT = PLAIN | WITHOUT_SPACES | CharacterMap({"-": ""})
_E164_RE = re.compile(E164)


def normalise_phone(text: str) -> str:
    """E.164 form of a phone number, or ValueError saying what is wrong."""
    value = COMPACT.value(text)
    if value.startswith("00"):
        value = "+" + value[2:]
    if not value.startswith("+"):
        raise ValueError(
            "a phone number must start with + and the country code, e.g. +962791234567"
        )
    digits = value[1:]
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError("a phone number may contain only digits, spaces and dashes after the +")
    if not _E164_RE.fullmatch(value):
        if digits.startswith("0"):
            raise ValueError("a phone number's country code cannot start with 0")
        raise ValueError(
            f"a phone number must have 8 to 15 digits after the +, this one has {len(digits)}"
        )
    return value


def phone_column(column: pl.Expr) -> pl.Expr:
    """`normalise_phone` of every row: the E.164 form, or null where it refuses the value."""
    compact = COMPACT.column(column).str.replace(r"^00", "+")
    return pl.when(compact.str.contains(f"^{E164}$")).then(compact)
