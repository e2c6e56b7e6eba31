"""The synthetic country's number machinery agrees with its references (stdnum) and is sound."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.tr import tckimlik

from sijill.synth import codes, names, national_ids, typos


@given(st.lists(st.integers(10**8, 10**9 - 1), min_size=1, max_size=50))
def test_check_digits_agree_with_stdnum(payloads):
    numbers = national_ids.full_numbers(np.array(payloads))
    for payload, number in zip(payloads, numbers, strict=True):
        assert f"{number:011d}" == str(payload) + tckimlik.calc_check_digits(str(payload))
        assert tckimlik.is_valid(str(number))


@given(st.lists(st.integers(0, 10**11 - 1), min_size=1, max_size=50))
def test_vectorised_validation_agrees_with_stdnum(numbers):
    ours = national_ids.is_valid(np.array(numbers))
    assert ours.tolist() == [tckimlik.is_valid(f"{n:011d}") for n in numbers]


def test_mistyped_ids_change_one_digit_and_still_validate():
    rng = np.random.default_rng(0)
    payloads = national_ids.payloads_for(np.arange(5_000), 99)
    typed = national_ids.mistype(payloads, rng)
    changed = np.array(
        [
            sum(a != b for a, b in zip(str(x), str(y), strict=True))
            for x, y in zip(payloads, typed, strict=True)
        ]
    )
    assert (changed == 1).all()
    assert national_ids.is_valid(national_ids.full_numbers(typed)).all()


def test_permutation_is_a_bijection_on_its_domain():
    for domain in (1_000, 9 * 10**5, 30_000_000):
        counter = np.arange(min(domain, 200_000))
        out = codes.permute(counter, domain, key=12345)
        assert out.min() >= 0 and out.max() < domain
        assert len(np.unique(out)) == len(counter)
    assert (
        codes.permute(np.arange(1_000), 1_000, 1) != codes.permute(np.arange(1_000), 1_000, 2)
    ).any()


def test_permutation_refuses_counters_outside_its_domain():
    # Beyond the domain a counter would land on another counter's value.
    for counter in (1_000, 1_001, 5_000, -1):
        with pytest.raises(ValueError, match="outside"):
            codes.permute(np.array([0, counter]), 1_000, 99)
    assert len(codes.permute(np.array([], dtype=np.int64), 1_000, 99)) == 0


def test_fixed_width_strings():
    out = codes.fixed_strings(np.array([7, 1234]), 5, prefix="+9", valid=np.array([True, False]))
    assert out.to_pylist() == ["+900007", None]
    assert codes.template_strings("1##-##C#####", np.array([123456789])).to_pylist() == [
        "112-34C56789"
    ]


def test_typos_always_change_a_name_by_one_edit():
    rng = np.random.default_rng(3)
    latin = names.GIVEN.latin.take(pa.array(rng.integers(0, len(names.GIVEN.latin), 5_000)))
    arabic = names.SURNAMES.arabic.drop_null()
    for column in (latin, arabic):
        edited = typos.apply(column, rng).to_pylist()
        for before, after in zip(column.to_pylist(), edited, strict=True):
            assert before != after
            assert abs(len(before) - len(after)) <= 1
