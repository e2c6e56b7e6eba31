"""`sijill keys`: the keys that encrypt personal identifiers at rest.

Rotation without downtime: `sijill keys add` (new values go under the new key; running servers
read the key file again when they meet a value under a key they do not know, and switch to the
new active key within a minute), `sijill keys rotate` (re-encrypts every stored value, while the
API keeps serving), `sijill keys retire OLD` (refused while any value still needs OLD).
"""

import typer

from sijill.core.settings import get_settings
from sijill.security.cli_common import (
    Column,
    Output,
    OutputOption,
    acting_user,
    console,
    emit,
    emit_one,
    progress_bar,
)

keys_app = typer.Typer(
    help="Encryption keys of personal identifiers: show, add, rotate, retire.",
    no_args_is_help=True,
)


def require_key_administrator(command: str) -> None:
    """Whoever runs a `sijill keys` command must be a signed-in user allowed to manage keys;
    that they ran it is audited before it starts."""
    from sijill.security.roles import Permission

    with acting_user() as (_, principal):
        principal.require(Permission.KEYS_MANAGE)
        principal.audit(f"keys.{command}", "ok", "keys", None, permission=Permission.KEYS_MANAGE)


@keys_app.command("show")
def show_command(
    usage: bool = typer.Option(
        True, help="also count the stored values under each key (reads the database)"
    ),
    output: OutputOption = Output.table,
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
    columns = [
        Column("key_id", "key id"),
        Column("active", show=lambda active: "yes" if active else ""),
    ]
    if usage:
        columns.append(
            Column("stored_values", "stored values", justify="right", show="{:,}".format)
        )
    rows = [
        {"key_id": kid, "active": kid == keyring.active, "stored_values": counts.pop(kid, 0)}
        for kid in keyring.key_ids
    ]
    emit(rows, columns, output, title=f"Keys in {settings.key_file}")
    for kid, count in sorted(counts.items()):
        console.print(
            f"[red]{count:,} stored values are under key {kid!r}, which the key file does "
            "not hold: they cannot be read[/red]"
        )


@keys_app.command("add")
def add_command(output: OutputOption = Output.table) -> None:
    """Add a fresh encryption key and make it the active one.

    Old keys stay, so everything stored remains readable. Back up the key file again.

    Example: sijill keys add && sijill keys rotate
    """
    require_key_administrator("add")
    from sijill.security.keys.keyring import add_key

    settings = get_settings()
    kid = add_key(settings.key_file)
    emit_one(
        {"key_id": kid, "key_file": str(settings.key_file)},
        output,
        message=f"Key {kid} added to {settings.key_file} and made active. Running servers switch "
        "to it by themselves. Back up the key file now, then run `sijill keys rotate`.",
    )


@keys_app.command("rotate")
def rotate_command(
    batch_rows: int = typer.Option(
        20_000, min=100, help="rows re-encrypted per committed transaction"
    ),
    output: OutputOption = Output.table,
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
    with progress_bar(f"re-encrypting under {keyring.active}", "rows", remaining=True) as update:
        report = rotate(settings.database_url, keyring, update, batch_rows=batch_rows)
    rate = report.total_rows / report.seconds if report.seconds else 0
    by_table = ", ".join(f"{table} {rows:,}" for table, rows in report.rows.items()) or "none"
    after = (
        f"[yellow]{report.left:,} rows were changed under an older key while rotating: "
        "run `sijill keys rotate` again.[/yellow]"
        if report.left
        else "Every stored identifier is under the active key."
    )
    emit_one(
        {
            "rows": report.total_rows,
            "active": report.active,
            "left": report.left,
            "seconds": report.seconds,
        },
        output,
        message=f"{report.total_rows:,} rows re-encrypted under key {report.active} ({by_table}) "
        f"in {report.seconds:.1f} s ({rate:,.0f} rows/s).\n{after}",
    )


@keys_app.command("retire")
def retire_command(
    kid: str = typer.Argument(..., help="the key id to remove, as `sijill keys show` lists it"),
    output: OutputOption = Output.table,
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
    emit_one(
        {"key_id": kid, "key_file": str(settings.key_file)},
        output,
        message=f"Key {kid} removed from {settings.key_file}.",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
