"""The tamper-evident audit trail: who did what to which record, when, why and with what outcome.

Each record carries the hash of the one before it (`audit_models`); `verify` (`audit_verify`)
walks the chain and names the first record that was altered, deleted or inserted.

Ways in: `append(session, entries)` in the caller's transaction, so a write and its audit
commit or roll back together; `append_now(sessions, entries)` in a transaction of its own (the
CLI; a refused request); `append_on_cursor` in a raw connection's (an import's batch);
`AuditWriter.record(entries)` for the async read path, concurrent requests sharing a commit.

On PostgreSQL they call `audit_append` (migrations 0005, 0009), which extends the chain inside
the database; on SQLite the records are hashed here. Both refuse (AuditChainBroken) to extend
a chain known to be broken (`sijill.security.audit.chain`).

Audit records hold no personal data (no names, national IDs or phone numbers): records are
named by registry ID.
"""

import asyncio
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, fields

import orjson
import psycopg
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from sijill.core import clock
from sijill.core.db import transaction
from sijill.core.errors import SijillError
from sijill.core.i18n import N_
from sijill.security.audit.chain import (
    GATE_SQL,
    QUARANTINED_ACTIONS,
    AuditChainBroken,
    is_broken_error,
    quarantine,
)
from sijill.security.audit.models import GENESIS_HASH, AuditRecord, record_hash
from sijill.security.audit.verify import VerifyReport, verify

__all__ = [
    "GENESIS_HASH",
    "OUTCOMES",
    "AuditChainBroken",
    "AuditEntry",
    "AuditFailed",
    "AuditWriter",
    "VerifyReport",
    "append",
    "append_now",
    "latest",
    "verify",
]

OUTCOMES = frozenset(
    {"ok", "denied", "not_found", "refused_consent", "conflict", "failed", "invalid"}
    # Long work stopped before its end (Ctrl-C, a stopping server, a user's cancellation):
    # what it committed stays, so it did not fail.
    | {"interrupted", "cancelled"}
)


@dataclass(frozen=True)
class AuditEntry:
    actor: str  # user name, or "system:<what>" for the installer/demo
    role: str | None  # the role(s) the action was allowed by, e.g. "registrar"
    action: str  # e.g. "household.read", "household.register", "auth.login"
    outcome: str  # one of OUTCOMES
    record_type: str | None = None  # "household", "person", "user", "export", ...
    record_id: str | None = None  # a registry ID, never a name or national ID
    purpose: str | None = None
    request_id: str | None = None


class AuditFailed(SijillError):
    """The audit record could not be committed, so the action it records must not succeed."""

    status = 503
    title = N_("Service unavailable")


# Some fields carry what a client sent (the user name of a failed sign-in, a request ID), so
# hostile text must be recorded, not refused: control characters (the hash's field separator
# among them) and lone surrogates, which neither UTF-8 nor PostgreSQL accepts, are written as
# visible escapes, and text beyond a column's length is cut with an ellipsis.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _clean(value: str, limit: int) -> str:
    value = _UNPRINTABLE.sub(_escape, value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


_ENTRY_FIELDS = tuple(f.name for f in fields(AuditEntry))
_QUARANTINED = ("at", *_ENTRY_FIELDS)
_LIMITS = {name: AuditRecord.__table__.c[name].type.length for name in _ENTRY_FIELDS}
_REQUIRED = ("actor", "action", "outcome")

# Plain SQL with :named parameters: run through a session or a raw DBAPI cursor alike.
_ADVANCE_HEAD = "UPDATE audit_head SET seq = seq + :n WHERE id = 1 RETURNING seq, hash"
_SET_HEAD_HASH = "UPDATE audit_head SET hash = :hash WHERE id = 1"
_COLUMNS = [column.name for column in AuditRecord.__table__.columns]
_INSERT = "INSERT INTO audit_record ({}) VALUES ({})".format(
    ", ".join(_COLUMNS), ", ".join(f":{name}" for name in _COLUMNS)
)

# PostgreSQL appends in the database (migration 0005): one round trip, and the head's row lock
# is held for the function and the commit, not across round trips while others queue for it.
_APPEND_PSYCOPG = "SELECT audit_append(%s::json)"
_APPEND_IN_DATABASE = text("SELECT audit_append(CAST(:batch AS json))")


def timestamp() -> str:
    """Now, as the exact text that is stored and hashed (identical on every backend)."""
    return clock.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _checked(entry: AuditEntry, at: str) -> dict[str, str | None]:
    fields: dict[str, str | None] = {"at": at}
    for name in _ENTRY_FIELDS:
        value = getattr(entry, name)
        if value is None:
            if name in _REQUIRED:
                raise ValueError(f"audit entry without {name}: {entry!r}")
        elif not isinstance(value, str):
            raise ValueError(f"audit entry {name} must be text, not {type(value).__name__}")
        else:
            value = _clean(value, _LIMITS[name])
        fields[name] = value
    if entry.outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {entry.outcome!r}; one of {sorted(OUTCOMES)}")
    return fields


def _stamped(entries: Sequence[AuditEntry], at: str | None = None) -> list[dict]:
    at = at or timestamp()
    return [_checked(entry, at) for entry in entries]


def _batch(rows: list[dict]) -> str:
    return orjson.dumps(rows).decode()


def _append_rows(session: Session, rows: list[dict]) -> None:
    if not rows:
        return
    try:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(_APPEND_IN_DATABASE, {"batch": _batch(rows)})
        else:
            _append_hashed(lambda sql, params: session.execute(text(sql), params), rows)
    except DBAPIError as error:
        if is_broken_error(error):
            raise AuditChainBroken() from None
        raise


def _append_hashed(execute, rows: list[dict], *, gate: bool = True) -> int:
    """Hash and insert here (SQLite; a repair on either backend), through `execute(statement,
    parameters)` of a session or connection. `gate`: refuse (AuditChainBroken) to extend a
    chain known to be broken, as migration 0009's audit_append does on PostgreSQL."""
    # Advancing the head first takes the write lock (SQLite) before anything else, so
    # concurrent appenders queue here and each sees the last hash.
    head = execute(_ADVANCE_HEAD, {"n": len(rows)}).fetchone()
    if head is None:
        raise AuditChainBroken("The audit chain has no head row: run `sijill audit verify`.")
    last_seq, prev_hash = head
    seq = last_seq - len(rows)
    gate_params = {"seq": seq, "hash": prev_hash, "genesis": GENESIS_HASH}
    if gate and execute(GATE_SQL, gate_params).fetchone()[0]:
        raise AuditChainBroken()
    for row in rows:
        seq += 1
        row["seq"] = seq
        row["prev_hash"] = prev_hash
        row["hash"] = prev_hash = record_hash(seq, row)
    execute(_INSERT, rows)
    execute(_SET_HEAD_HASH, {"hash": prev_hash})
    return seq


def _on_cursor(cursor, sql: str, params):
    return (cursor.executemany if isinstance(params, list) else cursor.execute)(sql, params)


def append_on_cursor(cursor, dialect: str, entries: Sequence[AuditEntry]) -> None:
    """Append in the transaction of a raw DBAPI cursor's connection (the importer's writer,
    so that a batch and its record commit together)."""
    rows = _stamped(entries)
    try:
        if dialect == "postgresql":
            cursor.execute(_APPEND_PSYCOPG, (_batch(rows),))
        elif rows:
            _append_hashed(lambda sql, params: _on_cursor(cursor, sql, params), rows)
    except Exception as error:
        if is_broken_error(error):
            raise AuditChainBroken() from None
        raise


def append(session: Session, entries: Sequence[AuditEntry]) -> None:
    """Append in the caller's transaction (so a write and its audit commit together).

    Call it last, just before the commit: from here to the commit this transaction holds the
    chain's head, and every other audited write waits for it (taking the head before other
    rows' locks would also invite deadlocks).
    """
    _append_rows(session, _stamped(entries))


def append_recorded(session: Session, recorded: Sequence[tuple[str, AuditEntry]]) -> None:
    """Append entries made earlier, each with the time it was made (the quarantine's)."""
    _append_rows(session, [_checked(entry, at) for at, entry in recorded])


def append_unchecked(session: Session, entries: Sequence[AuditEntry]) -> int:
    """A repair's own record, appended whatever state the chain is in (the repair has just
    re-anchored it); hashed here on both backends. Returns its seq."""
    return _append_hashed(
        lambda sql, params: session.execute(text(sql), params), _stamped(entries), gate=False
    )


def append_now(sessions: sessionmaker, entries: Sequence[AuditEntry]) -> None:
    """Append in a transaction of its own, committed before returning. While the chain is
    broken, the records of signing in and of the audit commands go to the quarantine;
    anything else is refused (AuditChainBroken)."""
    rows = _stamped(entries)
    try:
        _commit(sessions, rows)
    except AuditChainBroken:
        if not rows or any(row["action"] not in QUARANTINED_ACTIONS for row in rows):
            raise
        quarantine(sessions, [{key: row[key] for key in _QUARANTINED} for row in rows])


def _commit(sessions: sessionmaker, rows: list[dict], *, wait_for_flush: bool = True) -> None:
    if rows:
        with transaction(sessions) as session:
            if not wait_for_flush and session.get_bind().dialect.name == "postgresql":
                # This transaction only: committed and visible at once, written to disk by
                # the WAL writer within a fraction of a second rather than before COMMIT
                # returns. Only a crash of the database server in that window loses it.
                session.execute(text("SET LOCAL synchronous_commit TO off"))
            _append_rows(session, rows)


def latest(
    session: Session,
    *,
    actor: str | None = None,
    record_id: str | None = None,
    since: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[AuditRecord]:
    """The newest records first; `since` is a timestamp in the stored form (`timestamp()`);
    `before` a sequence number, for the next page of a long log."""
    query = select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditRecord.seq < before)
    for column, value in ((AuditRecord.actor, actor), (AuditRecord.record_id, record_id)):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        # The stored text sorts as the time it spells: fixed width, UTC, zero-padded.
        query = query.where(AuditRecord.at >= since)
    return list(session.scalars(query))


class _Lane:
    """One event loop's queue, the task that drains it and, on PostgreSQL, its connection."""

    def __init__(self, writer: "AuditWriter") -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.connection: psycopg.AsyncConnection | None = None
        self.task = asyncio.get_running_loop().create_task(writer._consume(self))


class AuditWriter:
    """Group commit for the async read path: `await writer.record(entries)` returns once the
    entries are committed; callers arriving while a commit runs share the next one.

    On PostgreSQL each event loop appends through an asynchronous connection of its own, on
    the loop itself: one `audit_append` call in autocommit per batch, no worker thread. On
    SQLite a worker thread commits through the session factory.

    A failed commit fails every caller in it (AuditFailed), so no read whose audit was lost is
    answered. A caller that is cancelled still has its entries written.
    """

    def __init__(
        self, sessions: sessionmaker, max_batch: int = 1_000, *, wait_for_flush: bool = True
    ) -> None:
        self._sessions = sessions
        self._max_batch = max_batch
        self._wait_for_flush = wait_for_flush
        self._lanes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._conninfo = _libpq_conninfo(sessions)
        self.transactions = 0  # commits made, for tests and benchmarks

    async def record(self, entries: Sequence[AuditEntry]) -> None:
        rows = _stamped(entries)  # a bad entry fails its own caller, not the batch
        if not rows:
            return
        loop = asyncio.get_running_loop()
        lane = self._lanes.get(loop)
        if lane is None or lane.task.done():
            lane = self._lanes[loop] = _Lane(self)
        done = loop.create_future()
        lane.queue.put_nowait((rows, done))
        await done

    async def close(self) -> None:
        """Commit what is queued on this event loop, stop its consumer, close its connection."""
        lane = self._lanes.pop(asyncio.get_running_loop(), None)
        if lane is None:
            return
        if not lane.task.done():
            lane.queue.put_nowait(None)
            await lane.task
        if lane.connection is not None:
            await lane.connection.close()

    async def _consume(self, lane: _Lane) -> None:
        queue = lane.queue
        stopping = False
        while not stopping:
            item = await queue.get()
            if item is None:
                break
            batch = [item]
            size = len(item[0])
            while not queue.empty() and size < self._max_batch:
                item = queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                size += len(item[0])
            await self._flush(lane, batch)

    async def _flush(self, lane: _Lane, batch: list[tuple[list[dict], asyncio.Future]]) -> None:
        rows = [row for entries, _ in batch for row in entries]
        try:
            if self._conninfo is None:
                await asyncio.to_thread(
                    _commit, self._sessions, rows, wait_for_flush=self._wait_for_flush
                )
            else:
                await self._append_on_loop(lane, rows)
        except Exception as error:  # every caller must learn its audit was not written
            broken = isinstance(error, AuditChainBroken) or is_broken_error(error)
            for _, done in batch:
                if not done.done():
                    failure = (
                        AuditChainBroken()
                        if broken
                        else AuditFailed("The audit record could not be written.")
                    )
                    failure.__cause__ = error
                    done.set_exception(failure)
            return
        self.transactions += 1
        for _, done in batch:
            if not done.done():
                done.set_result(None)

    async def _append_on_loop(self, lane: _Lane, rows: list[dict]) -> None:
        if lane.connection is None or lane.connection.closed:
            lane.connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            if not self._wait_for_flush:
                # This connection only: a batch is committed and visible at once, and written
                # to disk by the WAL writer within a fraction of a second rather than before
                # COMMIT returns. Only a crash of the database server in that window loses it.
                await lane.connection.execute("SET synchronous_commit TO off")
        try:
            await lane.connection.execute(_APPEND_PSYCOPG, (_batch(rows),))
        except BaseException:
            # Whatever state the connection is in, the next batch starts on a fresh one.
            connection, lane.connection = lane.connection, None
            await connection.close()
            raise


def _libpq_conninfo(sessions: sessionmaker) -> str | None:
    """The PostgreSQL connection string of the factory's engine; None for other databases."""
    bind = sessions.kw.get("bind")
    if bind is None or bind.dialect.name != "postgresql":
        return None
    return bind.url.set(drivername="postgresql").render_as_string(hide_password=False)
