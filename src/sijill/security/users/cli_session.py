"""Who runs a CLI command: a service account (SIJILL_SERVICE_KEY=user:key) or the person who
signed in with `sijill login`, whose tokens are kept in `session_file` (mode 0600).

The CLI talks to the database directly, so whoever can read the key file and the database
URL can bypass this; it exists so that every command is done, and audited, as a named user
with that user's roles and areas, exactly as through the API.
"""

import json
import os

from sqlalchemy.orm import Session

from sijill.core.errors import Unauthenticated
from sijill.core.settings import Settings
from sijill.security.principal import Principal
from sijill.security.users import accounts, tokens

SERVICE_KEY_VARIABLE = "SIJILL_SERVICE_KEY"
_SIGN_IN = (
    "Sign in first with `sijill login`, or set SIJILL_SERVICE_KEY=<user>:<key> "
    "for a service account"
)


def save_session(settings: Settings, pair: tokens.TokenPair) -> None:
    path = settings.session_file
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"access_token": pair.access_token, "refresh_token": pair.refresh_token}, handle)
    os.replace(temporary, path)


def forget_session(settings: Settings) -> bool:
    try:
        settings.session_file.unlink()
        return True
    except FileNotFoundError:
        return False


def cli_principal(settings: Settings, session: Session) -> Principal:
    service_key = os.environ.get(SERVICE_KEY_VARIABLE)
    if service_key:
        username, _, secret = service_key.partition(":")
        user, grants = accounts.authenticate(session, username, secret)
        if not user.is_service:
            raise Unauthenticated(
                f"{SERVICE_KEY_VARIABLE} is for service accounts; people sign in with "
                "`sijill login`"
            )
        return Principal(user.username, tuple(grants))
    try:
        saved = json.loads(settings.session_file.read_text())
    except (OSError, ValueError):
        raise Unauthenticated(_SIGN_IN) from None
    try:
        username, grants = tokens.access_grants(saved["access_token"])
        # The grants in an access token can be 15 minutes old; on the command line, where
        # a round trip costs nothing, use the current ones.
        user = accounts.active_user(session, username)
        return Principal(user.username, tuple(accounts.user_grants(session, user.id)))
    except (Unauthenticated, KeyError, TypeError):
        pass
    try:
        claims = tokens.refresh_claims(saved["refresh_token"])
        user = accounts.active_user(session, claims["sub"], claims.get("ver"))
    except (Unauthenticated, KeyError, TypeError):
        raise Unauthenticated(f"Your session has ended. {_SIGN_IN}") from None
    grants = accounts.user_grants(session, user.id)
    save_session(settings, tokens.issue(settings, user.username, user.token_version, grants))
    return Principal(user.username, tuple(grants))
