"""The `review_flag` table: a pair of records that a reviewer who can see both must look at.

Any stage may raise one (the registry when a person is given a national ID another person
already holds, the import likewise, the linkage stage for the pairs it is unsure of); a
national registrar lists and decides them. A flag names records by their IDs and says why by a
code: it never copies a name or a number, so the table holds no personal data of its own.
"""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from sijill.core.db import Base, Timestamp

OPEN = "open"
DECIDED = "decided"
STATES = (OPEN, DECIDED)

# Kinds of flag, and the reason codes they are raised with.
DUPLICATE_NATIONAL_ID = "duplicate_national_id"
# Two records the linkage model scores as probably one person (`sijill.linkage`).
POSSIBLE_DUPLICATE = "possible_duplicate"
# A civil registry reported a person's death (`sijill link --kind civil`): the deceased paired
# with their household's head, or with each other member when the head died, so that the
# household's reviewer sees who heads it now and what it receives.
DEATH_REPORTED = "death_reported"
KINDS = (DUPLICATE_NATIONAL_ID, POSSIBLE_DUPLICATE, DEATH_REPORTED)
NATIONAL_ID_HELD_ELSEWHERE = "national_id_held_by_another_person"
LINKAGE_MATCH = "linkage_match_probability"
DEATH_IN_CIVIL_REGISTRY = "death_in_civil_registry"

# Where a flag comes from.
SOURCES = ("api", "import", "linkage")

# What a reviewer decides: the two records are one person (to be merged by the linkage
# stage), two different people (one of the numbers is wrong), or nothing to do.
DECISIONS = ("same_person", "different_persons", "dismissed")


class ReviewFlag(Base):
    __tablename__ = "review_flag"
    __table_args__ = (
        # The same pair is never flagged twice for the same kind while a flag is open; the pair
        # is stored in order (a < b) so that the index sees (x, y) and (y, x) as one.
        Index(
            "uq_review_flag_open_pair",
            "kind",
            "person_a_id",
            "person_b_id",
            unique=True,
            sqlite_where=text("state = 'open'"),
            postgresql_where=text("state = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)
    person_a_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    person_b_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    # Each person's household when the flag was raised (a person may move later).
    household_a_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"))
    household_b_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"))
    reason: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    raised_by: Mapped[str] = mapped_column(String(64))  # a user name, or "system:<what>"
    raised_at: Mapped[datetime] = mapped_column(Timestamp)
    decision: Mapped[str | None] = mapped_column(String(32))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(Timestamp)
