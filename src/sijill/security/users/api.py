"""`/auth`: sign in, refresh, choose a password, who am I.

Every attempt to sign in is audited and failures are rate-limited, by
`sijill.security.users.signin`, the same service `sijill login` calls.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from sijill.core.problems import problem_responses
from sijill.security.deps import PrincipalDep, SettingsDep
from sijill.security.principal import Principal
from sijill.security.users import signin, tokens
from sijill.security.users.signin import LoginLimiter

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


def _limiter(request: Request) -> LoginLimiter:
    return signin.app_limiter(request.app.state)


def _signed_in(request: Request, username: str, action: str, attempt) -> Tokens:
    pair = signin.signed_in(
        request.app.state.sessions,
        _limiter(request),
        username,
        request.client.host if request.client else "unknown",
        action,
        attempt,
        request_id=getattr(request.state, "request_id", None),
    )
    return Tokens(**pair.__dict__)


_AUTH_ERRORS = problem_responses(401, 403, 429)


@router.post("/token", operation_id="sign_in", responses=_AUTH_ERRORS, summary="Sign in")
def sign_in(data: Credentials, request: Request, settings: SettingsDep) -> Tokens:
    """An access token (send it as `Authorization: Bearer ...`) and a refresh token."""
    attempt = signin.password_attempt(settings, data.username, data.password)
    return _signed_in(request, data.username, "auth.sign_in", attempt)


@router.post(
    "/refresh",
    operation_id="refresh_token",
    responses=_AUTH_ERRORS,
    summary="New tokens for a refresh token",
)
def refresh(data: RefreshRequest, request: Request, settings: SettingsDep) -> Tokens:
    claims = tokens.refresh_claims(data.refresh_token)
    attempt = signin.refresh_attempt(settings, claims)
    return _signed_in(request, claims["sub"], "auth.refresh", attempt)


@router.post(
    "/password",
    operation_id="change_password",
    responses=problem_responses(401, 422, 429),
    summary="Choose a new password (required after a one-time password)",
)
def change_password(data: PasswordChange, request: Request, settings: SettingsDep) -> Tokens:
    attempt = signin.password_change_attempt(
        settings, data.username, data.password, data.new_password
    )
    return _signed_in(request, data.username, "auth.password", attempt)


@router.get("/me", operation_id="who_am_i", responses=problem_responses(401), summary="Who am I")
async def me(principal: PrincipalDep) -> Me:
    return Me(
        username=principal.username,
        grants=[GrantPublic(role=g.role, area_code=g.area_code) for g in principal.grants],
    )


PUBLIC_OPERATIONS = frozenset({"sign_in", "refresh_token", "change_password"})
_ = Annotated, Depends, Principal  # re-exported names used by type checkers only
