"""`sijill keys`: the keys that encrypt personal identifiers at rest.

Rotation without downtime: `sijill keys add` (new values go under the new key; running servers
read the key file again when they meet a value under a key they do not know, and switch to the
new active key within a minute), `sijill keys rotate` (re-encrypts every stored value, while the
API keeps serving), `sijill keys retire OLD` (refused while any value still needs OLD).
"""

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from sijill.core.settings import get_settings

console = Console(stderr=True)
keys_app = typer.Typer(
    help="Encryption keys of personal identifiers: show, add, rotate, retire.",
    no_args_is_help=True,
)


def require_key_administrator(command: str) -> None:
    """Whoever runs a `sijill keys` command must be a signed-in user allowed to manage keys;
    that they ran it is audited before it starts."""
    from sijill.security.cli_common import acting_user
    from sijill.security.roles import Permission

    with acting_user() as (_, principal):
        principal.require(Permission.KEYS_MANAGE)
        principal.audit(f"keys.{command}", "ok", "keys", None, permission=Permission.KEYS_MANAGE)


@keys_app.command("show")
def show_command(
    usage: bool = typer.Option(
        True, help="also count the stored values under each key (reads the database)"
    ),
) -> None:
    """List the key ids, which one is active and how many stored values each encrypts.

    Never prints key material.

    Example: sijill keys show --no-usage
    """
    require_key_administrator("show")
    from sijill.security.keys.keyring import Keyring

    settings = get_settings()
    keyring = Keyring.load(settings.key_file)
    counts: dict[str, int] = {}
    if usage:
        from sijill.core.db import upgrade
        from sijill.security.keys.rotation import usage as key_usage

        upgrade(settings.database_url)
        counts = key_usage(settings.database_url)
    table = Table(title=f"Keys in {settings.key_file}")
    table.add_column("key id")
    table.add_column("active")
    if usage:
        table.add_column("stored values", justify="right")
    for kid in keyring.key_ids:
        row = [kid, "yes" if kid == keyring.active else ""]
        if usage:
            row.append(f"{counts.pop(kid, 0):,}")
        table.add_row(*row)
    Console().print(table)
    for kid, count in sorted(counts.items()):
        console.print(
            f"[red]{count:,} stored values are under key {kid!r}, which the key file does "
            "not hold: they cannot be read[/red]"
        )


@keys_app.command("add")
def add_command() -> None:
    """Add a fresh encryption key and make it the active one.

    Old keys stay, so everything stored remains readable. Back up the key file again.

    Example: sijill keys add && sijill keys rotate
    """
    require_key_administrator("add")
    from sijill.security.keys.keyring import add_key

    settings = get_settings()
    kid = add_key(settings.key_file)
    console.print(
        f"Key {kid} added to {settings.key_file} and made active. Running servers switch to it "
        "by themselves. Back up the key file now, then run `sijill keys rotate`."
    )


@keys_app.command("rotate")
def rotate_command(
    batch_rows: int = typer.Option(
        20_000, min=100, help="rows re-encrypted per committed transaction"
    ),
) -> None:
    """Re-encrypt every stored identifier that is not under the active key.

    Runs while the API serves; run it again after an interruption to continue.

    Example: SIJILL_DATABASE_URL=postgresql+psycopg://user:pw@host/db sijill keys rotate
    """
    require_key_administrator("rotate")
    from sijill.core.db import upgrade
    from sijill.security.keys.keyring import Keyring
    from sijill.security.keys.rotation import rotate

    settings = get_settings()
    upgrade(settings.database_url)
    keyring = Keyring.load(settings.key_file)
    with Progress(
        TextColumn(f"[bold]re-encrypting under {keyring.active}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("rotate", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = rotate(settings.database_url, keyring, progress, batch_rows=batch_rows)
    rate = report.total_rows / report.seconds if report.seconds else 0
    by_table = ", ".join(f"{table} {rows:,}" for table, rows in report.rows.items()) or "none"
    console.print(
        f"{report.total_rows:,} rows re-encrypted under key {report.active} ({by_table}) in "
        f"{report.seconds:.1f} s ({rate:,.0f} rows/s)."
    )
    if report.left:
        console.print(
            f"[yellow]{report.left:,} rows were changed under an older key while rotating: "
            "run `sijill keys rotate` again.[/yellow]"
        )
    else:
        console.print("Every stored identifier is under the active key.")


@keys_app.command("retire")
def retire_command(
    kid: str = typer.Argument(..., help="the key id to remove, as `sijill keys show` lists it"),
) -> None:
    """Remove a key from the key file, refused while any stored value still uses it.

    Also refused for a minute after the key file changed: servers need that long to notice.
    A database backup taken before this still needs the key: keep a key file with it.

    Example: sijill keys retire k1
    """
    require_key_administrator("retire")
    from sijill.core.db import upgrade
    from sijill.security.keys.rotation import retire_key

    settings = get_settings()
    upgrade(settings.database_url)
    retire_key(settings.database_url, settings.key_file, kid)
    console.print(f"Key {kid} removed from {settings.key_file}.")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
