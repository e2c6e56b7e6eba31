"""Database engine, sessions and migrations. Nothing is created at import time."""

from collections import namedtuple
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
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


class Rows(list):
    """A read's rows, answering what the reads ask of SQLAlchemy's Result."""

    def all(self) -> "Rows":
        return self

    def first(self) -> Any:
        return self[0] if self else None

    def scalar(self) -> Any:
        return self[0][0] if self else None


@dataclass
class _Plan:
    """A statement compiled once for psycopg, when nothing of it is rendered per call: its
    rows skip SQLAlchemy's result layer."""

    statement: Executable  # kept alive: plans are found by its id
    sql: str
    # The values bound in the statement itself (a LIMIT, a JSON key), converted for the driver
    # once; and the conversions of the values a call binds, by name.
    defaults: dict[str, Any]
    binds: dict[str, Any]
    required: frozenset[str]  # the values a call must bind (SQLAlchemy says which are missing)
    row: type
    types: tuple[Any, ...]
    # Each column's conversion, known once the database has said what type it answers (as
    # SQLAlchemy decides it): None until the first read, then None for a value kept as is.
    converters: tuple[Any, ...] | None = None

    def rows(self, cursor: Any, dialect: Any) -> "Rows":
        found = cursor.fetchall()
        if self.converters is None:  # (a cursor builds its description anew when asked)
            self.converters = tuple(
                column_type._cached_result_processor(dialect, column.type_code)
                for column_type, column in zip(self.types, cursor.description, strict=True)
            )
        make = self.row._make
        if not any(self.converters):
            return Rows(map(make, found))
        converters = self.converters
        return Rows(
            make(
                convert(value) if convert else value
                for convert, value in zip(converters, row, strict=True)
            )
            for row in found
        )


# By statement: the reads that use this path are made once, at import. Bounded all the same,
# for a caller that builds its statement per call.
_plans: dict[int, _Plan | None] = {}
_PLANS_KEPT = 1024


def _plan(statement: Executable, dialect: Any) -> _Plan | None:
    key = id(statement)
    if key in _plans:
        found = _plans[key]
        if found is None or found.statement is statement:
            return found
    compiled = statement.compile(dialect=dialect)
    columns = compiled._result_columns
    plan = None
    if columns and not (compiled.escaped_bind_names or "POSTCOMPILE" in compiled.string):
        try:
            row = namedtuple("Row", [column.keyname for column in columns])
        except ValueError:  # names a tuple cannot have (repeated ones)
            row = None
        if row is not None:
            defaults = compiled.construct_params(_check=False)
            binds = dict(compiled._bind_processors)
            for name, convert in binds.items():
                if defaults.get(name) is not None:
                    defaults[name] = convert(defaults[name])
            required = frozenset(name for name, bind in compiled.binds.items() if bind.required)
            types = tuple(column.type for column in columns)
            plan = _Plan(statement, compiled.string, defaults, binds, required, row, types)
    if len(_plans) >= _PLANS_KEPT:
        _plans.clear()
    _plans[key] = plan
    return plan


def execute_read(
    session: Session, statement: Executable, parameters: Mapping[str, Any] | None = None
) -> Result | Rows:
    """A Core statement that only reads, in the session's transaction, on its connection,
    after the session's pending changes are flushed (as `Session.execute` would); its rows
    answer `all()`, `first()`, `scalar()` and iteration, by name or position.

    The session's own execute path (ORM compile state, its events) cost a third of a small
    indexed read's time, more than the database took to answer it: the household page makes
    ten. On PostgreSQL a statement rendered the same for every call goes to psycopg directly,
    compiled once, its values converted as SQLAlchemy would: SQLAlchemy's result layer (a
    cursor description and row processing on each call) cost half as much again as psycopg;
    it is the way taken while anything listens to the engine's statements. Not for ORM
    entities, nor for a write (the session's events would not see it)."""
    if session.autoflush:
        session.flush()  # nothing to do, at once, when nothing is pending
    connection = session.connection()
    plan = _plan(statement, connection.dialect) if connection.dialect.name == "postgresql" else None
    # Statements someone listens for (the engine's cursor events) go the way that emits them.
    dispatch = connection.dispatch
    if (
        plan is None
        or dispatch.before_cursor_execute
        or dispatch.after_cursor_execute
        or not plan.required <= (parameters or {}).keys()
    ):
        return connection.execute(statement, parameters)
    values = plan.defaults
    if parameters:
        values = {**values, **parameters}
        if plan.binds:
            for name in plan.binds.keys() & parameters.keys():
                values[name] = plan.binds[name](parameters[name])
    with connection.connection.driver_connection.cursor() as cursor:
        cursor.execute(plan.sql, values)
        return plan.rows(cursor, connection.dialect)


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
