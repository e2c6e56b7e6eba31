"""The `job` rows: creating them, who may see them, their public form, and telling a job whose
process is gone from one that is still running.

A job is seen by the user who started it and by national administrators; to anyone else it
answers exactly as a job that does not exist (404, same words).
"""

import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session

from sijill.core.errors import FieldError, InvalidInput, NotFound
from sijill.core.ids import parse_id
from sijill.jobs.models import ACTIVE, INTERRUPTED, Job
from sijill.jobs.schemas import JobPublic
from sijill.security.audit.service import append
from sijill.security.principal import Principal

# A running process touches its jobs' heartbeat this often; a job whose process has not been
# heard of for STALE_AFTER is taken as interrupted (its process died on another machine, or
# its process ID was reused).
HEARTBEAT_SECONDS = 30.0
STALE_AFTER = timedelta(seconds=4 * HEARTBEAT_SECONDS)
LEFT_BEHIND = (
    "the server or command running the job stopped before it ended; what was committed "
    "stays: start it again to continue"
)


# The jobs this process runs (queued or running), whichever runner started them: never taken
# for jobs a previous process left behind. Each with the event set once its end is recorded.
_active_here: dict[int, threading.Event] = {}
_active_lock = threading.Lock()


def mark_active(job_id: int) -> None:
    with _active_lock:
        _active_here[job_id] = threading.Event()


def forget_active(job_id: int) -> None:
    with _active_lock:
        ended = _active_here.pop(job_id, None)
    if ended is not None:
        ended.set()


def active_here() -> frozenset[int]:
    with _active_lock:
        return frozenset(_active_here)


def wait_for_end(job_id: int, timeout: float | None = None) -> bool:
    """Wait until a job this process runs has ended and its end is recorded (True), or for
    `timeout` seconds (False); a job it does not run (ended, or another process's) is not
    waited for."""
    with _active_lock:
        ended = _active_here.get(job_id)
    return ended is None or ended.wait(timeout)


def this_process() -> str:
    """Who runs a job: host and process ID."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}"


def parse_job_id(text: str) -> int:
    try:
        return parse_id("job", text)
    except InvalidInput as error:
        raise InvalidInput(error.detail, [FieldError("job_id", error.detail)]) from None


def create(
    session: Session, job_id: int, kind: str, started_by: str, state: str, now: datetime
) -> Job:
    job = Job(
        id=job_id,
        kind=kind,
        state=state,
        started_by=started_by[:64],
        created_at=now,
        started_at=now if state != "queued" else None,
        done=0,
        cancel_requested=False,
        runner=this_process(),
        heartbeat_at=now,
    )
    session.add(job)
    session.flush()
    return job


def may_see(principal: Principal, job: Job) -> bool:
    if job.started_by == principal.username:
        return True
    return any(g.role == "administrator" and g.area_id is None for g in principal.grants)


def get_visible(session: Session, principal: Principal, job_id: int, action: str) -> Job:
    """The job, if the principal may see it; otherwise NotFound, audited as `action`."""
    job = session.get(Job, job_id)
    if job is None or not may_see(principal, job):
        principal.audit(action, "not_found", "job", str(job_id))
        raise NotFound(f"There is no job {job_id}")
    return job


def public(job: Job, work_dir: Path) -> JobPublic:
    return JobPublic(
        job_id=str(job.id),
        kind=job.kind,
        state=job.state,
        started_by=job.started_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        done=job.done,
        total=job.total,
        stage=job.stage,
        outcome=job.outcome,
        error=job.error,
        cancel_requested=job.cancel_requested,
        rejects=f"/jobs/{job.id}/rejects" if result_file(job, work_dir) else None,
    )


def result_file(job: Job, work_dir: Path) -> Path | None:
    """The job's result file, if it is still there and inside the work folder: a command's
    rejects file lives wherever its user put it, and the API serves none of those."""
    if not job.result_path:
        return None
    path = Path(job.result_path).resolve()
    if not path.is_relative_to(work_dir.resolve()) or not path.is_file():
        return None
    return path


def rejects_file(principal: Principal, job: Job, work_dir: Path) -> Path:
    """The rows a job rejected, for its viewer to download (the API's route and the job's
    page); NotFound when there are none. Reading them is audited: they hold what the file
    said of people."""
    path = result_file(job, work_dir)
    if path is None:
        principal.audit("job.rejects", "not_found", "job", str(job.id))
        raise NotFound(f"Job {job.id} has no rejects file to download")
    principal.audit("job.rejects", "ok", "job", str(job.id))
    return path


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


def left_behind(job: Job, now: datetime) -> bool:
    """Whether a queued or running job's process is gone: a process of this machine that no
    longer exists (or this very process, which does not run it: the process before it had the
    same ID), or a process not heard of for STALE_AFTER."""
    if job.state not in ACTIVE or job.id in active_here():
        return False
    host, _, pid = job.runner.rpartition(":")
    here = host == socket.gethostname()[:100] and pid.isdigit()
    if here and (int(pid) == os.getpid() or not _alive(int(pid))):
        return True
    last_sign = job.heartbeat_at or job.started_at or job.created_at
    return now - _aware(last_sign) > STALE_AFTER


def interrupt(session: Session, job: Job, now: datetime, auditor: Principal) -> bool:
    """Mark a job whose process is gone as interrupted, unless it ended meanwhile; the
    `auditor` (a system principal) notes it for the caller's transaction."""
    ended = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.state.in_(ACTIVE))
        .values(state=INTERRUPTED, finished_at=now, error=LEFT_BEHIND)
        .execution_options(synchronize_session=False)
    )
    session.refresh(job)
    if not ended.rowcount:
        return False
    auditor.audit(f"job.{INTERRUPTED}", "interrupted", "job", str(job.id))
    return True


def settle(session: Session, job: Job, now: datetime) -> None:
    """A job whose process is gone is interrupted, as the next start of the API would find:
    said as soon as someone looks at it (its process may have been on another machine)."""
    if left_behind(job, now):
        auditor = Principal.system("jobs")
        if interrupt(session, job, now, auditor):
            append(session, auditor.take_audit())
