"""The linkage stage's tables: the models it scored with, its runs, and the pairs it proposed.

A pair proposed for review is also a `review_flag` (kind "possible_duplicate"), which is what
reviewers list and decide; `match_pair` keeps what the proposal was decided from: the match
weight and probability, each comparison's level, and the model's version (whose JSON is in
`linkage_model`, so any decision can be traced back to the exact parameters). Like the flags,
none of these tables holds a name or a number.

What a list's lines bring (`sijill link`) is kept as `list_match` (which line of which list is
which person, at what probability, by which model) and `person_fact` (dated facts: an employer
and salary, a taxable income, another program's amount), each naming the list and line.
"""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    TypeDecorator,
)
from sqlalchemy.orm import Mapped, mapped_column

from sijill.core.db import Base, Json, Timestamp

DEDUP = "dedup"
LINK = "link"


class Amount(TypeDecorator):
    """An exact decimal amount: NUMERIC(18, 3) on PostgreSQL (three places: dinars have
    fils); on SQLite, whose NUMERIC columns keep binary floats, the decimal's text."""

    impl = Numeric(18, 3)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(18, 3, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None or dialect.name != "sqlite":
            return value
        return str(Decimal(value))

    def process_result_value(self, value, dialect):
        return None if value is None else Decimal(value)


class LinkageModel(Base):
    __tablename__ = "linkage_model"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    trained_at: Mapped[datetime] = mapped_column(Timestamp)
    trained_on_records: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[dict] = mapped_column(Json)  # the saved artifact, as `linkage.model.save` writes


class LinkageRun(Base):
    __tablename__ = "linkage_run"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # dedup | link
    model_version: Mapped[str] = mapped_column(String(32), ForeignKey("linkage_model.version"))
    area_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("area.id"))
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    run_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    records: Mapped[int] = mapped_column(BigInteger, default=0)
    pairs_proposed: Mapped[int] = mapped_column(BigInteger, default=0)
    flags_raised: Mapped[int] = mapped_column(BigInteger, default=0)
    review_threshold: Mapped[float] = mapped_column(Float)


class MatchPair(Base):
    __tablename__ = "match_pair"
    __table_args__ = (Index("ix_match_pair_persons", "person_a_id", "person_b_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("linkage_run.id"), index=True)
    person_a_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("person.id"))
    person_b_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("person.id"))
    # A score, not an amount: a float is the right type for a log-likelihood ratio.
    match_weight: Mapped[float] = mapped_column(Float)
    match_probability: Mapped[float] = mapped_column(Float)
    levels: Mapped[dict] = mapped_column(Json)  # comparison → the level the pair fell in
    review_flag_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("review_flag.id"), index=True
    )


class ListMatch(Base):
    """A line of an outside list (`sijill link`) and the registry person it was matched to:
    what every event of that line names as its source."""

    __tablename__ = "list_match"
    __table_args__ = (Index("ix_list_match_person", "person_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("linkage_run.id"), index=True)
    list_kind: Mapped[str] = mapped_column(String(16))  # civil | payroll | tax | beneficiaries
    list_file: Mapped[str] = mapped_column(String(200))  # the file's name, as the agency sent it
    list_line: Mapped[int] = mapped_column(BigInteger)  # its line (row of a sheet, record)
    person_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("person.id"))
    match_weight: Mapped[float] = mapped_column(Float)
    match_probability: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(32), ForeignKey("linkage_model.version"))
    # What the line changed: death_recorded, death_already_recorded, fact_added, fact_present.
    event: Mapped[str] = mapped_column(String(32))


class PersonFact(Base):
    """A dated fact about a person learnt from another agency's list, for later eligibility
    rules to read: `formal_employment` (employer, monthly salary), `taxable_income` (for a tax
    year, from its first day), `other_program` (program, amount). Amounts are exact decimals."""

    __tablename__ = "person_fact"
    __table_args__ = (Index("ix_person_fact_person_kind", "person_id", "kind"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    person_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("person.id"))
    kind: Mapped[str] = mapped_column(String(32))
    valid_from: Mapped[date] = mapped_column(Date)
    text_value: Mapped[str | None] = mapped_column(String(200))  # employer, program
    amount: Mapped[Decimal | None] = mapped_column(Amount)
    source_list: Mapped[str] = mapped_column(String(200))
    source_line: Mapped[int] = mapped_column(BigInteger)
    list_match_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("list_match.id"))
