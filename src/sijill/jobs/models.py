"""The `job` table: one row per run of long work (an import, and later deduplication, scoring,
eligibility, payment preparation), whether started through the API or on the command line."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from sijill.core.db import Base, Json, Timestamp

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
INTERRUPTED = "interrupted"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)
ACTIVE = (QUEUED, RUNNING)
ENDED = (SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)


class Job(Base):
    __tablename__ = "job"

    # A random ID with a check digit (`sijill.core.ids`, 11 digits): jobs cannot be enumerated.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)
    started_by: Mapped[str] = mapped_column(String(64))  # a user name, or "system:<what>"
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int | None] = mapped_column(BigInteger)
    stage: Mapped[str | None] = mapped_column(String(200))
    # Counts and other figures of the outcome; never personal data.
    outcome: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # What went wrong, in words for the user; never personal data, never an internal message.
    error: Mapped[str | None] = mapped_column(String(500))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # A file the job produced for its user (an import's rejects), on the server that ran it.
    result_path: Mapped[str | None] = mapped_column(String(500))
    # Which process runs it ("host:pid") and when that process last said it is alive: jobs of
    # a process that is gone are marked interrupted, never left "running".
    runner: Mapped[str] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None] = mapped_column(Timestamp)
