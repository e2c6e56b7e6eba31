"""What a reviewer sends to merge two person records, and what the API shows of a merge."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sijill.registry.merges.models import SIDES, STATES
from sijill.registry.schemas import PersonRegistryId, UtcDatetime

Side = Literal[SIDES]  # type: ignore[valid-type]
State = Literal[STATES]  # type: ignore[valid-type]

KEEP_MEMBERSHIP_OF = Field(
    "kept",
    description="when the two records belong to two households, whose membership continues: "
    "the kept person's (kept) or the lost person's (lost, where the kept person then takes "
    "the lost person's place)",
)


class MergeEvidence(BaseModel):
    """What a merge was decided from, when a model scored the pair (all optional)."""

    model_config = ConfigDict(extra="forbid")

    match_weight: float | None = Field(None, ge=-1000, le=1000, allow_inf_nan=False)
    match_probability: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    levels: dict[str, Any] | None = Field(
        None, description="the comparison levels of the pair, as the model reported them"
    )
    model_version: Annotated[str, Field(max_length=64, pattern=r"^[^\x00]*$")] | None = None


class MergeRequest(MergeEvidence):
    lost: PersonRegistryId = Field(description="the record merged away")
    keep_membership_of: Side = KEEP_MEMBERSHIP_OF
    review_flag_id: int | None = Field(
        None, ge=1, le=2**63 - 1, description="the review flag the merge was decided on"
    )

    def evidence(self) -> MergeEvidence:
        return MergeEvidence.model_validate(
            self.model_dump(include=set(MergeEvidence.model_fields))
        )


class MembershipEnded(BaseModel):
    person_id: str
    household_id: str


class MergePublic(BaseModel):
    merge_id: int
    state: State = Field(description="merged, or unmerged once undone")
    kept_person_id: str
    lost_person_id: str = Field(description="now points to the kept person")
    keep_membership_of: Side
    household_id: str | None = Field(
        description="where the kept person belongs after the merge (none if neither had a "
        "household)"
    )
    memberships_ended: list[MembershipEnded] = Field(
        description="the open memberships the merge ended (reason merged)"
    )
    membership_created: bool = Field(
        description="whether the kept person was given a new membership in the lost person's "
        "household"
    )
    match_weight: float | None
    match_probability: float | None
    levels: dict[str, Any] | None
    model_version: str | None
    review_flag_id: int | None
    merged_by: str
    merged_at: UtcDatetime
    unmerged_by: str | None
    unmerged_at: UtcDatetime | None
