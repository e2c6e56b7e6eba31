"""What a job's work function gets (`JobContext`): its principal, database, settings and
parameters, and the means to report progress, notice cancellation and leave its outcome.

Progress is kept in memory; the runner's reporter writes it to the job's row about once a
second, so the work never waits for the database to say how far it is (on SQLite that wait
would be behind the import's own writes).
"""

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from sijill.core.settings import Settings
from sijill.jobs.kinds import JobKind
from sijill.security.principal import Principal


class JobContext:
    """What a job's work function gets: its principal, database, settings and parameters,
    and the means to report progress, notice cancellation and leave its outcome."""

    def __init__(
        self,
        job_id: int,
        kind: JobKind,
        params: Any,
        principal: Principal,
        sessions: sessionmaker[Session],
        settings: Settings,
        stopping: threading.Event,
        on_progress=None,
        on_stage=None,
    ):
        self.job_id = job_id
        self.kind = kind
        self.params = params
        self.principal = principal
        self.sessions = sessions
        self.settings = settings
        self.outcome: dict[str, Any] | None = None
        self.result_path: Path | None = None
        self._stopping = stopping
        self._cancel = threading.Event()
        self._on_progress = on_progress
        self._on_stage = on_stage
        self._lock = threading.Lock()
        self._claimed = False
        self._stopped_early = False
        self._changed = False
        self._done, self._total, self._stage = 0, None, None

    @property
    def engine(self) -> Engine:
        return self.sessions.kw["bind"]

    # --- for the work -------------------------------------------------------------------------

    def progress(self, done: int, total: int | None = None) -> None:
        with self._lock:
            self._done, self._total, self._changed = done, total, True
        if self._on_progress is not None:
            self._on_progress(done, total)

    def stage(self, text: str) -> None:
        with self._lock:
            self._stage, self._changed = text[:200], True
        if self._on_stage is not None:
            self._on_stage(text)

    def cancelled(self) -> bool:
        """Whether to stop at this checkpoint: a user asked, or the server is stopping."""
        return self._cancel.is_set() or self._stopping.is_set()

    def stopped_early(self) -> None:
        """The work stopped at a checkpoint because `cancelled()` said so (or Ctrl-C)."""
        self._stopped_early = True

    # --- for the runner -----------------------------------------------------------------------

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def request_cancel(self) -> None:
        self._cancel.set()

    @property
    def stopped(self) -> bool:
        return self._stopped_early

    def claim(self) -> bool:
        """Whoever claims a queued job first runs or ends it: a worker thread, or a
        cancellation or shutdown that ends it before it started."""
        with self._lock:
            claimed, self._claimed = self._claimed, True
        return not claimed

    @property
    def claimed(self) -> bool:
        return self._claimed

    def figures(self) -> tuple[int, int | None, str | None]:
        with self._lock:
            return self._done, self._total, self._stage

    def take_changes(self) -> tuple[int, int | None, str | None] | None:
        with self._lock:
            if not self._changed:
                return None
            self._changed = False
            return self._done, self._total, self._stage
