"""What the API shows of a review flag, and what a reviewer sends to decide one."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sijill.registry.merges.schemas import Side
from sijill.registry.reviews.models import DECISIONS, KINDS, SOURCES, STATES
from sijill.registry.schemas import PersonRegistryId, UtcDatetime

Kind = Literal[KINDS]  # type: ignore[valid-type]
State = Literal[STATES]  # type: ignore[valid-type]
Decision = Literal[DECISIONS]  # type: ignore[valid-type]
Source = Literal[SOURCES]  # type: ignore[valid-type]


class FlaggedRecord(BaseModel):
    person_id: str
    household_id: str | None = Field(
        description="the person's household when the flag was raised (none if they had none)"
    )


class ReviewFlagPublic(BaseModel):
    flag_id: int
    kind: Kind = Field(description="duplicate_national_id: two persons hold the same national ID")
    state: State = Field(description="open until a reviewer decides it")
    records: list[FlaggedRecord] = Field(description="the two persons, by registry ID")
    reason: str = Field(description="why, as a code (national_id_held_by_another_person)")
    source: Source = Field(description="what raised it: api, import or linkage")
    raised_by: str
    raised_at: UtcDatetime
    decision: Decision | None = Field(
        description="same_person (to be merged), different_persons (one number is wrong) or "
        "dismissed"
    )
    decided_by: str | None
    decided_at: UtcDatetime | None
    merge_id: int | None = Field(
        None, description="the merge made with a same_person decision, if one was (to undo it)"
    )


class ReviewFlagsPublic(BaseModel):
    data: list[ReviewFlagPublic]
    count: int = Field(description="flags matching, on all pages")


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision = Field(
        description="same_person, different_persons or dismissed", examples=["different_persons"]
    )
    keep: PersonRegistryId | None = Field(
        None,
        description="with same_person, merge the two now, keeping this one (by default, or "
        "when only keep_membership_of is given, the one registered first)",
    )
    keep_membership_of: Side | None = Field(
        None,
        description="with same_person, merge the two now; when they live in two households, "
        "whose membership continues: kept (the default) or lost",
    )

    @model_validator(mode="after")
    def _merge_only_when_same(self) -> "ReviewDecision":
        merging = self.keep is not None or self.keep_membership_of is not None
        if merging and self.decision != "same_person":
            raise ValueError("keep and keep_membership_of go only with the decision same_person")
        return self


__all__ = ["ReviewDecision", "ReviewFlagPublic", "ReviewFlagsPublic"]
