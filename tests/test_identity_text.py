"""The rule of which characters free text may hold (`identity.text`), per value and per
column: bidi overrides, zero-width and control characters are refused, names and addresses as
people write them are not."""

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sijill.identity.text import (
    TextKind,
    checked_text_column,
    clean_text,
    disallowed_column,
    text_problem,
)

NAME, TEXT = TextKind.NAME, TextKind.TEXT

SPOOFING = [
    "Ahmad\u202edemhA",  # right-to-left override: displays reversed
    "أحمد\u2067x\u2069",  # isolates
    "Ah\u200bmad",  # zero-width space
    "Ah\u200dmad",  # zero-width joiner
    "\ufeffAhmad",  # byte order mark
    "Ahmad\x1b[2J",  # ANSI: clear the screen
    "Ahmad\x07",  # BEL
    "Ahmad\r\nFatima",  # CR/LF: a second line in a log or a CSV
    "Ahmad\u2028Fatima",  # line separator
    "Ahmad\x9b31m",  # 8-bit CSI
    "Ahmad\u200c",  # ZWNJ, but not between Arabic letters
    "a\u200cب",
    "\u200cب",
]


@pytest.mark.parametrize("value", SPOOFING)
@pytest.mark.parametrize("kind", list(TextKind))
def test_spoofing_characters_are_refused(kind, value):
    problem = text_problem(kind, value)
    assert problem is not None
    # The message names the character, never the value around it.
    assert "Ahmad" not in problem and "أحمد" not in problem
    bad = pl.select(disallowed_column(kind, pl.lit(value))).item()
    assert bad is True


@pytest.mark.parametrize(
    "value",
    [
        "أحمد",
        "عبد الرحمن",
        "مُحَمَّد",  # short vowels
        "ﻣﺤﻤﺪ",  # presentation forms
        "محمد\u200cرضا",  # ZWNJ between Arabic letters (Persian spelling)
        "مُ\u200cرضا",  # ... with a mark after the first
        "Zoé Al-Hassan",
        "O'Brien",
        "Abd\u2019allah",
        "Ḥasan ʿAlī",
        "Nguyễn",
    ],
)
def test_names_as_people_write_them_are_accepted(value):
    assert text_problem(NAME, value) is None
    assert text_problem(TEXT, value) is None
    assert pl.select(disallowed_column(NAME, pl.lit(value))).item() is False


@pytest.mark.parametrize(
    "value", ["Ahmad 2", "Ahmad.", "Ahmad_", "Ahmad <b>", "=HYPERLINK(1)", "أحمد ٣", "Ахмед"]
)
def test_names_hold_no_digits_symbols_or_other_scripts(value):
    assert text_problem(NAME, value) is not None


@pytest.mark.parametrize(
    "value", ["12, rue de la Paix – 3ème étage", "شارع الملك حسين، بناية ٣/٤", "ENUM-0042_b"]
)
def test_addresses_keep_digits_and_punctuation(value):
    assert text_problem(TEXT, value) is None


def test_values_are_stored_nfc():
    decomposed = "Zoe\u0301"
    assert clean_text(NAME, decomposed) == "Zoé"


# Letters, marks, punctuation and the characters the rule is about, plus anything at all.
_INTERESTING = st.sampled_from(
    list("aZéأبـًّ ٣3-'’.,،=\u200c\u200d\u200b\u202e\u2066\x1b\x07\r\n\t\x9b\ufeffﻣж")
)
_TEXTS = st.text(alphabet=_INTERESTING, max_size=12) | st.text(max_size=12)


@given(st.lists(st.none() | _TEXTS, max_size=25), st.sampled_from(list(TextKind)))
def test_bulk_and_single_rules_agree(values, kind):
    column = pl.DataFrame({"v": values}, schema={"v": pl.String})
    bulk = column.select(disallowed_column(kind, pl.col("v")))["v"].to_list()
    single = [None if v is None else text_problem(kind, v) is not None for v in values]
    assert bulk == single


@given(st.lists(st.none() | _TEXTS, max_size=25), st.sampled_from(list(TextKind)))
def test_bulk_check_by_distinct_values_agrees(values, kind):
    """The import's path (each distinct value once) writes what `clean_text` keeps and
    refuses what it refuses."""
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    written, bad = checked_text_column(frame, "v", kind)
    bulk = frame.select(written.alias("w"), bad.alias("b"))
    for value, kept, refused in zip(values, bulk["w"], bulk["b"], strict=True):
        if value is None:
            assert kept is None and refused is None
            continue
        assert refused == (text_problem(kind, value) is not None)
        if not refused:
            assert kept == clean_text(kind, value)
