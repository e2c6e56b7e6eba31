"""`/auth`: sign in, refresh, choose a password, who am I.

Every attempt to sign in is audited (the user name typed, never the password). Failed
attempts are limited per user name and per client address, so a password cannot be guessed
at speed.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, Field

from sijill.api import PrincipalDep, SettingsDep, problem_responses
from sijill.core.db import transaction
from sijill.core.errors import SijillError, TooManyRequests
from sijill.security import tokens, users
from sijill.security.audit import AuditEntry, append_now
from sijill.security.keys import current_keyring
from sijill.security.principal import Principal

router = APIRouter(prefix="/auth", tags=["authentication"])


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    password: str = Field(min_length=1, max_length=200)


class PasswordChange(Credentials):
    new_password: str = Field(min_length=1, max_length=200)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class Tokens(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token is valid for")


class GrantPublic(BaseModel):
    role: str
    area_code: str | None = Field(description="None: the whole country")


class Me(BaseModel):
    username: str
    grants: list[GrantPublic]


class LoginLimiter:
    """Failed sign-ins allowed per minute, per user name and per client address."""

    def __init__(self, per_minute: int):
        self.limit = RateLimitItemPerMinute(per_minute)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, username: str, address: str) -> None:
        for key in (f"user:{username.lower()}", f"address:{address}"):
            if not self.limiter.test(self.limit, key):
                raise TooManyRequests(
                    "Too many failed attempts to sign in; wait a minute and try again"
                )

    def failed(self, username: str, address: str) -> None:
        self.limiter.hit(self.limit, f"user:{username.lower()}")
        self.limiter.hit(self.limit, f"address:{address}")


def _limiter(request: Request) -> LoginLimiter:
    state = request.app.state
    if getattr(state, "login_limiter", None) is None:
        state.login_limiter = LoginLimiter(state.settings.login_attempts_per_minute)
    return state.login_limiter


def _signed_in(request: Request, username: str, action: str, attempt) -> Tokens:
    """Run a sign-in `attempt` (returning a TokenPair), audited, with failures rate-limited."""
    limiter = _limiter(request)
    address = request.client.host if request.client else "unknown"
    limiter.check(username, address)
    request_id = getattr(request.state, "request_id", None)
    outcome = "ok"
    try:
        with transaction(request.app.state.sessions) as session:
            pair = attempt(session)
    except SijillError as error:
        outcome = "denied" if error.status in (401, 403) else "invalid"
        if error.status == 401:
            limiter.failed(username, address)
        raise
    finally:
        name = username if outcome == "ok" else known_or_pseudonym(request, username)
        entry = AuditEntry(
            actor=name,
            role=None,
            action=action,
            outcome=outcome,
            record_type="user",
            record_id=name,
            request_id=request_id,
        )
        append_now(request.app.state.sessions, [entry])
    return Tokens(**pair.__dict__)


def known_or_pseudonym(request: Request, username: str) -> str:
    """The name typed in a failed sign-in, if it is a user's; else a keyed pseudonym of it:
    people type all sorts there (their national ID, a password), none of it for the audit."""
    with request.app.state.sessions() as session:
        if users.user_exists(session, username):
            return username
    return "unknown:" + current_keyring().pseudonym("username", username)[:16]


_AUTH_ERRORS = problem_responses(401, 403, 429)


@router.post("/token", operation_id="sign_in", responses=_AUTH_ERRORS, summary="Sign in")
def sign_in(data: Credentials, request: Request, settings: SettingsDep) -> Tokens:
    """An access token (send it as `Authorization: Bearer ...`) and a refresh token."""

    def attempt(session):
        user, grants = users.authenticate(session, data.username, data.password)
        return tokens.issue(settings, user.username, user.token_version, grants)

    return _signed_in(request, data.username, "auth.sign_in", attempt)


@router.post(
    "/refresh",
    operation_id="refresh_token",
    responses=_AUTH_ERRORS,
    summary="New tokens for a refresh token",
)
def refresh(data: RefreshRequest, request: Request, settings: SettingsDep) -> Tokens:
    claims = tokens.refresh_claims(data.refresh_token)

    def attempt(session):
        user = users.active_user(session, claims["sub"], claims.get("ver"))
        grants = users.user_grants(session, user.id)
        return tokens.issue(settings, user.username, user.token_version, grants)

    return _signed_in(request, claims["sub"], "auth.refresh", attempt)


@router.post(
    "/password",
    operation_id="change_password",
    responses=problem_responses(401, 422, 429),
    summary="Choose a new password (required after a one-time password)",
)
def change_password(data: PasswordChange, request: Request, settings: SettingsDep) -> Tokens:
    def attempt(session):
        users.change_password(session, data.username, data.password, data.new_password)
        user, grants = users.authenticate(session, data.username, data.new_password)
        return tokens.issue(settings, user.username, user.token_version, grants)

    return _signed_in(request, data.username, "auth.password", attempt)


@router.get("/me", operation_id="who_am_i", responses=problem_responses(401), summary="Who am I")
async def me(principal: PrincipalDep) -> Me:
    return Me(
        username=principal.username,
        grants=[GrantPublic(role=g.role, area_code=g.area_code) for g in principal.grants],
    )


PUBLIC_OPERATIONS = frozenset({"sign_in", "refresh_token", "change_password"})
_ = Annotated, Depends, Principal  # re-exported names used by type checkers only
