"""Identity document numbers and phone numbers: the only code that touches their columns.

`person.national_id`, `person.national_id_type`, `person.phone` and `person.national_id_index`
are read and written here and nowhere else. The number and the phone are stored encrypted
(`sijill.security.keys.keyring`); `national_id_index` is the number's blind index, a keyed
digest that
finds a holder by exact number without the number being stored in clear. The document type
stays clear: it is a code, not personal data. Everything else asks this module: to check a
number (`national_id_problem`, `normalise_phone`), to store it (`write`), to show it (`read`),
or to find who holds it (`find_by_national_id`, `national_id_matches`).
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from sijill.identity.national_id import Scheme, other_id_problem
from sijill.registry.models import Person, PersonState
from sijill.security.keys.keyring import current_keyring

# Digits as clerks type them on Arabic keyboards (U+0660..U+0669) read as ASCII digits.
_ARABIC_INDIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩", "0123456789")
# Invisible direction marks that text copied from Arabic documents carries around numbers.
_BIDI_MARKS = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
_PHONE_SEPARATORS = re.compile(r"[\s\-]")
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
# What separates groups of digits in document numbers as people write them.
_DOCUMENT_SEPARATORS = re.compile(r"[\s\-./]")


@dataclass(frozen=True)
class Identifiers:
    """A person's identifiers in clear, as validated and normalised."""

    national_id_type: str | None = None
    national_id: str | None = None
    phone: str | None = None


@lru_cache
def scheme_for(name: str) -> Scheme:
    return Scheme(name)


def _plain(text: str) -> str:
    return _BIDI_MARKS.sub("", text).translate(_ARABIC_INDIC_DIGITS).strip()


def normalise_national_id(scheme: Scheme, id_type: str, number: str) -> str:
    """The stored form of a document number: compact for the national scheme, else upper case."""
    # Whitespace never belongs to a document number (some stdnum schemes keep inner spaces).
    value = re.sub(r"\s", "", _plain(number))
    if id_type == "national_id":
        return scheme.compact(value)
    return value.upper()


def national_id_problem(scheme: Scheme, id_type: str, number: str) -> str | None:
    """None if the number is valid for its document type, else what the clerk should be told."""
    value = normalise_national_id(scheme, id_type, number)
    if not value:
        return "the document number is empty"
    if id_type == "national_id":
        return scheme.problem(value)
    return other_id_problem(id_type, value)


def normalise_phone(text: str) -> str:
    """E.164 form (`+` and 8 to 15 digits) of a phone number, or ValueError saying what is wrong.

    Spaces and dashes are ignored, Arabic-Indic digits read as digits and a leading `00` read
    as `+`; anything else is refused rather than guessed at.
    """
    value = _PHONE_SEPARATORS.sub("", _plain(text))
    if value.startswith("00"):
        value = "+" + value[2:]
    if not value.startswith("+"):
        raise ValueError(
            "a phone number must start with + and the country code, e.g. +962791234567"
        )
    digits = value[1:]
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError("a phone number may contain only digits, spaces and dashes after the +")
    if not _E164.fullmatch(value):
        if digits.startswith("0"):
            raise ValueError("a phone number's country code cannot start with 0")
        raise ValueError(
            f"a phone number must have 8 to 15 digits after the +, this one has {len(digits)}"
        )
    return value


def read(values: Any) -> Identifiers:
    """The identifiers of a person row (an ORM `Person` or `PersonVersion`, or a row mapping
    selecting these columns), decrypted."""
    if isinstance(values, PersonState):
        id_type, number, phone = values.national_id_type, values.national_id, values.phone
    else:
        id_type, number, phone = values["national_id_type"], values["national_id"], values["phone"]
    # The hottest read of the API: decrypt only what is there.
    if number is None and phone is None:
        return Identifiers(id_type)
    keyring = current_keyring()
    return Identifiers(
        id_type,
        None if number is None else keyring.decrypt("national_id", number),
        None if phone is None else keyring.decrypt("phone", phone),
    )


def write(person: Person, identifiers: Identifiers) -> None:
    """Store already validated and normalised identifiers on a person, encrypted."""
    keyring = current_keyring()
    number, phone = identifiers.national_id, identifiers.phone
    person.national_id_type = identifiers.national_id_type
    person.national_id = None if number is None else keyring.encrypt("national_id", number)
    person.national_id_index = None if number is None else keyring.blind_index(number)
    person.phone = None if phone is None else keyring.encrypt("phone", phone)


def _search_forms(number: str) -> list[str]:
    plain = _plain(number)
    forms = {re.sub(r"\s", "", plain).upper(), _DOCUMENT_SEPARATORS.sub("", plain).upper()}
    return sorted(form for form in forms if form)


def _search_indexes(number: str) -> list[str]:
    keyring = current_keyring()
    return [keyring.blind_index(form) for form in _search_forms(number)]


def national_id_matches(number: str) -> ColumnElement[bool]:
    """SQL condition on `person`: holds this document number (of any type), as typed."""
    return Person.national_id_index.in_(_search_indexes(number))


def find_by_national_id(session: Session, number: str) -> list[Person]:
    """Persons holding this document number exactly (separators and digit script ignored)."""
    indexes = _search_indexes(number)
    if not indexes:
        return []
    return list(session.scalars(select(Person).where(Person.national_id_index.in_(indexes))))


def holders_of_national_ids(session: Session, numbers: list[str]) -> dict[str, list[int]]:
    """For stored-form `national_id` numbers: the IDs of the persons already holding each."""
    if not numbers:
        return {}
    keyring = current_keyring()
    by_index = {keyring.blind_index(number): number for number in numbers}
    rows = session.execute(
        select(Person.national_id_index, Person.id).where(
            Person.national_id_type == "national_id", Person.national_id_index.in_(by_index)
        )
    )
    holders: dict[str, list[int]] = {}
    for index, person_id in rows:
        holders.setdefault(by_index[index], []).append(person_id)
    return holders
