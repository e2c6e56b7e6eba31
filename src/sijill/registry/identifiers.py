"""Identity document numbers and phone numbers: the only code that touches their columns.

`person.national_id`, `person.national_id_type`, `person.phone` and `person.national_id_index`
are read and written here and nowhere else. The number and the phone are stored encrypted
(`sijill.security.keys.keyring`); `national_id_index` is the number's blind index, a keyed
digest that
finds a holder by exact number without the number being stored in clear. The document type
stays clear: it is a code, not personal data. Everything else asks this module: to check a
number (`national_id_problem`, `normalise_phone`), to store it (`write`, or `write_batch` for a
bulk batch), to show it (`read`, `public`), or to find who holds it (`find_by_national_id`,
`national_id_matches`).

The rules themselves (digits, phones, document numbers) live in `sijill.identity`, once per
value and once per column, so this path and the bulk path cannot read a number differently.
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import Any

import polars as pl
from sqlalchemy import ColumnElement, event, inspect, select
from sqlalchemy.orm import Session

from sijill.identity import national_id as documents
from sijill.identity.digits import plain
from sijill.identity.national_id import Scheme
from sijill.identity.phones import normalise_phone
from sijill.registry.models import Person, PersonState
from sijill.security.keys.keyring import current_keyring
from sijill.security.keys.usage import key_ids_of, record_key_use

__all__ = [
    "Identifiers",
    "batch_key_ids",
    "find_by_national_id",
    "holders_of_national_ids",
    "national_id_matches",
    "national_id_problem",
    "normalise_national_id",
    "normalise_phone",
    "public",
    "read",
    "scheme_for",
    "taking_new_national_ids",
    "write",
    "write_batch",
]

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


def normalise_national_id(scheme: Scheme, id_type: str, number: str) -> str:
    """The stored form of a document number: compact for the national scheme, else upper case."""
    return documents.normalise_number(scheme, id_type, number)


def national_id_problem(scheme: Scheme, id_type: str, number: str) -> str | None:
    """None if the number is valid for its document type, else what the clerk should be told."""
    return documents.number_problem(scheme, id_type, number)


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


def public(values: Any) -> dict[str, Any]:
    """The identifiers of a person row as the API shows them (`national_id`, `phone`)."""
    ids = read(values)
    document = {"type": ids.national_id_type, "number": ids.national_id}
    return {"national_id": document if ids.national_id else None, "phone": ids.phone}


def write(person: Person, identifiers: Identifiers) -> None:
    """Store already validated and normalised identifiers on a person, encrypted. The key
    they are encrypted under is noted when the session flushes (`_note_key_use`)."""
    keyring = current_keyring()
    number, phone = identifiers.national_id, identifiers.phone
    person.national_id_type = identifiers.national_id_type
    person.national_id = None if number is None else keyring.encrypt("national_id", number)
    person.national_id_index = None if number is None else keyring.blind_index(number)
    person.phone = None if phone is None else keyring.encrypt("phone", phone)


@event.listens_for(Session, "before_flush")
def _note_key_use(session: Session, _context: Any, _instances: Any) -> None:
    """Every transaction that stores identifiers notes the keys they are under, whoever set
    them (`sijill.security.keys.usage`)."""
    tokens = []
    for person in chain(session.new, session.dirty):
        if isinstance(person, Person):
            state = inspect(person)
            for column in ("national_id", "phone"):
                tokens.extend(state.attrs[column].history.added)
    if kids := key_ids_of(tokens):
        record_key_use(session, kids)


def write_batch(persons: pl.DataFrame) -> pl.DataFrame:
    """`write` for a bulk batch of validated and normalised persons: `national_id` and `phone`
    encrypted and the number's blind index added. One cipher for the whole batch; the
    per-value work is the AES-GCM call itself. The writer notes `batch_key_ids` of the result
    in the batch's transaction (`sijill.security.keys.usage.KEY_IN_USE_INSERT`)."""
    keyring = current_keyring()
    numbers = persons["national_id"].to_list()
    return persons.with_columns(
        keyring.encrypt_column("national_id", numbers),
        pl.Series("national_id_index", keyring.blind_index_many(numbers), pl.String),
        keyring.encrypt_column("phone", persons["phone"].to_list()),
    )


def batch_key_ids(persons: pl.DataFrame) -> list[str]:
    """The key ids the encrypted columns of a `write_batch` result are under. `encrypt_column`
    seals a whole column under one key, so each column's first token names the key of all of
    them (reading every token's head cost 0.2 s per 100,000 households)."""
    kids = set()
    for field in ("national_id", "phone"):
        first = persons[field].drop_nulls().head(1).to_list()
        if first:
            kids.add(current_keyring().key_id_of(first[0]))
    return sorted(kid for kid in kids if kid is not None)


def _search_forms(number: str) -> list[str]:
    typed = plain(number).strip()
    forms = {re.sub(r"\s", "", typed).upper(), _DOCUMENT_SEPARATORS.sub("", typed).upper()}
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


def taking_new_national_ids(session: Session, numbers: dict[int, str]) -> list[int]:
    """Of some registered persons and the stored-form `national_id` number each is to hold:
    those who do not hold that number yet (compared by blind index, one query)."""
    if not numbers:
        return []
    keyring = current_keyring()
    held = dict(
        session.execute(
            select(Person.id, Person.national_id_index).where(
                Person.id.in_(numbers), Person.national_id_type == "national_id"
            )
        ).all()
    )
    return sorted(
        person_id
        for person_id, number in numbers.items()
        if held.get(person_id) != keyring.blind_index(number)
    )
