import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import verhoeff

from sijill.core.errors import InvalidInput
from sijill.core.ids import new_id, new_ids, parse_id, verhoeff_check_digits


@given(st.integers(min_value=0, max_value=10**11 - 1))
def test_vectorised_check_digit_matches_stdnum(payload):
    digits = str(payload).zfill(11)
    expected = int(verhoeff.calc_check_digit(digits))
    assert verhoeff_check_digits(np.array([payload]), 11)[0] == expected


@pytest.mark.parametrize("kind,length", [("household", 10), ("person", 12)])
def test_new_ids_are_valid_unique_and_unordered(kind, length):
    ids = new_ids(kind, 50_000)
    assert len(set(ids.tolist())) == 50_000
    assert all(len(str(i)) == length for i in ids[:1000])
    assert all(verhoeff.is_valid(str(i)) for i in ids[:1000])
    assert not np.all(np.diff(ids) > 0), "IDs must not come out in increasing order"


def test_parse_id_round_trips():
    household = new_id("household")
    assert parse_id("household", str(household)) == household
    assert parse_id("household", f" {str(household)[:5]}-{str(household)[5:]} ") == household


@given(st.data())
def test_any_single_digit_typo_is_caught(data):
    good = str(new_id("person"))
    position = data.draw(st.integers(0, len(good) - 1))
    replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != good[position]]))
    typo = good[:position] + replacement + good[position + 1 :]
    with pytest.raises(InvalidInput, match="check digit|digits"):
        parse_id("person", typo)


@pytest.mark.parametrize(
    "text,message",
    [("12345", "must have 10 digits"), ("12345abcde", "digits only"), ("١٢٣", "digits only")],
)
def test_parse_id_rejects_with_a_clear_message(text, message):
    with pytest.raises(InvalidInput, match=message):
        parse_id("household", text)
