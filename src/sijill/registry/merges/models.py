"""The `person_merge` table: the decision that two person records are one person.

Both records stay, with their histories and registry IDs: the lost person points to the kept
one (`person.merged_into_id`, outside the versioned state, so no history is rewritten). The
decision keeps what it was made from (a model's match weight, probability, comparison levels
and version, or a review flag) and exactly what it changed in the memberships, so that an
unmerge undoes that and nothing else. It names records by their IDs only: no name, no number.
"""

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sijill.core.db import Base, Json, Timestamp

MERGED = "merged"
UNMERGED = "unmerged"
STATES = (MERGED, UNMERGED)

# Whose open membership continues when the two records live in two households.
KEPT = "kept"
LOST = "lost"
SIDES = (KEPT, LOST)

# The end reason of the memberships a merge ends.
END_REASON = "merged"


class PersonMerge(Base):
    __tablename__ = "person_merge"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    kept_person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    lost_person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    keep_membership_of: Mapped[str] = mapped_column(String(8))
    # The household the kept person belongs to after the merge (none if neither had one).
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"))
    # What the merge changed: the memberships it ended, as [{"id", "person_id",
    # "household_id"}], and the kept person's open membership after it (none if neither had
    # one), which the merge opened when `membership_created`.
    ended_memberships: Mapped[list] = mapped_column(Json)
    membership_id: Mapped[int | None] = mapped_column(BigInteger)
    membership_created: Mapped[bool] = mapped_column(Boolean)
    # What the decision was made from: all empty for a merge decided by hand.
    match_weight: Mapped[float | None] = mapped_column(Float)
    match_probability: Mapped[float | None] = mapped_column(Float)
    levels: Mapped[dict | None] = mapped_column(Json)
    model_version: Mapped[str | None] = mapped_column(String(64))
    review_flag_id: Mapped[int | None] = mapped_column(ForeignKey("review_flag.id"))
    merged_by: Mapped[str] = mapped_column(String(64))
    merged_at: Mapped[datetime] = mapped_column(Timestamp)
    unmerged_by: Mapped[str | None] = mapped_column(String(64))
    unmerged_at: Mapped[datetime | None] = mapped_column(Timestamp)
