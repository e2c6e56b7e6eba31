"""Digits, phone numbers and document numbers: the rule applied to one value (the API's path)
and the rule applied to a column (the bulk path) agree on every input."""

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.tr import tckimlik

from sijill.identity.digits import (
    ARABIC_INDIC_DIGITS,
    PERSIAN_DIGITS,
    SPACES,
    ascii_number,
    ascii_number_column,
    plain,
    plain_column,
)
from sijill.identity.national_id import (
    ID_TYPES,
    Scheme,
    normalise_number,
    normalise_number_column,
    number_problem,
    valid_numbers,
)
from sijill.identity.phones import normalise_phone, phone_column

ASCII = "0123456789"
SCRIPTS = (ASCII, ARABIC_INDIC_DIGITS, PERSIAN_DIGITS)
BIDI = "\u200e\u200f\u061c\u202b\u2066\u2069"
DASHES = "-\u2013\u2010"
ODD = "()x.+/_A\u066b\u066c\uff11"


def _column(expr, values: list[str | None]) -> list[str | None]:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    return frame.select(expr(pl.col("v")).alias("v"))["v"].to_list()


def _refused_as_none(function, value):
    try:
        return function(value)
    except ValueError:
        return None


@st.composite
def typed_digits(draw, min_size=1, max_size=16):
    """Digits as a clerk might type them: any script, spaces, dashes and direction marks."""
    digits = draw(st.text(alphabet=ASCII, min_size=min_size, max_size=max_size))
    out = []
    for digit in digits:
        script = draw(st.sampled_from(SCRIPTS))
        out.append(draw(st.sampled_from(["", "", "", *SPACES, *DASHES[:1], *BIDI])))
        out.append(script[int(digit)])
    return "".join(out)


_NOISE = st.text(
    alphabet=ASCII + ARABIC_INDIC_DIGITS + PERSIAN_DIGITS + BIDI + SPACES + DASHES + ODD
)


@given(st.lists(_NOISE | typed_digits(), max_size=20))
def test_digits_per_value_and_per_column_agree(texts):
    assert _column(plain_column, texts) == [plain(text) for text in texts]
    assert _column(ascii_number_column, texts) == [ascii_number(text) for text in texts]


_PREFIXES = st.sampled_from(["+", "00", "", "0", "+0", " +", "\u200f+", "٠٠", "۰۰", "++"])
_PHONES = st.builds(lambda prefix, digits: prefix + digits, _PREFIXES, typed_digits(4, 17))


@given(st.lists(_PHONES | _NOISE | st.none(), max_size=20))
@settings(max_examples=300)
def test_phones_per_value_and_per_column_agree(texts):
    single = [None if t is None else _refused_as_none(normalise_phone, t) for t in texts]
    assert _column(phone_column, texts) == single


def test_phone_column_reads_local_digits_and_prefixes():
    typed = ["+٩٦٢ ٧٩ ١٢٣ ٤٥٦٧", "00962-79-123-4567", "۰۰۹۶۲۷۹۱۲۳۴۵۶۷", "0791234567", None]
    assert _column(phone_column, typed) == ["+962791234567"] * 3 + [None, None]


def _tckimlik(payload: int) -> str:
    number = str(payload)
    return number + tckimlik.calc_check_digits(number)


_VALID_TCKIMLIK = st.integers(10**8, 10**9 - 1).map(_tckimlik)


@st.composite
def typed_numbers(draw):
    """A document number as typed: a valid national number or a document-like string, in any
    script, with separators, marks and look-alikes."""
    base = draw(
        _VALID_TCKIMLIK
        | st.text(alphabet=ASCII + "ABCXYZabc-", min_size=0, max_size=22)
        | st.from_regex(r"[0-9]{3}-[0-9]{2}[A-Z][0-9]{5}", fullmatch=True)
    )
    out = []
    for char in base:
        out.append(draw(st.sampled_from(["", "", "", " ", "\u00a0", "\u200f"])))
        script = draw(st.sampled_from(SCRIPTS)) if char.isdigit() else None
        out.append(script[int(char)] if script else char)
    if draw(st.booleans()):
        out.append(draw(st.sampled_from(["\uff10", "\u2013", "/", "\t", "\u066c"])))
    return "".join(out)


@pytest.mark.parametrize("scheme_name", ["tr.tckimlik", "digits:11", "il.idnr"])
@given(rows=st.lists(st.tuples(st.sampled_from(ID_TYPES), typed_numbers()), max_size=15))
@settings(max_examples=150, deadline=None)
def test_document_numbers_per_value_and_per_column_agree(scheme_name, rows):
    scheme = Scheme(scheme_name)
    types = pl.Series("type", [t for t, _ in rows], dtype=pl.String)
    numbers = pl.Series("number", [n for _, n in rows], dtype=pl.String)
    normalised = (
        pl.DataFrame([types, numbers])
        .select(normalise_number_column(scheme, pl.col("type"), pl.col("number")).alias("n"))["n"]
        .rename("number")
    )
    valid = valid_numbers(scheme, types, normalised).to_list()
    for (id_type, number), column_form, column_valid in zip(
        rows, normalised.to_list(), valid, strict=True
    ):
        assert column_form == normalise_number(scheme, id_type, number), (id_type, number)
        assert column_valid == (number_problem(scheme, id_type, number) is None), (
            id_type,
            number,
        )


def test_valid_numbers_of_nothing_and_of_unknown_types():
    scheme = Scheme("tr.tckimlik")
    types = pl.Series(["national_id", "driving_licence", None], dtype=pl.String)
    numbers = pl.Series([None, "AB123456", "AB123456"], dtype=pl.String)
    assert valid_numbers(scheme, types, numbers).to_list() == [True, False, False]


def test_spaces_are_what_python_counts_as_whitespace():
    assert set(SPACES) == {chr(c) for c in range(0x110000) if chr(c).isspace()}
