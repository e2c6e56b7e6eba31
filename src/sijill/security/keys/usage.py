"""Which keys the registry's stored values are encrypted under, known without reading them.

A ciphertext names its key only in its own prefix, and finding every key id in use that way
reads every person row (seconds to minutes on a national registry). So the writers keep a small
table, `key_in_use`, of the ids that encrypt stored values: a writer adds the id it encrypts
under in the same transaction as the values (`KEY_IN_USE_INSERT`, `record_key_use`), rotation
adds the active id before it starts, and retiring a key removes its row once no value uses it.

A server, an import and `/health` compare that table with their keyring (`missing_key_ids`):
a keyring that lacks a key the registry uses is another keyring than the registry's (or a key
was removed by hand), and every read of those values would fail. `check_keyring` refuses it
with one line naming the missing ids, instead of a 500 on every read.
"""

from collections.abc import Iterable

from sqlalchemy import Connection, Engine, String, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from sijill.core.db import Base, make_engine
from sijill.security.keys.keyring import KEY_ID, Keyring, KeyringError


class KeyInUse(Base):
    """One row per key id that encrypts (or may encrypt) a stored value."""

    __tablename__ = "key_in_use"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)


# The same statement on SQLite and PostgreSQL (both have ON CONFLICT since 2018); `?` is the
# raw DBAPI placeholder of the bulk writer, which turns it into `%s` for psycopg.
KEY_IN_USE_INSERT = "INSERT INTO key_in_use (key_id) VALUES (?) ON CONFLICT DO NOTHING"
_INSERT = text("INSERT INTO key_in_use (key_id) VALUES (:kid) ON CONFLICT DO NOTHING")


class WrongKeyring(KeyringError):
    """The registry holds values under keys this keyring does not have."""


def key_ids_of(tokens: Iterable[str | None]) -> set[str]:
    """The key ids that these stored tokens name."""
    kids = set()
    for token in tokens:
        if token is not None:
            kid, dot, _ = token.partition(".")
            if dot and KEY_ID.fullmatch(kid):
                kids.add(kid)
    return kids


def record_key_use(session: Session, kids: Iterable[str]) -> None:
    """Note, in the session's transaction, that values are being stored under `kids`.

    Once per key and transaction: a registration writes several persons.
    """
    transaction = session.get_transaction()
    noted = session.info.get("key_in_use")
    if noted is None or noted[0] is not transaction:
        noted = session.info["key_in_use"] = (transaction, set())
    for kid in set(kids) - noted[1]:
        session.execute(_INSERT, {"kid": kid})
        noted[1].add(kid)


def record_key_use_on(connection: Connection, kid: str) -> None:
    connection.execute(_INSERT, {"kid": kid})


def forget_key_use(connection: Connection, kid: str) -> None:
    """`kid` no longer encrypts anything (checked by the caller): drop it from the table."""
    connection.execute(text("DELETE FROM key_in_use WHERE key_id = :kid"), {"kid": kid})


def key_ids_in_use(connection: Connection) -> list[str]:
    return list(connection.scalars(select(KeyInUse.key_id).order_by(KeyInUse.key_id)))


def missing_key_ids(connection: Connection, keyring: Keyring) -> list[str]:
    """The key ids stored values use that `keyring` does not hold (empty: all is well)."""
    held = set(keyring.key_ids)
    missing = [kid for kid in key_ids_in_use(connection) if kid not in held]
    if missing:
        # The key file may have changed since this process read it (`sijill keys add`).
        keyring.reload()
        held = set(keyring.key_ids)
        missing = [kid for kid in missing if kid not in held]
    return missing


def wrong_keyring_message(keyring: Keyring, missing: list[str]) -> str:
    return (
        f"the registry holds values encrypted under key {', '.join(missing)}, which the key "
        f"file {keyring.path} does not hold: set SIJILL_KEY_FILE to the key file the registry "
        "was encrypted with (or restore it from its backup)"
    )


def check_keyring(engine_or_url: Engine | str, keyring: Keyring) -> None:
    """Raise WrongKeyring unless `keyring` holds every key the registry's values use."""
    owned = not isinstance(engine_or_url, Engine)
    engine = make_engine(engine_or_url) if owned else engine_or_url
    try:
        with engine.connect() as connection:
            missing = missing_key_ids(connection, keyring)
    finally:
        if owned:
            engine.dispose()
    if missing:
        raise WrongKeyring(wrong_keyring_message(keyring, missing))
