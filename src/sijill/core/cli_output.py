"""How every command prints: its result as a table, JSON or CSV (`--output`), progress bars for
long work, and one clear line for a user's mistake.

Messages and progress go to stderr, results (tables, JSON, CSV) to stdout, so a script can pipe
`sijill ... --output json` while a person still sees what happens. Whatever is printed may hold
stored data, so nothing printed can act on the terminal (`core.outgoing.for_terminal`: control
and bidi characters are written visibly, JSON escapes them) and no CSV cell can run as a
spreadsheet formula (`spreadsheet_cell`). Commands import these through
`sijill.security.cli_common` (which adds the acting user); only `sijill synth`, which may not
import security, imports this module directly.
"""

import csv
import enum
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console, JustifyMethod
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from sijill.core.outgoing import for_terminal, json_for_terminal, spreadsheet_cell

console = Console(stderr=True)


class Output(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


OutputOption = Annotated[
    Output,
    typer.Option(
        "--output",
        "-o",
        help="how to print the result: table (for people), json or csv (for scripts)",
    ),
]


@dataclass(frozen=True)
class Column:
    """A result column: `key` names it in JSON and CSV; the table shows `heading` (default: the
    key), justified so, each value through `show`."""

    key: str
    heading: str | None = None
    justify: JustifyMethod = "left"
    show: Callable[[Any], str] = str


def _column(column: str | Column) -> Column:
    return column if isinstance(column, Column) else Column(column)


def _text(value: Any, show: Callable[[Any], str] = str) -> str:
    """A value as a table or CSV cell: nothing for None, a list as `a, b`; nothing in it acts
    on a terminal."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return for_terminal(", ".join(str(item) for item in value))
    return for_terminal(show(value))


def _write_json(value: Any) -> None:
    dumped = json.dumps(value, ensure_ascii=False, default=str)
    sys.stdout.write(json_for_terminal(dumped) + "\n")
    sys.stdout.flush()  # before `serve` or `demo` go on serving


def emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str | Column],
    output: Output = Output.table,
    *,
    title: str | None = None,
) -> None:
    """Print a command's result rows on stdout in the chosen format, columns in this order: a
    table, a JSON array of objects, or CSV with a header row."""
    spec = [_column(column) for column in columns]
    keys = [column.key for column in spec]
    if output is Output.json:
        _write_json([{key: row.get(key) for key in keys} for row in rows])
        return
    if output is Output.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(keys)
        writer.writerows([[spreadsheet_cell(_text(row.get(key))) for key in keys] for row in rows])
        sys.stdout.flush()
        return
    table = Table(title=for_terminal(title) if title else None)
    for column in spec:
        table.add_column(column.heading or column.key, justify=column.justify)
    for row in rows:
        # Text, not markup: a stored "[link=...]" is shown, never made a link.
        table.add_row(*[Text(_text(row.get(column.key), column.show)) for column in spec])
    Console().print(table)


def emit_one(
    result: dict[str, Any],
    output: Output = Output.table,
    *,
    message: str | None = None,
    echo: str | None = None,
    soft_wrap: bool = False,
) -> None:
    """Print a command's single result. For people (`table`): `message` on stderr (rich markup,
    wrapped to the terminal unless `soft_wrap`) and `echo` on stdout (plain, each line whole:
    what a person copies, a password or an anchor). For scripts: the values alone, one JSON
    object or a CSV header and one row."""
    if output is Output.table:
        if message is not None:
            console.print(for_terminal(message, newlines=True), soft_wrap=soft_wrap)
        if echo is not None:
            typer.echo(for_terminal(echo, newlines=True))
    elif output is Output.json:
        _write_json(result)
    else:
        emit([result], list(result), output)


@contextmanager
def progress_bar(
    description: str,
    unit: str | None = None,
    *,
    total: float | None = None,
    remaining: bool = False,
) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr, gone when done; yields `update(done=, total=, description=)`.

    With a `unit` it counts (`1,200/5,000 rows`), without one it shows a percentage of `total`
    (1.0 for work reported as a fraction); `remaining` adds the estimated time left."""
    columns: list[ProgressColumn] = [TextColumn("[bold]{task.description}"), BarColumn()]
    if unit is None:
        columns.append(TaskProgressColumn())
    else:
        columns += [MofNCompleteColumn(), TextColumn(unit)]
    columns.append(TimeElapsedColumn())
    if remaining:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)

        def update(
            done: float | None = None, total: float | None = None, description: str | None = None
        ) -> None:
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
    typer.secho(f"Error: {for_terminal(message, newlines=True)}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)
