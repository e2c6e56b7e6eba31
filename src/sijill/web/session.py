"""Who is signed in to the pages, and the CSRF token of their forms.

The session is the API's own pair of signed tokens, each in an HttpOnly, SameSite=Lax cookie
(Secure over HTTPS) limited to `/web`: the access token, read as the API reads a bearer token,
and the refresh token, used when the access token has expired (audited and rate-limited as
`POST /auth/refresh` is). No session table: the tokens already say who is acting and are
checked the same way, and disabling a user stops their refreshes at once.

CSRF: a random seed in its own HttpOnly cookie, and in each form the HMAC of that seed under
a key derived from the token key (a signed double-submit cookie). Another site can neither
read the seed nor compute its HMAC; SameSite=Lax also keeps the cookies off its POSTs.
"""

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from fastapi import Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from sijill.core.errors import Forbidden, SijillError, Unauthenticated
from sijill.security.deps import get_session, record_audit
from sijill.security.keys.keyring import current_keyring
from sijill.security.principal import Principal
from sijill.security.users import signin, tokens
from sijill.security.users.authn import principal_from_token
from sijill.security.users.tokens import TokenPair

PREFIX = "/web"
ACCESS_COOKIE = "sijill_access"
REFRESH_COOKIE = "sijill_refresh"
SEED_COOKIE = "sijill_csrf"
LANGUAGE_COOKIE = "sijill_lang"

T = TypeVar("T")


class SignInRequired(Exception):
    """No session, or one that can no longer be renewed: the page sends to the sign-in form."""


class CsrfRefused(Forbidden):
    def __init__(self) -> None:
        super().__init__("The form was not sent from this site, or has expired")


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int | None):
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def keep_session(request: Request, response: Response, pair: TokenPair) -> None:
    settings = request.app.state.settings
    _cookie(request, response, ACCESS_COOKIE, pair.access_token, None)
    lifetime = settings.refresh_token_hours * 3600
    _cookie(request, response, REFRESH_COOKIE, pair.refresh_token, lifetime)


def end_session(response: Response) -> None:
    for name in (ACCESS_COOKIE, REFRESH_COOKIE, SEED_COOKIE):
        response.delete_cookie(name, path=PREFIX, httponly=True, samesite="lax")


def signed_in(request: Request, username: str, action: str, attempt) -> TokenPair:
    """`security.users.signin.signed_in` with the API's limiter: same audit, same limits."""
    state = request.app.state
    return signin.signed_in(
        state.sessions,
        signin.app_limiter(state),
        username,
        request.client.host if request.client else "unknown",
        action,
        attempt,
        request_id=getattr(request.state, "request_id", None),
    )


async def page_principal(request: Request) -> Principal:
    """The signed-in user of the session cookies, or SignInRequired. A valid access token is
    checked on the event loop, as the API checks a bearer token (a signature, no database);
    renewing an expired one reads the database, in a worker thread."""
    principal = _access_principal(request)
    if principal is None:
        principal = await run_in_threadpool(_renewed_principal, request)
    return _settled(request, principal)


def signed_in_principal(request: Request) -> Principal:
    """`page_principal` for a route that runs in a worker thread."""
    return _settled(request, _access_principal(request) or _renewed_principal(request))


def _access_principal(request: Request) -> Principal | None:
    access = request.cookies.get(ACCESS_COOKIE)
    if not access:
        return None
    try:
        return principal_from_token(
            request.app.state.settings, access, request.app.state.loop_sessions
        )
    except Unauthenticated:
        return None


def _renewed_principal(request: Request) -> Principal:
    """The user of the refresh token, their session renewed (audited and rate-limited as
    `POST /auth/refresh` is)."""
    settings = request.app.state.settings
    refresh = request.cookies.get(REFRESH_COOKIE)
    if not refresh:
        raise SignInRequired
    try:
        claims = tokens.refresh_claims(refresh)
        pair = signed_in(
            request, claims["sub"], "auth.refresh", signin.refresh_attempt(settings, claims)
        )
    except SijillError:
        raise SignInRequired from None
    request.state.renewed = pair
    return principal_from_token(settings, pair.access_token, request.app.state.loop_sessions)


def _settled(request: Request, principal: Principal) -> Principal:
    principal.request_id = request.state.request_id
    request.state.principal = principal
    return principal


@contextmanager
def transaction(request: Request, principal: Principal) -> Iterator[Session]:
    """The API's transaction of a request (`security.deps.get_session`): committed with its
    audit entries, or the entries of a refusal appended on their own."""
    with contextmanager(get_session)(request, principal) as session:
        yield session


async def read_only(request: Request, principal: Principal, work: Callable[[Session], T]) -> T:
    """A page that only reads, as the API serves its reads: `work(session)` in a worker
    thread, in a read-only transaction (on PostgreSQL; a write would fail); its audit entries
    then group-committed with other requests' (`security.deps.record_audit`) before the page
    is answered, whether the read succeeded or was refused.

    An audited read inside its own transaction holds the audit chain's head from its append
    to its commit: under load every page then queues behind the others' commits."""

    def read() -> T:
        with request.app.state.read_sessions() as session:
            found = work(session)
            # Nothing to commit, but ended by a rollback the connection would lose its prepared
            # statements (psycopg forgets them, as a rollback may have undone what they name).
            session.commit()
            return found

    try:
        return await run_in_threadpool(read)
    finally:
        await record_audit(request, principal)


# --- CSRF ------------------------------------------------------------------------------------


def _csrf_key() -> bytes:
    return hmac.new(current_keyring().token_key, b"sijill web csrf", hashlib.sha256).digest()


def csrf_seed(request: Request) -> str:
    """The request's CSRF seed: its cookie's, or a new one the response will set."""
    seed = getattr(request.state, "new_seed", None) or request.cookies.get(SEED_COOKIE)
    if not seed:
        seed = request.state.new_seed = secrets.token_urlsafe(32)
    return seed


def new_seed(request: Request) -> None:
    """A fresh seed at sign-in: a seed planted before it is worth nothing after."""
    request.state.new_seed = secrets.token_urlsafe(32)


def csrf_token(request: Request) -> str:
    return hmac.new(_csrf_key(), csrf_seed(request).encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, sent: str | None) -> None:
    seed = request.cookies.get(SEED_COOKIE)
    if not seed or not sent:
        raise CsrfRefused
    expected = hmac.new(_csrf_key(), seed.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sent):
        raise CsrfRefused


def finish(request: Request, response: Response) -> None:
    """Set what this request changed: a renewed session, a new CSRF seed."""
    pair = getattr(request.state, "renewed", None)
    if pair is not None:
        keep_session(request, response, pair)
    seed = getattr(request.state, "new_seed", None)
    if seed is not None:
        _cookie(request, response, SEED_COOKIE, seed, None)
