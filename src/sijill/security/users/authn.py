"""From a bearer token to the `Principal` acting: Sijill's own access tokens carry the user's
grants; an OIDC provider's tokens name a Sijill user, whose grants are read from the
registry (roles and areas are managed in Sijill either way)."""

from sqlalchemy.orm import Session, sessionmaker

from sijill.core.settings import Settings
from sijill.security.principal import Principal
from sijill.security.users import accounts, tokens


def principal_from_token(
    settings: Settings, token: str, sessions: sessionmaker[Session]
) -> Principal:
    if settings.oidc_issuer and tokens.unverified_issuer(token) == settings.oidc_issuer:
        username = tokens.oidc_username(settings, token)
        with sessions() as session:
            user = accounts.active_user(session, username)
            grants = tuple(accounts.user_grants(session, user.id))
        return Principal(username, grants)
    username, grants = tokens.access_grants(token)
    return Principal(username, grants)
