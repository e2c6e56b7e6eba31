"""What every command shares, so they all behave alike: the user it runs as (and its audited
transactions), progress bars for long work, output as a table, JSON or CSV (`--output`), and
one clear line for a user's mistake.

Commands of every stage import this module; the `sijill` app (`sijill.cli`) only assembles
them.
"""

import csv
import enum
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from sijill.core.db import make_engine, session_factory, transaction
from sijill.core.settings import Settings, get_settings
from sijill.security.audit.service import append, append_now
from sijill.security.cli_auth import cli_principal
from sijill.security.keys.keyring import install_keyring
from sijill.security.principal import Principal

# Messages and progress go to stderr; results (tables, JSON, CSV) to stdout, for pipes.
console = Console(stderr=True)


@contextmanager
def acting_user(settings: Settings | None = None) -> Iterator[tuple[sessionmaker, Principal]]:
    """The signed-in user (or service account) running this command. Entries the command
    notes but does not append itself (refusals) are appended when it ends."""
    settings = settings or get_settings()
    install_keyring(settings)
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        with sessions() as session:
            principal = cli_principal(settings, session)
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


class Output(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


OutputOption = Annotated[
    Output,
    typer.Option("--output", "-o", help="how to print the result: table, json or csv"),
]


def emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    output: Output = Output.table,
    *,
    title: str | None = None,
) -> None:
    """Print a command's result rows on stdout in the chosen format, columns in this order."""
    if output is Output.json:
        sys.stdout.write(
            json.dumps(
                [{c: row.get(c) for c in columns} for row in rows], ensure_ascii=False, default=str
            )
            + "\n"
        )
        return
    if output is Output.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(
            [["" if row.get(c) is None else row.get(c) for c in columns] for row in rows]
        )
        return
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*["" if row.get(c) is None else str(row.get(c)) for c in columns])
    Console().print(table)


def emit_one(result: dict[str, Any], output: Output = Output.table, *, message: str) -> None:
    """Print a command's single result: a sentence for people, or the values for scripts."""
    if output is Output.table:
        console.print(message)
    else:
        emit([result], list(result), output)


@contextmanager
def progress_bar(description: str, unit: str) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr; yields `update(done=, total=, description=)`."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int | None = None, total: int | None = None, description=None) -> None:
            changes: dict[str, Any] = {}
            if done is not None:
                changes["completed"] = done
            if total is not None:
                changes["total"] = total
            if description is not None:
                changes["description"] = description
            bar.update(task, **changes)

        yield update


def fail(message: str, code: int = 2) -> typer.Exit:
    """One clear line on stderr and a non-zero exit: `raise fail("...")`."""
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)
