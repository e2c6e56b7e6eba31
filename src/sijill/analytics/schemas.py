"""What the analytics routes answer."""

from pydantic import BaseModel, Field


class RegionSummaryPublic(BaseModel):
    code: str
    name: str
    households: int | None = Field(description="null when suppressed (a small cell)")
    persons: int | None


class RegistrySummaryPublic(BaseModel):
    households: int | None
    persons: int | None
    refugees: int | None
    persons_with_disability: int | None
    regions: list[RegionSummaryPublic]
    min_cell: int | None = Field(
        description="counts below this many were suppressed (null: nothing suppressed)"
    )
