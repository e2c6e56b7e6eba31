"""The one place that reads the time, so tests and replays can pin it."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
