"""What every command shares, so they all behave alike: the user it runs as (and its audited
transactions), and from `sijill.core.cli_output` progress bars for long work, output as a
table, JSON or CSV (`--output`), and one clear line for a user's mistake.

Commands of every stage import this one module; the `sijill` app (`sijill.cli`) only assembles
them.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from sijill.core.cli_output import (
    Column,
    Output,
    OutputOption,
    console,
    emit,
    emit_one,
    fail,
    progress_bar,
)
from sijill.core.db import make_engine, require_current_schema, session_factory, transaction
from sijill.core.settings import Settings, get_settings
from sijill.security.audit.service import append, append_now
from sijill.security.keys.keyring import install_keyring
from sijill.security.principal import Principal
from sijill.security.users.cli_session import cli_principal

__all__ = [
    "Column",
    "Output",
    "OutputOption",
    "acting_user",
    "audited_transaction",
    "console",
    "emit",
    "emit_one",
    "fail",
    "progress_bar",
]


@contextmanager
def acting_user(settings: Settings | None = None) -> Iterator[tuple[sessionmaker, Principal]]:
    """The signed-in user (or service account) running this command. Entries the command
    notes but does not append itself (refusals) are appended when it ends."""
    settings = settings or get_settings()
    install_keyring(settings)
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        try:
            with sessions() as session:
                principal = cli_principal(settings, session)
        except DBAPIError:
            require_current_schema(engine)  # a missing table: say so in one line
            raise
        require_current_schema(engine)
        try:
            yield sessions, principal
        finally:
            entries = principal.take_audit()
            if entries:
                append_now(sessions, entries)
    finally:
        engine.dispose()


@contextmanager
def audited_transaction(sessions: sessionmaker, principal: Principal) -> Iterator[Session]:
    """A write and its audit entries, committed together."""
    with transaction(sessions) as session:
        yield session
        append(session, principal.take_audit())
