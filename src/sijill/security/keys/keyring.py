"""The keyring: encryption of personal identifiers at rest, their blind index, and the other
secrets Sijill derives nothing else from.

One JSON file (`SIJILL_KEY_FILE`, mode 0600) holds every key:

    {"active": "q3vjx7mbe2", "keys": {"k1": "<b64>", "q3vjx7mbe2": "<b64>"},
     "index_key": "<b64>", "token_key": "<b64>", "pseudonym_key": "<b64>"}

- `keys`: AES-256-GCM keys for identifiers, by key id, oldest first. A key's id is its
  fingerprint (`fingerprint`: 10 base32 characters of an HMAC of a fixed text under the key,
  which says nothing of the key), so two keyrings never share an id by accident and a server
  given another keyring than the registry's is refused at start (`usage.check_keyring`). Key
  files made before fingerprints name their keys `k1`, `k2`, ...: those ids stay valid. New
  values are encrypted under `active`;
  older keys stay so that rows not yet rotated can still be read (`sijill keys rotate`
  re-encrypts them, `sijill keys retire` removes a key no row uses any more).
- `index_key`: HMAC key of the blind index, the deterministic digest that lets the registry
  find a person by national ID without storing the number in clear. It is never rotated by
  `keys add`: a new index key would mean recomputing every index, and the index leaks no more
  than equality, which a new key would not change.
- `token_key`: signs the API's access tokens (HS256).
- `pseudonym_key`: HMAC key of the stable pseudonyms in pseudonymised exports.

A ciphertext is stored as `<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`, about 55
characters for an 11-digit national ID. The column name and the key id are the associated
data, so a ciphertext copied into another column, or relabelled with another key id, does not
decrypt.

The file is refused when other users can read or write it (the same rule as ssh's private
keys): these keys open every identifier in the registry, and a server that starts anyway
would hide the exposure. `chmod 600` fixes it.
"""

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import polars as pl
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sijill.core.errors import SijillError
from sijill.core.i18n import N_

# Key ids are letters and digits only: they prefix every ciphertext and are matched with SQL
# `LIKE 'kid.%'`, where `_` and `%` would be wildcards (and SQLite's LIKE ignores case, hence
# lower case only).
KEY_ID = re.compile(r"[a-z0-9]{1,16}")
_FINGERPRINT_CHARS = 10  # 50 bits: two keys sharing an id by chance is about 2^-50
_KEY_BYTES = 32
_NONCE_BYTES = 12
# A blind index of 128 bits: with 10^9 distinct numbers the chance that any two share an index
# is about 10^18 / 2^129, i.e. 10^-21, and a shared index would only add a candidate to a
# search, not change a stored value. Shorter keeps the indexed column small.
INDEX_HEX_CHARS = 32
# How often a running process looks whether the key file changed (a key added: new values
# should go under it without restarting every server).
REFRESH_SECONDS = 30.0
# How long a process waits for another one that is writing a new key file to finish.
_CREATE_WAIT_SECONDS = 5.0


class KeyringError(SijillError):
    """The key file is missing a piece, damaged, or not private; or a key is in use."""

    status = 500
    title = N_("Key configuration error")


class DecryptionError(SijillError):
    """A stored identifier cannot be decrypted. The message never contains the value."""

    status = 500
    title = N_("Stored identifier cannot be decrypted")


@dataclass(frozen=True)
class _Material:
    active: str
    keys: dict[str, bytes]
    index_key: bytes
    token_key: bytes
    pseudonym_key: bytes


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_SHA256_BLOCK = 64
_HMAC_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_HMAC_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    # binascii directly: this runs for every identifier the API shows.
    data = text.encode("ascii").translate(_FROM_URLSAFE)
    return binascii.a2b_base64(data + b"=" * (-len(data) % 4), strict_mode=True)


def _fresh_key() -> bytes:
    return secrets.token_bytes(_KEY_BYTES)


def fingerprint(key: bytes) -> str:
    """The id of a new key: derived from the key by a one-way function, never the key."""
    digest = hmac.digest(key, b"sijill key id v1", "sha256")
    return base64.b32encode(digest).decode("ascii")[:_FINGERPRINT_CHARS].lower()


def _parse(path: Path, text: str) -> _Material:
    def secret(name: str, value: object) -> bytes:
        try:
            raw = _unb64(value) if isinstance(value, str) else b""
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != _KEY_BYTES:
            raise KeyringError(f"key file {path}: {name} is not {_KEY_BYTES} bytes of base64url")
        return raw

    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise KeyringError(f"key file {path} is not valid JSON (line {error.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict) or not data["keys"]:
        raise KeyringError(f"key file {path} has no 'keys'")
    keys = {}
    for kid, value in data["keys"].items():
        if not KEY_ID.fullmatch(kid):
            raise KeyringError(
                f"key file {path}: key id {kid!r} must be 1 to 16 lower-case letters or digits"
            )
        keys[kid] = secret(f"key {kid}", value)
    active = data.get("active")
    if active not in keys:
        raise KeyringError(f"key file {path}: the active key {active!r} is not among its keys")
    return _Material(
        active=active,
        keys=keys,
        index_key=secret("index_key", data.get("index_key")),
        token_key=secret("token_key", data.get("token_key")),
        pseudonym_key=secret("pseudonym_key", data.get("pseudonym_key")),
    )


def _dump(material: _Material) -> str:
    return (
        json.dumps(
            {
                "active": material.active,
                "keys": {kid: _b64(key) for kid, key in material.keys.items()},
                "index_key": _b64(material.index_key),
                "token_key": _b64(material.token_key),
                "pseudonym_key": _b64(material.pseudonym_key),
            },
            indent=2,
        )
        + "\n"
    )


def _check_private(path: Path, stat: os.stat_result) -> None:
    if os.name == "posix" and stat.st_mode & 0o077:
        raise KeyringError(
            f"key file {path} can be read or changed by other users "
            f"(mode {stat.st_mode & 0o777:o}); make it private: chmod 600 {path}"
        )


def _write_new_file(path: Path, text: str) -> Path:
    """Write `text` to a private temporary file beside `path`, flushed to disk."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, text.encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return temporary


def _sync_directory(path: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _create(path: Path) -> None:
    """Create a key file with fresh keys, unless another process creates it first.

    The complete file is linked into place in one step, which fails if the name exists: of two
    workers starting at once exactly one file wins, and nobody reads a half-written one. Where
    hard links are not supported, the file is created with O_EXCL instead and readers wait
    for it to be complete.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    key = _fresh_key()
    kid = fingerprint(key)
    material = _Material(kid, {kid: key}, _fresh_key(), _fresh_key(), _fresh_key())
    text = _dump(material)
    temporary = _write_new_file(path, text)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return
    except OSError:
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        try:
            os.write(descriptor, text.encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    finally:
        temporary.unlink(missing_ok=True)
    _sync_directory(path)


def _read(path: Path) -> tuple[_Material, tuple[int, int, int]]:
    """The file's keys and its identity (inode, size, mtime), creating the file if missing."""
    deadline = time.monotonic() + _CREATE_WAIT_SECONDS
    while True:
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            try:
                _create(path)
            except OSError as error:
                raise KeyringError(
                    f"key file {path} does not exist and cannot be created: {error.strerror}"
                ) from None
            continue
        except PermissionError:
            raise KeyringError(f"key file {path} cannot be read by this user") from None
        try:
            stat = os.fstat(descriptor)
            _check_private(path, stat)
            with os.fdopen(descriptor, "r", encoding="utf-8", closefd=False) as handle:
                text = handle.read()
        finally:
            os.close(descriptor)
        # Only the O_EXCL fallback of `_create` shows a file before its one write lands.
        if not text and time.monotonic() < deadline:
            time.sleep(0.05)
            continue
        return _parse(path, text), (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class Keyring:
    """The keys of one key file. Safe to share between threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._install(*_read(self.path))

    @classmethod
    def load(cls, path: Path | str) -> "Keyring":
        """The keyring in `path`; a new key file with fresh keys if there is none."""
        return cls(Path(path))

    def _install(self, material: _Material, identity: tuple[int, int, int]) -> None:
        # One attribute holds everything a reader needs, so a reload swaps it atomically.
        ciphers = {kid: AESGCM(key) for kid, key in material.keys.items()}
        self._state = (material, ciphers)
        self._identity = identity
        self._checked = time.monotonic()

    def reload(self) -> None:
        """Read the key file again (a key was added or retired by another process)."""
        with self._lock:
            self._install(*_read(self.path))

    def _refresh_if_changed(self) -> None:
        now = time.monotonic()
        if now - self._checked < REFRESH_SECONDS:
            return
        self._checked = now
        identity = _identity(self.path)
        if identity is not None and identity != self._identity:
            self.reload()

    # --- what the rest of Sijill sees -----------------------------------------------------

    @property
    def active(self) -> str:
        """The id of the key new values are encrypted under."""
        self._refresh_if_changed()
        return self._state[0].active

    @property
    def key_ids(self) -> list[str]:
        """Every key id of the file, oldest first."""
        return list(self._state[0].keys)

    @property
    def token_key(self) -> bytes:
        return self._state[0].token_key

    def encrypt(self, field: str, plaintext: str) -> str:
        """`plaintext` encrypted for column `field`, under the active key."""
        return self.encrypt_many(field, (plaintext,))[0]

    def encrypt_many(self, field: str, values: Sequence[str | None]) -> list[str | None]:
        """Each value encrypted for column `field` under the active key; None stays None."""
        return self.encrypt_column(field, values).to_list()

    def encrypt_column(self, field: str, values: Sequence[str | None] | pl.Series) -> pl.Series:
        """`encrypt_many` as a Polars string column: the bulk path's form. Only the AES-GCM
        call is made per value (through `map`, no Python loop); the tokens' text is built
        column-wise."""
        self._refresh_if_changed()
        material, ciphers = self._state
        kid = material.active
        column = values if isinstance(values, pl.Series) else pl.Series(values, dtype=pl.String)
        present = column.is_not_null()
        plain = column.filter(present).cast(pl.Binary).to_list()
        # One system call for every nonce of the batch instead of one per value.
        pool = os.urandom(_NONCE_BYTES * len(plain))
        nonces = [pool[i : i + _NONCE_BYTES] for i in range(0, len(pool), _NONCE_BYTES)]
        sealed = map(ciphers[kid].encrypt, nonces, plain, repeat(_associated(field, kid)))
        # A 12-byte nonce is four whole base64 groups, so base64(nonce + sealed) is
        # base64(nonce) followed by base64(sealed): each is encoded as a column.
        text = pl.Series(nonces, dtype=pl.Binary).bin.encode("base64") + pl.Series(
            list(sealed), dtype=pl.Binary
        ).bin.encode("base64")
        # URL-safe alphabet, no padding ('=' only ever ends the text).
        tokens = f"{kid}." + text.str.replace_many(["+", "/", "="], ["-", "_", ""])
        if len(plain) == column.len():
            return tokens.rename(field)
        out = pl.Series(field, [None] * column.len(), dtype=pl.String)
        return out.scatter(present.arg_true(), tokens)

    def decrypt(self, field: str, token: str) -> str:
        """The value `token` holds; DecryptionError if it was not made for `field` by a key of
        this keyring, or was altered."""
        kid, dot, body = token.partition(".")
        if not dot:
            raise DecryptionError(f"a stored {field} is not an encrypted value")
        cipher = self._state[1].get(kid) or self._cipher_after_reload(field, kid)
        try:
            raw = _unb64(body)
            plain = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated(field, kid))
        except (InvalidTag, ValueError, binascii.Error):
            raise DecryptionError(
                f"a stored {field} (key {kid}) does not decrypt: it was altered or belongs to "
                "another column"
            ) from None
        return plain.decode("utf-8")

    def decrypt_many(self, field: str, tokens: Iterable[str | None]) -> list[str | None]:
        decrypt = self.decrypt
        return [None if token is None else decrypt(field, token) for token in tokens]

    def reencrypt_many(self, field: str, tokens: Sequence[str | None]) -> list[str | None]:
        """Each token under the active key: those already there are returned as they are."""
        kid = self._state[0].active
        prefix = kid + "."
        todo = [
            i
            for i, token in enumerate(tokens)
            if token is not None and not token.startswith(prefix)
        ]
        out = list(tokens)
        if not todo:
            return out
        plain = [self.decrypt(field, tokens[i]) for i in todo]
        sealed = self.encrypt_many(field, plain)
        for i, token in zip(todo, sealed, strict=True):
            out[i] = token
        return out

    def _cipher_after_reload(self, field: str, kid: str) -> AESGCM:
        # A key added while this process runs (`sijill keys add`, then a row written by a
        # process that already uses it): read the file once more before giving up.
        self.reload()
        cipher = self._state[1].get(kid)
        if cipher is None:
            raise DecryptionError(
                f"a stored {field} is encrypted under key {kid!r}, which the key file "
                f"{self.path} does not hold"
            )
        return cipher

    def key_id_of(self, token: str) -> str | None:
        """The key id a stored token names (None if it does not look like a token)."""
        kid, dot, _ = token.partition(".")
        return kid if dot and KEY_ID.fullmatch(kid) else None

    def blind_index(self, value: str, *, field: str = "national_id") -> str:
        """Keyed digest of an already normalised value: equal values, equal index.

        `field` separates the indexes of different kinds of value, so the digest of a phone
        number can never be compared with that of a document number.
        """
        return self.blind_index_many((value,), field=field)[0]

    def blind_index_many(
        self, values: Iterable[str | None], *, field: str = "national_id"
    ) -> list[str | None]:
        # HMAC-SHA256 (RFC 2104) spelt out over hashlib: the inner and outer states after the
        # keyed pads and the field's prefix are computed once and copied per value, which
        # costs half of `hmac`'s per-value object.
        key = self._state[0].index_key
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\x00")
        inner = hashlib.sha256(key.translate(_HMAC_INNER_PAD))
        inner.update(f"{field}\x00".encode())
        outer = hashlib.sha256(key.translate(_HMAC_OUTER_PAD))
        size = INDEX_HEX_CHARS // 2
        out: list[str | None] = []
        append = out.append
        for value in values:
            if value is None:
                append(None)
                continue
            digest = inner.copy()
            digest.update(value.encode())
            mac = outer.copy()
            mac.update(digest.digest())
            append(mac.digest()[:size].hex())
        return out

    def pseudonym(self, kind: str, value: str) -> str:
        """A stable pseudonym of `value` for exports: the same value and kind, the same
        pseudonym; without the key, no way back. `kind` (e.g. "household") namespaces it."""
        message = f"{kind}\x00{value}".encode()
        return hmac.digest(self._state[0].pseudonym_key, message, "sha256").hex()[:32]


def _associated(field: str, kid: str) -> bytes:
    return f"sijill:{field}:{kid}".encode()


# --- process-wide keyring ----------------------------------------------------------------

_current: Keyring | None = None
_current_lock = threading.Lock()


def current_keyring() -> Keyring:
    """The keyring of this process, loaded from `Settings().key_file` on first use."""
    keyring = _current
    if keyring is not None:
        return keyring
    from sijill.core.settings import Settings

    with _current_lock:
        if _current is None:
            _set_current(Keyring.load(Settings().key_file))
        return _current


def install_keyring(settings) -> Keyring:
    """Load (or create) the key file of `settings` and make it this process's keyring."""
    keyring = Keyring.load(settings.key_file)
    with _current_lock:
        _set_current(keyring)
    return keyring


def _set_current(keyring: Keyring) -> None:
    global _current
    _current = keyring


# --- managing the key file (the `sijill keys` commands) ----------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Two administrators changing the key file at once must not lose each other's key."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks, changes are rare and manual
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _replace(path: Path, material: _Material) -> None:
    temporary = _write_new_file(path, _dump(material))
    try:
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _sync_directory(path)
    if _current is not None and _current.path.resolve() == path.resolve():
        _current.reload()


def add_key(path: Path | str) -> str:
    """Add a fresh encryption key and make it the active one; its id. Older keys stay, so every
    stored value can still be read until `sijill keys rotate` has re-encrypted it."""
    path = Path(path)
    with _locked(path):
        material, _ = _read(path)
        key = _fresh_key()
        while (kid := fingerprint(key)) in material.keys:  # never in practice: 2^-50
            key = _fresh_key()
        keys = {**material.keys, kid: key}
        _replace(
            path,
            _Material(kid, keys, material.index_key, material.token_key, material.pseudonym_key),
        )
    return kid


def remove_key(path: Path | str, kid: str) -> None:
    """Delete key `kid` from the key file. Only `sijill.security.keys.rotation.retire_key` should
    call this: it first makes sure no stored value still needs the key."""
    path = Path(path)
    with _locked(path):
        material, _ = _read(path)
        if kid not in material.keys:
            raise KeyringError(f"the key file {path} has no key {kid!r}")
        if kid == material.active:
            raise KeyringError(
                f"key {kid} is the active key: add a new one first (sijill keys add), rotate, "
                "then retire it"
            )
        keys = {k: v for k, v in material.keys.items() if k != kid}
        _replace(
            path,
            _Material(
                material.active,
                keys,
                material.index_key,
                material.token_key,
                material.pseudonym_key,
            ),
        )
