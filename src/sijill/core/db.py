"""Database engine, sessions and migrations. Nothing is created at import time."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import JSON, DateTime, Engine, Executable, Result, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class Base(DeclarativeBase):
    pass


# Column types every stage's tables share.
Json = JSON().with_variant(JSONB(), "postgresql")
Timestamp = DateTime(timezone=True)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _tune_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while an import writes; NORMAL sync is durable at each commit in WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-262144")
    cursor.close()


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def execute_read(
    session: Session, statement: Executable, parameters: Mapping[str, Any] | None = None
) -> Result:
    """A Core statement that only reads, in the session's transaction, on its connection,
    after the session's pending changes are flushed (as `Session.execute` would).

    The session's own execute path (ORM compile state, its events) cost a third of a small
    indexed read's time, more than the database took to answer it: the household page makes
    ten. Not for ORM entities, nor for a write (the session's events would not see it)."""
    if session.autoflush:
        session.flush()  # nothing to do, at once, when nothing is pending
    return session.connection().execute(statement, parameters)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: committed whole or not at all."""
    with factory() as session, session.begin():
        yield session


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def require_current_schema(engine: Engine) -> None:
    """One clear line, not a traceback from a missing table, when the database is behind the
    code (the code was updated but `sijill db upgrade` not run yet)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from sijill.core.errors import SijillError

    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        found = f"at revision {current}" if current else "not created"
        raise SijillError(
            f"The registry database is {found}; this version of Sijill needs revision {head}: "
            "run `sijill db upgrade` first"
        )


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)
