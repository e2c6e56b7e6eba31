"""Dated parameters: the value in force on a date, the reference kept, bad files named."""

import datetime as dt
from decimal import Decimal

import pytest

from sijill.core.errors import InvalidInput
from sijill.core.parameters import load_parameter
from sijill.registry.codes import wg_disability_threshold

AMOUNT = """\
description: A monthly amount per child.
unit: MAD
reference: Decree 2-23-1065, article 3.
values:
  2024-01-01: 200
  2025-07-01:
    value: 250.50
    reference: Decree 2-25-100 (the increase of July 2025).
"""


def write(tmp_path, text, name="child_amount.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_value_in_force_on_each_side_of_a_change(tmp_path):
    parameter = load_parameter(write(tmp_path, AMOUNT))
    assert parameter.value_at(dt.date(2024, 1, 1)) == 200
    assert parameter.value_at(dt.date(2025, 6, 30)) == 200
    assert parameter.value_at(dt.date(2025, 7, 1)) == Decimal("250.50")
    assert isinstance(parameter.value_at(dt.date(2030, 1, 1)), Decimal)  # never a float
    assert parameter.in_force(dt.date(2026, 1, 1)).reference.startswith("Decree 2-25-100")
    with pytest.raises(InvalidInput, match="no value before 2024-01-01"):
        parameter.value_at(dt.date(2023, 12, 31))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("just text", "is a mapping of fields"),
        (AMOUNT.replace("unit: MAD\n", ""), "the field 'unit' is missing"),
        (AMOUNT.replace("2024-01-01", "January 2024"), "'January 2024' is not a date"),
        (AMOUNT.replace("    value: 250.50\n", "    amount: 250.50\n"), "'value' is missing"),
        ("description: [unclosed", "is not valid YAML"),
    ],
)
def test_a_bad_file_is_named_with_the_field_at_fault(tmp_path, text, message):
    with pytest.raises(InvalidInput, match=message) as caught:
        load_parameter(write(tmp_path, text))
    assert "child_amount.yaml" in caught.value.detail


def test_the_washington_group_cut_off_is_a_dated_referenced_parameter():
    threshold = wg_disability_threshold()
    assert threshold.value_at(dt.date(2026, 1, 1)) == 3
    assert "Washington Group" in threshold.reference
