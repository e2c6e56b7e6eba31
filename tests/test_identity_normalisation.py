import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.tr import tckimlik

from sijill.identity.names import (
    NAME_PARTS,
    normalise_name,
    normalise_name_column,
    search_name,
    search_name_column,
)
from sijill.identity.national_id import Scheme


@pytest.mark.parametrize(
    "written,normalised",
    [
        ("أحمد", "احمد"),
        ("إبراهيم", "ابراهيم"),
        ("فاطمة", "فاطمه"),
        ("مُحَمَّد", "محمد"),
        ("مصطفى", "مصطفي"),
        ("Zoé  Al-Hassan", "zoe al hassan"),
        ("Abd'allah", "abdallah"),
    ],
)
def test_normalise_name(written, normalised):
    assert normalise_name(written) == normalised


@given(st.lists(st.text(alphabet="ابتثأإآةىئؤ ًٌٍَُِّْـ abcéèAB-' ", max_size=20), max_size=20))
def test_bulk_and_single_normalisation_agree(names):
    bulk = pl.DataFrame({"n": names}, schema={"n": pl.String}).select(
        normalise_name_column(pl.col("n"))
    )
    assert bulk["n"].to_list() == [normalise_name(n) for n in names]


_NAME_PART = st.none() | st.text(alphabet="ابتثأإآةىئؤ ًٌٍَُِّْـ abcéèAB-' ", max_size=12)


@given(st.lists(st.fixed_dictionaries({part: _NAME_PART for part in NAME_PARTS}), max_size=15))
def test_bulk_and_single_search_names_agree(people):
    """Empty, blank and punctuation-only parts are left out alike (no doubled spaces)."""
    frame = pl.DataFrame(people, schema={part: pl.String for part in NAME_PARTS})
    bulk = frame.select(search_name_column(frame).alias("s"))["s"].to_list()
    assert bulk == [search_name(parts) for parts in people]


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_vectorised_tckimlik_agrees_with_stdnum(number):
    scheme = Scheme("tr.tckimlik")
    assert scheme.valid_column(pl.Series([number]))[0] == tckimlik.is_valid(number)


def test_scheme_messages():
    assert Scheme("tr.tckimlik").problem("12345678901") is not None
    assert "10 digits" in Scheme("digits:10").problem("12345")
    with pytest.raises(ValueError, match="Unknown national ID scheme"):
        Scheme("xx.nothing")


@given(st.integers(min_value=10**8, max_value=10**9 - 1))
def test_vectorised_tckimlik_accepts_what_stdnum_accepts(payload):
    number = str(payload) + tckimlik.calc_check_digits(str(payload))
    assert tckimlik.is_valid(number)
    assert Scheme("tr.tckimlik").valid_column(pl.Series([number, None]))[0]


@pytest.mark.parametrize(
    "spellings",
    [
        ("عبد الرحمن", "عبدالرحمن", "عبد  الرحمن"),
        ("Abdel Rahman", "Abdelrahman", "Abd el-Rahman", "ABD EL RAHMAN"),
        ("Abdul Aziz", "Abdulaziz", "Abd ul-Aziz"),
        ("Abd Allah", "Abdallah", "Abd'allah"),
    ],
)
def test_compound_names_fold_together(spellings):
    assert len({normalise_name(spelling) for spelling in spellings}) == 1


def test_compound_fold_joins_only_a_whole_abd_to_the_next_word():
    assert normalise_name("محمد عبد الله") == "محمد عبدالله"
    assert normalise_name("Abdin Ahmad") == "abdin ahmad"
    assert normalise_name("Rahman Abd") == "rahman abd"
    assert normalise_name("عبد") == "عبد"


_COMPOUND_WORDS = st.sampled_from(
    ["عبد", "عبدال", "الرحمن", "abd", "Abdel", "el", "al", "ul", "oul", "rahman", " ", "-", "'"]
)


@given(st.lists(st.lists(_COMPOUND_WORDS, max_size=6).map(" ".join), max_size=20))
def test_bulk_and_single_compound_folds_agree(names):
    bulk = pl.DataFrame({"n": names}, schema={"n": pl.String}).select(
        normalise_name_column(pl.col("n"))
    )
    assert bulk["n"].to_list() == [normalise_name(n) for n in names]
