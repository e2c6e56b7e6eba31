"""Registry tables: households, persons, their memberships and their history.

The columns that hold a household's or a person's fields come from the field catalogue
(`registry.fields`); this module declares the keys, the area, the bookkeeping of versions and
the derived columns (the search form of names, the blind index of a document number).

History is never overwritten. `household` and `person` hold the current state; every earlier
state is a row in `household_version` / `person_version` with the interval it was valid for
(the same layout as SQL:2011 system-versioned tables), so a bulk import writes one row per
record and "as of DATE" reads union the two.
"""

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from sijill.core.areas import Area  # noqa: F401  (households point at areas)
from sijill.core.db import Base, Json, Timestamp
from sijill.registry import fields


def machine_text(length: int) -> String:
    """Text that only machines read and that is only ever compared for equality (record keys,
    digests): bytewise "C" collation on PostgreSQL, so its unique indexes build and insert
    without the locale's collation rules (twice as fast for the import's index builds)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


_COLUMN_TYPES = {
    "text": Text(),
    "small_integer": SmallInteger(),
    "big_integer": BigInteger(),
    "float": Float(),
    "boolean": Boolean(),
    "date": Date(),
    "json": Json,
}


def _add_field_columns(state: type, catalogue: fields.Catalogue) -> None:
    """Declare on a state mixin the columns of its catalogue's fields (before the tables that
    use the mixin are declared)."""
    for column in catalogue.columns():
        kind = String(column.length) if column.type == "string" else _COLUMN_TYPES[column.type]
        nullable = column.default is None
        setattr(state, column.name, mapped_column(kind, nullable=nullable, default=column.default))


class HouseholdState:
    """What a household version records (shared by the current row and its history): the
    columns of the fields in `registry.fields.HOUSEHOLD` (added below), and these."""

    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    valid_from: Mapped[datetime] = mapped_column(Timestamp)
    recorded_by: Mapped[str] = mapped_column(String(64))


_add_field_columns(HouseholdState, fields.HOUSEHOLD)


class Household(HouseholdState, Base):
    __tablename__ = "household"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # "<source>:<the source's own record key>": makes re-importing a file a no-op.
    source_key: Mapped[str | None] = mapped_column(machine_text(200), unique=True)


class HouseholdVersion(HouseholdState, Base):
    __tablename__ = "household_version"

    household_id: Mapped[int] = mapped_column(
        ForeignKey("household.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    valid_to: Mapped[datetime] = mapped_column(Timestamp)


class PersonState:
    """What a person version records: the columns of the fields in `registry.fields.PERSON`
    (added below), and these.

    A date of birth may be known only to the month or the year: `birth_date` is the first day
    of what is known and `birth_date_precision` says how much of it to believe. Identifiers
    (`national_id_type`, `national_id`, its blind index `national_id_index`, `phone`) are read
    and written only through `sijill.registry.identifiers`: the number and the phone encrypted
    (a key id and base64url AES-GCM, up to 64 and 40 characters in clear), the index beside
    them for exact search.
    """

    # Normalised Arabic and Latin forms of all name parts, for search and matching.
    search_name: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    valid_from: Mapped[datetime] = mapped_column(Timestamp)
    recorded_by: Mapped[str] = mapped_column(String(64))


_add_field_columns(PersonState, fields.PERSON)


class Person(PersonState, Base):
    __tablename__ = "person"
    __table_args__ = (
        # Few records are ever merged away: indexing only those costs a bulk import nothing.
        Index(
            "ix_person_merged_into_id",
            "merged_into_id",
            sqlite_where=text("merged_into_id IS NOT NULL"),
            postgresql_where=text("merged_into_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    source_key: Mapped[str | None] = mapped_column(machine_text(200), unique=True)
    # Searches by national ID go to the current row only (history keeps the index unindexed).
    national_id_index: Mapped[str | None] = mapped_column(machine_text(32), index=True)
    # The record this one was merged into (`registry.merges`): kept outside the versioned
    # state, so that a merge and its undoing rewrite no history.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))


class PersonVersion(PersonState, Base):
    __tablename__ = "person_version"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    valid_to: Mapped[datetime] = mapped_column(Timestamp)


class Membership(Base):
    """A person belongs to a household from a date to a date.

    A birth, a death, a marriage into another household or a split ends one membership and may
    start another; the person keeps one identity throughout.
    """

    __tablename__ = "membership"
    __table_args__ = (
        Index(
            "uq_membership_one_open_per_person",
            "person_id",
            unique=True,
            sqlite_where=text("end_date IS NULL"),
            postgresql_where=text("end_date IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    relationship: Mapped[str] = mapped_column(String(24))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    end_reason: Mapped[str | None] = mapped_column(String(24))
    recorded_at: Mapped[datetime] = mapped_column(Timestamp)
