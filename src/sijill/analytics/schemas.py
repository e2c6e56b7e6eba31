"""What the analytics routes answer."""

from datetime import datetime

from pydantic import BaseModel, Field

_COMPUTED_AT = "when the figures were computed: a server keeps them `aggregates_max_age` seconds"


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
    computed_at: datetime = Field(description=_COMPUTED_AT)


class ProgramCellPublic(BaseModel):
    program: str
    selected: int | None = Field(
        description="households the program selected (notified or enrolled); null when "
        "suppressed, with `enrolled`"
    )
    enrolled: int | None


class AreaRowPublic(BaseModel):
    code: str
    name: str
    name_ar: str | None
    households: int | None = Field(description="null when suppressed (a small cell)")
    persons: int | None
    programs: list[ProgramCellPublic]


class AreaSummaryPublic(BaseModel):
    level: str
    levels: list[str] = Field(description="the levels this user may ask for")
    total: AreaRowPublic = Field(description="the user's areas together (code and name empty)")
    areas: list[AreaRowPublic]
    programs: list[str]
    min_cell: int | None
    computed_at: datetime = Field(description=_COMPUTED_AT)
