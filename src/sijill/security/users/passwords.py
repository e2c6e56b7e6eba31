"""Password and service-key hashing with Argon2id (argon2-cffi's defaults, RFC 9106)."""

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from sijill.core.errors import FieldError
from sijill.core.i18n import N_

_hasher = PasswordHasher()
MIN_LENGTH = 12
_TOO_SHORT = N_("The new password is too weak: it needs at least {count} characters")
_ONE_KIND = N_(
    "The new password is too weak: it needs letters and something else (digits, symbols or spaces)"
)
SAME_AS_OLD = N_("The new password must differ from the old one")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@cache
def _dummy_hash() -> str:
    """Verifying against this when the user does not exist takes as long as a real check, so
    the answer time does not tell which user names exist. Made on first use, not at import: a
    hash costs a third of a second, and most commands never check a password."""
    return _hasher.hash(secrets.token_urlsafe(16))


def prepare_checks() -> None:
    """Make the dummy hash now: a server does, so that its first check of an unknown user
    takes no longer than the others."""
    _dummy_hash()


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A one-time password to read out or paste: 20 URL-safe characters (~120 bits)."""
    return secrets.token_urlsafe(15)


def password_problem(password: str) -> FieldError | None:
    """What is wrong with a new password, said so that the pages can translate it."""
    if len(password) < MIN_LENGTH:
        return _problem(_TOO_SHORT, count=MIN_LENGTH)
    if password.isdigit() or password.isalpha():
        return _problem(_ONE_KIND)
    return None


def _problem(template: str, **values: object) -> FieldError:
    message = template.format(**values)
    return FieldError("new_password", message, template=template, values=values)
