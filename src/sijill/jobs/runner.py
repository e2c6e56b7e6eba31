"""Running jobs: in a small pool of threads of the API process (`start`, answered at once with
the queued job), or in the caller's own thread (`run`: a command with its progress bar).

Either way the job is a row of the `job` table, and the work function of its kind
(`sijill.jobs.kinds`) gets a `JobContext` (`sijill.jobs.context`) to report progress, poll
`cancelled()` at its checkpoints and leave its outcome. The job ends succeeded, failed (its
error in words, never personal data nor an internal message), cancelled (a user asked) or
interrupted (the server stopped, Ctrl-C, or its process is gone: `interrupt_left_behind` at the
API's start-up and `service.settle` on a look find those). Every start, cancellation and end
is audited.
"""

import contextlib
import logging
import queue
import threading
import traceback
from dataclasses import replace
from time import monotonic
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from sijill.core.clock import utcnow
from sijill.core.db import transaction
from sijill.core.errors import Conflict, SijillError, TooManyRequests
from sijill.core.ids import new_id
from sijill.core.settings import Settings
from sijill.jobs import kinds, service
from sijill.jobs.context import JobContext
from sijill.jobs.kinds import JobKind
from sijill.jobs.models import (
    ACTIVE,
    CANCELLED,
    ENDED,
    FAILED,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Job,
)
from sijill.jobs.reporter import Reporter
from sijill.security.audit.service import append
from sijill.security.principal import Principal

logger = logging.getLogger("sijill.jobs")

SERVER_STOPPED = (
    "the server stopped before the job ended; what was committed stays: start it again to continue"
)
NOT_STARTED = "the server stopped before the job started"
COMMAND_STOPPED = (
    "stopped (Ctrl-C) before the job ended; what was committed stays: run it again to continue"
)


def describe(error: BaseException) -> str:
    """What a user is told of a job's failure: a user's mistake in its own words, anything else
    only by its type (a database error's message carries the row's values)."""
    if isinstance(error, SijillError):
        return error.detail[:500]
    if isinstance(error, KeyboardInterrupt):
        return COMMAND_STOPPED
    return f"the job met an unexpected error ({type(error).__name__}); it has been logged"


def _clean_up(kind: JobKind, params: Any) -> None:
    if kind.cleanup is None:
        return
    try:
        kind.cleanup(params)
    except Exception as failure:
        logger.error("Could not clean up after a %s job (%s)", kind.name, type(failure).__name__)


class JobRunner:
    """Runs the jobs of one process (the API app's `app.state.jobs`, or a command's)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        *,
        workers: int | None = None,
        max_waiting: int = 16,
        report_seconds: float = 1.0,
        heartbeat_seconds: float = service.HEARTBEAT_SECONDS,
        shutdown_seconds: float = 30.0,
    ):
        self.sessions = sessions
        self.settings = settings
        self.workers = workers or settings.job_workers
        self.max_waiting = max_waiting
        self.shutdown_seconds = shutdown_seconds
        self._lock = threading.Lock()
        self._contexts: dict[int, JobContext] = {}
        self._threads: list[threading.Thread] = []
        self._reporter = Reporter(
            sessions,
            self._running_contexts,
            self._cancelled_elsewhere,
            report_seconds,
            heartbeat_seconds,
        )
        self._queue: queue.Queue[JobContext | None] = queue.Queue()
        self._stopping = threading.Event()

    def __enter__(self) -> "JobRunner":
        return self

    def __exit__(self, *_) -> None:
        self.shutdown()

    # --- starting -------------------------------------------------------------------------------

    def start(self, kind_name: str, params: Any, principal: Principal) -> Job:
        """Record a job of this kind, queued, and run it in the background; returns at once."""
        kind = kinds.get(kind_name)
        try:
            principal.require(kind.permission)
            with self._lock:
                waiting = sum(1 for ctx in self._contexts.values() if not ctx.claimed)
            if waiting >= self.max_waiting:
                raise TooManyRequests(
                    f"{waiting} jobs are already waiting to run on this server; try again later"
                )
            job, ctx = self._record(kind, params, principal, QUEUED)
        except BaseException:
            _clean_up(kind, params)
            raise
        self._start_threads()
        self._queue.put(ctx)
        return job

    def run(
        self, kind_name: str, params: Any, principal: Principal, *, progress=None, stage=None
    ) -> Any:
        """Run a job of this kind in this thread (a command's foreground, with its progress
        bar: `progress(done, total)`, `stage(text)`); returns what its work returns, and
        raises what it raises, once the job's end is recorded."""
        kind = kinds.get(kind_name)
        try:
            principal.require(kind.permission)
            _, ctx = self._record(kind, params, principal, RUNNING, progress, stage)
        except BaseException:
            _clean_up(kind, params)
            raise
        ctx.claim()
        self._reporter.start()
        return self._execute(ctx, foreground=True)

    def _record(
        self, kind: JobKind, params: Any, principal: Principal, state: str, *callbacks
    ) -> tuple[Job, JobContext]:
        # The job's own principal: its audit entries are its own, not the request's.
        actor = replace(principal, pending_audit=[])
        job_id = new_id("job")
        service.mark_active(job_id)  # before its row exists: never taken for left behind
        try:
            with transaction(self.sessions) as session:
                job = service.create(session, job_id, kind.name, actor.username, state, utcnow())
                actor.audit("job.start", "ok", "job", str(job_id), permission=kind.permission)
                append(session, actor.take_audit())
        except BaseException:
            service.forget_active(job_id)
            raise
        ctx = JobContext(
            job_id, kind, params, actor, self.sessions, self.settings, self._stopping, *callbacks
        )
        with self._lock:
            self._contexts[job_id] = ctx
        return job, ctx

    # --- running --------------------------------------------------------------------------------

    def _start_threads(self) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < self.workers:
                thread = threading.Thread(
                    target=self._work,
                    args=(self._queue,),
                    name=f"sijill-job-{len(self._threads) + 1}",
                    daemon=True,  # a job a stopping server cannot wait for is left to the sweep
                )
                thread.start()
                self._threads.append(thread)
        self._reporter.start()

    def _work(self, jobs: "queue.Queue[JobContext | None]") -> None:
        while (ctx := jobs.get()) is not None:
            # What the work raised is recorded as the job's end; the thread lives on.
            with contextlib.suppress(BaseException):
                self._execute(ctx)

    def _execute(self, ctx: JobContext, *, foreground: bool = False) -> Any:
        if not foreground:
            if not ctx.claim():
                return None  # ended before it started: cancelled, or the server stopping
            if ctx.cancelled():
                if ctx.cancel_requested:
                    self._end(ctx, CANCELLED)
                else:
                    self._end(ctx, INTERRUPTED, NOT_STARTED)
                return None
            try:
                if not self._mark_running(ctx):
                    return None
            except Exception as error:  # the database, most likely: said, not lost
                self._end(ctx, FAILED, describe(error))
                raise
        try:
            value = ctx.kind.work(ctx, ctx.params)
        except BaseException as error:
            if not isinstance(error, SijillError | KeyboardInterrupt):
                frames = "".join(traceback.format_tb(error.__traceback__))
                # Not the error's message: a database error carries the row's values.
                logger.error(
                    "Job %s (%s) met an unexpected %s\n%s",
                    ctx.job_id,
                    ctx.kind.name,
                    type(error).__name__,
                    frames,
                )
            interrupted = isinstance(error, KeyboardInterrupt)
            self._end(ctx, INTERRUPTED if interrupted else FAILED, describe(error))
            raise
        if not ctx.stopped:
            self._end(ctx, SUCCEEDED)
        elif ctx.cancel_requested:
            self._end(ctx, CANCELLED)
        else:
            self._end(ctx, INTERRUPTED, COMMAND_STOPPED if foreground else SERVER_STOPPED)
        return value

    def _mark_running(self, ctx: JobContext) -> bool:
        now = utcnow()
        with transaction(self.sessions) as session:
            started = session.execute(
                update(Job)
                .where(Job.id == ctx.job_id, Job.state == QUEUED, Job.cancel_requested.is_(False))
                .values(state=RUNNING, started_at=now, heartbeat_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            job = None if started else session.get(Job, ctx.job_id)
        if started:
            return True
        if job is not None and job.state == QUEUED and job.cancel_requested:
            ctx.request_cancel()
            self._end(ctx, CANCELLED)
        else:  # it ended meanwhile: nothing more to do here
            _clean_up(ctx.kind, ctx.params)
            self._forget(ctx)
        return False

    def _end(self, ctx: JobContext, state: str, error: str | None = None) -> None:
        """Record the job's end and its audit record; a failure to record it is logged (the job
        is then found left behind), never raised over the work's own outcome."""
        # Its files go first: once a job shows it has ended, what it leaves is final.
        _clean_up(ctx.kind, ctx.params)
        now = utcnow()
        done, total, stage = ctx.figures()
        try:
            with transaction(self.sessions) as session:
                session.execute(
                    update(Job)
                    .where(Job.id == ctx.job_id)
                    .values(
                        state=state,
                        finished_at=now,
                        heartbeat_at=now,
                        done=done,
                        total=total,
                        stage=stage,
                        outcome=ctx.outcome,
                        error=error,
                        result_path=str(ctx.result_path) if ctx.result_path else None,
                    )
                    .execution_options(synchronize_session=False)
                )
                # Stopped before its end is not failed: what it committed stays.
                outcome = {SUCCEEDED: "ok", CANCELLED: "cancelled", INTERRUPTED: "interrupted"}
                outcome = outcome.get(state, "failed")
                ctx.principal.audit(
                    f"job.{state}", outcome, "job", str(ctx.job_id), permission=ctx.kind.permission
                )
                append(session, ctx.principal.take_audit())
        except Exception as failure:
            logger.error(
                "Could not record the end of job %s (%s)", ctx.job_id, type(failure).__name__
            )
        finally:
            self._forget(ctx)

    def _forget(self, ctx: JobContext) -> None:
        with self._lock:
            self._contexts.pop(ctx.job_id, None)
        service.forget_active(ctx.job_id)

    # --- looking and cancelling -----------------------------------------------------------------

    def status(self, session: Session, principal: Principal, job_id: int) -> Job:
        """The job as the principal may see it (NotFound otherwise), interrupted first if its
        process is gone."""
        job = service.get_visible(session, principal, job_id, "job.read")
        service.settle(session, job, utcnow())
        return job

    def cancel(self, session: Session, principal: Principal, job_id: int) -> Job:
        """Ask a job to stop: a queued job of this process ends cancelled at once; a running
        one at its next checkpoint (in another process: once its reporter reads the flag)."""
        job = service.get_visible(session, principal, job_id, "job.cancel")
        service.settle(session, job, utcnow())
        kind = kinds.find(job.kind)
        permission = kind.permission if kind else None
        if job.state in ENDED:
            principal.audit("job.cancel", "conflict", "job", str(job.id), permission=permission)
            raise Conflict(f"Job {job.id} has already ended: {job.state}")
        job.cancel_requested = True
        principal.audit("job.cancel", "ok", "job", str(job.id), permission=permission)
        with self._lock:
            ctx = self._contexts.get(job.id)
        if ctx is not None:
            ctx.request_cancel()
            if ctx.claim():  # still queued here: it ends now, with this request
                job.state, job.finished_at = CANCELLED, utcnow()
                ctx.principal.audit(
                    f"job.{CANCELLED}", "ok", "job", str(job.id), permission=ctx.kind.permission
                )
                append(session, principal.take_audit() + ctx.principal.take_audit())
                _clean_up(ctx.kind, ctx.params)
                self._forget(ctx)
        session.flush()
        return job

    def _cancelled_elsewhere(self, ctx: JobContext) -> None:
        """Someone asked, through another process, to cancel a job of this one."""
        ctx.request_cancel()
        if ctx.claim():  # still queued: it ends now
            self._end(ctx, CANCELLED)

    def _running_contexts(self) -> list[JobContext]:
        with self._lock:
            return list(self._contexts.values())

    # --- starting and stopping the API ----------------------------------------------------------

    def interrupt_left_behind(self) -> int:
        """At start-up: mark the jobs a previous process left queued or running as
        interrupted (never silently lost); returns how many.

        A database that cannot be reached (or is not migrated yet) does not stop the server
        from starting: it is logged, and each job left behind is still marked when someone
        looks at it (`service.settle`)."""
        now = utcnow()
        auditor = Principal.system("jobs")
        try:
            with transaction(self.sessions) as session:
                jobs = session.scalars(select(Job).where(Job.state.in_(ACTIVE))).all()
                count = sum(
                    service.interrupt(session, job, now, auditor)
                    for job in jobs
                    if service.left_behind(job, now)
                )
                append(session, auditor.take_audit())
        except SQLAlchemyError as failure:
            logger.warning(
                "Could not look for jobs left behind by a stopped process (%s); is the "
                "database reachable and migrated (sijill db upgrade)?",
                type(failure).__name__,
            )
            return 0
        if count:
            logger.warning("%d jobs left behind by a stopped process marked interrupted", count)
        return count

    def shutdown(self) -> None:
        """Stop: queued jobs end interrupted at once, running ones at their next checkpoint,
        waited for up to `shutdown_seconds` (one still running then is left to the next
        start-up's sweep). The runner can be started again (tests run a lifespan twice)."""
        self._stopping.set()
        with self._lock:
            contexts = list(self._contexts.values())
            threads, self._threads = self._threads, []
            jobs = self._queue
        for ctx in contexts:
            if ctx.claim():
                self._end(ctx, INTERRUPTED, NOT_STARTED)
        for _ in threads:
            jobs.put(None)
        deadline = monotonic() + self.shutdown_seconds
        for thread in threads:
            thread.join(max(0.0, deadline - monotonic()))
        self._reporter.stop(max(0.0, deadline - monotonic()))
        with self._lock:
            self._queue = queue.Queue()
            self._stopping = threading.Event()
