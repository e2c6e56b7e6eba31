"""Document numbers and phone numbers: what is accepted, how it is stored, how it is found."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factories import household, make_areas, national_id
from sijill.core.db import transaction
from sijill.registry import identifiers, service
from sijill.registry.schemas import HouseholdCreate, parse_as_of, parse_partial_date
from sijill.security.principal import Principal

TCKIMLIK = identifiers.scheme_for("tr.tckimlik")
ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩"


@pytest.mark.parametrize(
    "typed,stored",
    [
        ("+962791234567", "+962791234567"),
        ("+962 79 123-4567", "+962791234567"),
        ("00962791234567", "+962791234567"),
        ("+٩٦٢٧٩١٢٣٤٥٦٧", "+962791234567"),
        ("\u200f+962 791 234 567\u200f", "+962791234567"),
    ],
)
def test_normalise_phone(typed, stored):
    assert identifiers.normalise_phone(typed) == stored


@pytest.mark.parametrize(
    "typed,message",
    [
        ("0791234567", "must start with +"),
        ("+962 (79) 1234567", "only digits, spaces and dashes"),
        ("+96279x234567", "only digits"),
        ("+1234567", "8 to 15 digits"),
        ("+1234567890123456", "8 to 15 digits"),
        ("+0962791234567", "cannot start with 0"),
    ],
)
def test_normalise_phone_refuses(typed, message):
    with pytest.raises(ValueError, match=message):
        identifiers.normalise_phone(typed)


@given(st.text(alphabet="0123456789", min_size=8, max_size=15).filter(lambda d: d[0] != "0"))
def test_phone_digits_in_either_script_agree(digits):
    arabic = digits.translate(str.maketrans("0123456789", ARABIC_INDIC))
    assert identifiers.normalise_phone("+" + arabic) == identifiers.normalise_phone("+" + digits)


def test_national_id_problem_by_document_type():
    number = national_id()
    assert identifiers.national_id_problem(TCKIMLIK, "national_id", number) is None
    spaced = f"{number[:3]} {number[3:]}"
    assert identifiers.normalise_national_id(TCKIMLIK, "national_id", spaced) == number
    bad = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert "not valid" in identifiers.national_id_problem(TCKIMLIK, "national_id", bad)
    assert identifiers.national_id_problem(TCKIMLIK, "unhcr", "123-45C67890") is None
    assert "expected format" in identifiers.national_id_problem(TCKIMLIK, "passport", "A1")
    digits_scheme = identifiers.scheme_for("digits:10")
    assert identifiers.national_id_problem(digits_scheme, "national_id", "٩٨٧٦٥٤٣٢١٠") is None


def test_find_by_national_id(sessions, settings):
    make_areas(sessions)
    payload = household()
    number = payload["members"][0]["national_id"]["number"]
    with transaction(sessions) as session:
        created = service.register_household(
            session,
            Principal.system("test"),
            HouseholdCreate.model_validate(payload),
            settings=settings,
        )
    with sessions() as session:
        found = identifiers.find_by_national_id(session, f" {number[:5]}-{number[5:]} ")
        assert [p.id for p in found] == [int(created.members[0].person_id)]
        assert identifiers.read(found[0]).national_id == number
        assert identifiers.find_by_national_id(session, national_id()) == []
        assert identifiers.find_by_national_id(session, "  ") == []


@pytest.mark.parametrize(
    "text,precision",
    [("1980", "year"), ("1980-05", "month"), ("1980-05-12", "day")],
)
def test_parse_partial_date(text, precision):
    value, found = parse_partial_date(text)
    assert found == precision and value.year == 1980


def test_parse_as_of():
    assert parse_as_of("2026-01-31").isoformat() == "2026-01-31T23:59:59.999999+00:00"
    assert parse_as_of("2026-01-31T10:00:00+02:00").isoformat() == "2026-01-31T08:00:00+00:00"
    assert parse_as_of("2026-01-31T10:00").isoformat() == "2026-01-31T10:00:00+00:00"
    with pytest.raises(ValueError):
        parse_as_of("31/01/2026")
