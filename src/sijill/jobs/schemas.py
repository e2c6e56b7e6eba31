"""What the API shows of a job."""

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

State = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without their zone; they were stored in UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class JobPublic(BaseModel):
    job_id: str = Field(description="11 digits, the last a check digit", examples=["48291057316"])
    kind: str = Field(description="what the job does: import, ...")
    state: State = Field(
        description="queued, running, then succeeded, failed, cancelled (on request; what "
        "was committed before stays) or interrupted (the server or the command stopped "
        "before the job ended; what was committed stays: run it again to continue)"
    )
    started_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    done: int = Field(description="units of work done so far (an import: households read)")
    total: int | None = Field(description="units of work in all, when known in advance")
    stage: str | None = Field(description="what the job is doing now, when it says")
    outcome: dict[str, Any] | None = Field(
        description="the figures of the outcome (an import: households and persons added, "
        "already present, rows rejected, ...); never personal data"
    )
    error: str | None = Field(description="why the job failed or stopped")
    cancel_requested: bool
    rejects: str | None = Field(
        None, description="where to download the rows the job rejected (CSV), if any"
    )

    _utc_times = field_validator("created_at", "started_at", "finished_at")(_utc)
