"""The reporter of a runner's jobs: a thread that, about once a second, writes the progress
that changed to the jobs' rows, touches their heartbeat when it is due, and reads whether
someone asked (perhaps through another process of the API) to cancel one.

Work functions only set their progress in memory (`JobContext.progress`): they never wait for
the database to say how far they are, which on SQLite would be behind the import's own writes.
"""

import logging
import threading
from collections.abc import Callable
from time import monotonic

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from sijill.core.clock import utcnow
from sijill.core.db import transaction
from sijill.jobs.context import JobContext
from sijill.jobs.models import ACTIVE, RUNNING, Job

logger = logging.getLogger("sijill.jobs")


class Reporter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        contexts: Callable[[], list[JobContext]],
        on_cancel: Callable[[JobContext], None],
        report_seconds: float,
        heartbeat_seconds: float,
    ):
        self.sessions = sessions
        self._contexts = contexts  # the runner's jobs, now
        self._on_cancel = on_cancel  # told of a job someone asked to cancel
        self.report_seconds = report_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._closed = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._closed,), name="sijill-job-reporter", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._closed.set()
        if thread is not None:
            thread.join(timeout)

    def _run(self, closed: threading.Event) -> None:
        last_beat = monotonic()
        while not closed.wait(self.report_seconds):
            contexts = self._contexts()
            if not contexts:
                continue
            beat = monotonic() - last_beat >= self.heartbeat_seconds
            try:
                self.report(contexts, beat)
            except Exception as failure:
                logger.warning("Could not report the progress of jobs (%s)", type(failure).__name__)
                continue
            if beat:
                last_beat = monotonic()

    def report(self, contexts: list[JobContext], beat: bool) -> None:
        ids = [ctx.job_id for ctx in contexts]
        with transaction(self.sessions) as session:
            for ctx in contexts:
                changes = ctx.take_changes()
                if changes is not None:
                    done, total, stage = changes
                    session.execute(
                        update(Job)
                        .where(Job.id == ctx.job_id, Job.state == RUNNING)
                        .values(done=done, total=total, stage=stage)
                        .execution_options(synchronize_session=False)
                    )
            if beat:
                session.execute(
                    update(Job)
                    .where(Job.id.in_(ids), Job.state.in_(ACTIVE))
                    .values(heartbeat_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
            asked = select(Job.id).where(Job.id.in_(ids), Job.cancel_requested)
            flagged = set(session.scalars(asked))
        for ctx in contexts:
            if ctx.job_id in flagged and not ctx.cancel_requested:
                self._on_cancel(ctx)
