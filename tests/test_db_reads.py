"""`core.db.execute_read`: a Core read on the session's connection sees what the session has
pending, as `Session.execute` does, and reads in the session's transaction."""

from sqlalchemy import func, select

from sijill.core import clock
from sijill.core.db import execute_read
from sijill.jobs.models import Job

COUNT = select(func.count()).select_from(Job).where(Job.kind == "test-read")


def _job(job_id: int) -> Job:
    return Job(
        id=job_id, kind="test-read", state="queued", started_by="t", created_at=clock.utcnow(),
        runner="test:1",
    )  # fmt: skip


def test_a_read_sees_the_sessions_pending_rows_and_its_transaction(sessions):
    with sessions() as session:
        session.add(_job(10000000001))  # pending: not flushed yet
        assert execute_read(session, COUNT).scalar() == 1
        assert execute_read(session, COUNT).scalar() == session.scalar(COUNT)
        session.rollback()
        assert execute_read(session, COUNT).scalar() == 0
