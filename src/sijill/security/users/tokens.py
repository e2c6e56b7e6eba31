"""Signed tokens: Sijill's own (HS256 with the keyring's token key) and, when configured, an
OpenID Connect provider's (verified against its published signing keys).

An access token carries the user's grants, so the hottest reads need no database round trip
to know who is asking; it lives `access_token_minutes` (15 by default), which bounds how long
a disabled user's last access token still works. A refresh token carries only the user and
their `token_version`: refreshing re-reads the user, so disabling a user or changing their
password stops refreshes at once.
"""

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt

from sijill.core.errors import Unauthenticated
from sijill.core.settings import Settings
from sijill.security.keys.keyring import current_keyring
from sijill.security.principal import Grant

ISSUER = "sijill"
_ALGORITHM = "HS256"
_OIDC_ALGORITHMS = ["RS256", "ES256", "PS256", "EdDSA"]


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds
    token_type: str = "bearer"


def issue(settings: Settings, username: str, token_version: int, grants: list[Grant]) -> TokenPair:
    # Real time, not the registry's clock: PyJWT checks expiry against the real time too.
    now = datetime.now(UTC)
    key = current_keyring().token_key
    access_life = timedelta(minutes=settings.access_token_minutes)
    access = {
        "iss": ISSUER,
        "sub": username,
        "typ": "access",
        "iat": now,
        "exp": now + access_life,
        "grants": [[g.role, g.area_id, g.area_code] for g in grants],
    }
    refresh = {
        "iss": ISSUER,
        "sub": username,
        "typ": "refresh",
        "ver": token_version,
        "iat": now,
        "exp": now + timedelta(hours=settings.refresh_token_hours),
        "jti": secrets.token_hex(12),
    }
    return TokenPair(
        jwt.encode(access, key, algorithm=_ALGORITHM),
        jwt.encode(refresh, key, algorithm=_ALGORITHM),
        int(access_life.total_seconds()),
    )


def _decode_own(token: str, kind: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            current_keyring().token_key,
            algorithms=[_ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("The token has expired; sign in again or refresh it") from None
    except jwt.PyJWTError:
        raise Unauthenticated("The token is not valid") from None
    if claims.get("typ") != kind:
        raise Unauthenticated(
            f"This is not an {kind} token" if kind == "access" else f"This is not a {kind} token"
        )
    return claims


# Access tokens already verified, until they expire: a client sends the same token with every
# request, and checking its signature and claims again is most of what authentication costs
# the hottest read. A token hits only if it is the very same text, signed with the key still
# in use; it cannot outlive its own `exp` here any more than it could unchecked.
_VERIFIED_LIMIT = 10_000
_verified: dict[str, tuple[float, bytes, str, tuple[Grant, ...]]] = {}


def access_grants(token: str) -> tuple[str, tuple[Grant, ...]]:
    """The user and grants of one of our own access tokens."""
    key = current_keyring().token_key
    known = _verified.get(token)
    if known is not None:
        expires, signed_with, username, grants = known
        if signed_with == key and time.time() < expires:
            return username, grants
        _verified.pop(token, None)
    claims = _decode_own(token, "access")
    try:
        grants = tuple(Grant(role, area_id, code) for role, area_id, code in claims["grants"])
    except (KeyError, TypeError, ValueError):
        raise Unauthenticated("The token is not valid") from None
    if len(_verified) >= _VERIFIED_LIMIT:
        _verified.clear()
    _verified[token] = (float(claims["exp"]), key, claims["sub"], grants)
    return claims["sub"], grants


def refresh_claims(token: str) -> dict[str, Any]:
    return _decode_own(token, "refresh")


def unverified_issuer(token: str) -> str | None:
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise Unauthenticated("The token is not valid") from None


# --- OpenID Connect -----------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    # Keys are cached and refetched when a token names a key id not seen yet (key rollover).
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600)


def _signing_key(settings: Settings, token: str) -> Any:
    try:
        if settings.oidc_jwks_file is not None:
            keys = jwt.PyJWKSet.from_dict(json.loads(settings.oidc_jwks_file.read_text()))
            kid = jwt.get_unverified_header(token).get("kid")
            for key in keys.keys:
                if kid is None or key.key_id == kid:
                    return key.key
            raise Unauthenticated("The token is signed by a key the identity provider lacks")
        if settings.oidc_jwks_url:
            return _jwks_client(settings.oidc_jwks_url).get_signing_key_from_jwt(token).key
    except (jwt.PyJWTError, OSError, ValueError):
        raise Unauthenticated("The identity provider's token cannot be checked") from None
    raise Unauthenticated("No identity provider keys are configured")


def oidc_username(settings: Settings, token: str) -> str:
    """The Sijill user an identity provider's access token stands for."""
    key = _signing_key(settings, token)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=_OIDC_ALGORITHMS,
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            options={"require": ["exp", "iss", "sub"], "verify_aud": bool(settings.oidc_audience)},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("The token has expired; sign in again") from None
    except jwt.PyJWTError:
        raise Unauthenticated("The token is not valid") from None
    username = claims.get(settings.oidc_username_claim)
    if not isinstance(username, str) or not username:
        raise Unauthenticated(f"The token has no '{settings.oidc_username_claim}' claim")
    return username
