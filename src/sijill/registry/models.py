"""Registry tables: households, persons, their memberships and their history.

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


def machine_text(length: int) -> String:
    """Text that only machines read and that is only ever compared for equality (record keys,
    digests): bytewise "C" collation on PostgreSQL, so its unique indexes build and insert
    without the locale's collation rules (twice as fast for the import's index builds)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class HouseholdState:
    """What a household version records (shared by the current row and its history)."""

    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"), index=True)
    address: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    dwelling_tenure: Mapped[str | None] = mapped_column(String(24))
    dwelling_walls: Mapped[str | None] = mapped_column(String(24))
    dwelling_roof: Mapped[str | None] = mapped_column(String(24))
    dwelling_floor: Mapped[str | None] = mapped_column(String(24))
    dwelling_rooms: Mapped[int | None] = mapped_column(SmallInteger)
    water_source: Mapped[str | None] = mapped_column(String(24))
    sanitation: Mapped[str | None] = mapped_column(String(24))
    cooking_fuel: Mapped[str | None] = mapped_column(String(24))
    electricity: Mapped[str | None] = mapped_column(String(24))
    assets: Mapped[list] = mapped_column(Json, default=list)
    livestock: Mapped[dict] = mapped_column(Json, default=dict)
    income_sources: Mapped[list] = mapped_column(Json, default=list)
    registration_source: Mapped[str | None] = mapped_column(String(24))
    registration_date: Mapped[date | None] = mapped_column(Date)
    enumerator: Mapped[str | None] = mapped_column(String(64))
    consent_given: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_date: Mapped[date | None] = mapped_column(Date)
    consent_purposes: Mapped[list] = mapped_column(Json, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    valid_from: Mapped[datetime] = mapped_column(Timestamp)
    recorded_by: Mapped[str] = mapped_column(String(64))


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
    given_name_ar: Mapped[str | None] = mapped_column(String(100))
    father_name_ar: Mapped[str | None] = mapped_column(String(100))
    grandfather_name_ar: Mapped[str | None] = mapped_column(String(100))
    family_name_ar: Mapped[str | None] = mapped_column(String(100))
    given_name_lat: Mapped[str | None] = mapped_column(String(100))
    father_name_lat: Mapped[str | None] = mapped_column(String(100))
    grandfather_name_lat: Mapped[str | None] = mapped_column(String(100))
    family_name_lat: Mapped[str | None] = mapped_column(String(100))
    # Normalised Arabic and Latin forms of all name parts, for search and matching.
    search_name: Mapped[str | None] = mapped_column(Text)
    sex: Mapped[str | None] = mapped_column(String(1))
    # A date of birth may be known only to the month or the year: the date stored is the first
    # day of what is known and the precision says how much of it to believe.
    birth_date: Mapped[date | None] = mapped_column(Date)
    birth_date_precision: Mapped[str | None] = mapped_column(String(5))
    death_date: Mapped[date | None] = mapped_column(Date)
    marital_status: Mapped[str | None] = mapped_column(String(16))
    nationality: Mapped[str | None] = mapped_column(String(3))
    residency_status: Mapped[str | None] = mapped_column(String(16))
    # Identifiers live in these columns only and are read and written through
    # sijill.registry.identifiers: the number and the phone encrypted (a key id and
    # base64url AES-GCM, up to 64 and 40 characters in clear), the number's blind index beside
    # them for exact search. The document type is a code, kept clear.
    national_id_type: Mapped[str | None] = mapped_column(String(24))
    national_id: Mapped[str | None] = mapped_column(String(160))
    national_id_index: Mapped[str | None] = mapped_column(String(32))
    phone: Mapped[str | None] = mapped_column(String(120))
    wg_seeing: Mapped[int | None] = mapped_column(SmallInteger)
    wg_hearing: Mapped[int | None] = mapped_column(SmallInteger)
    wg_walking: Mapped[int | None] = mapped_column(SmallInteger)
    wg_cognition: Mapped[int | None] = mapped_column(SmallInteger)
    wg_selfcare: Mapped[int | None] = mapped_column(SmallInteger)
    wg_communication: Mapped[int | None] = mapped_column(SmallInteger)
    education_level: Mapped[str | None] = mapped_column(String(24))
    enrolled: Mapped[bool | None] = mapped_column(Boolean)
    employment_status: Mapped[str | None] = mapped_column(String(24))
    employment_sector: Mapped[str | None] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    valid_from: Mapped[datetime] = mapped_column(Timestamp)
    recorded_by: Mapped[str] = mapped_column(String(64))


class Person(PersonState, Base):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    source_key: Mapped[str | None] = mapped_column(machine_text(200), unique=True)
    # Searches by national ID go to the current row only (history keeps the index unindexed).
    national_id_index: Mapped[str | None] = mapped_column(machine_text(32), index=True)


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
