"""Signing in, for the API and the CLI alike: every attempt audited (the user name typed,
never the password; an unknown name only as a keyed pseudonym), failed attempts limited per
user name and per client address, so a password cannot be guessed at speed."""

from collections.abc import Callable
from typing import Any

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.orm import Session, sessionmaker

from sijill.core.db import transaction
from sijill.core.errors import SijillError, TooManyRequests
from sijill.core.settings import Settings
from sijill.security.audit.service import AuditEntry, append_now
from sijill.security.keys.keyring import current_keyring
from sijill.security.users import accounts, tokens
from sijill.security.users.tokens import TokenPair


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


def app_limiter(state: Any) -> LoginLimiter:
    """The one limiter of a server (its `app.state`): the API's sign-in and the web pages'
    count failures together, so switching between them gains no attempts."""
    if getattr(state, "login_limiter", None) is None:
        state.login_limiter = LoginLimiter(state.settings.login_attempts_per_minute)
    return state.login_limiter


def password_attempt(
    settings: Settings, username: str, password: str
) -> Callable[[Session], TokenPair]:
    """Signing in with a password, for `signed_in`."""

    def attempt(session: Session) -> TokenPair:
        user, grants = accounts.authenticate(session, username, password)
        return tokens.issue(settings, user.username, user.token_version, grants)

    return attempt


def password_change_attempt(
    settings: Settings, username: str, password: str, new_password: str
) -> Callable[[Session], TokenPair]:
    """Choosing a new password (the only way past a one-time one) and signing in with it, for
    `signed_in`: the old password proves who asks, and every earlier token stops working."""

    def attempt(session: Session) -> TokenPair:
        accounts.change_password(session, username, password, new_password)
        user, grants = accounts.authenticate(session, username, new_password)
        return tokens.issue(settings, user.username, user.token_version, grants)

    return attempt


def refresh_attempt(settings: Settings, claims: dict[str, Any]) -> Callable[[Session], TokenPair]:
    """New tokens for a refresh token's claims, for `signed_in`: the user is read again, so a
    disabled user or a changed password stops refreshes at once."""

    def attempt(session: Session) -> TokenPair:
        user = accounts.active_user(session, claims["sub"], claims.get("ver"))
        grants = accounts.user_grants(session, user.id)
        return tokens.issue(settings, user.username, user.token_version, grants)

    return attempt


def signed_in(
    sessions: sessionmaker[Session],
    limiter: LoginLimiter,
    username: str,
    address: str,
    action: str,
    attempt: Callable[[Session], TokenPair],
    *,
    request_id: str | None = None,
) -> TokenPair:
    """Run a sign-in `attempt` (in one transaction, returning tokens), audited whatever its
    outcome, with failures counted against the user name and the address."""
    limiter.check(username, address)
    outcome = "ok"
    try:
        with transaction(sessions) as session:
            pair = attempt(session)
    except SijillError as error:
        outcome = "denied" if error.status in (401, 403) else "invalid"
        if error.status == 401:
            limiter.failed(username, address)
        raise
    except BaseException:
        outcome = "failed"
        raise
    finally:
        name = username if outcome == "ok" else known_or_pseudonym(sessions, username)
        entry = AuditEntry(
            actor=name,
            role=None,
            action=action,
            outcome=outcome,
            record_type="user",
            record_id=name,
            request_id=request_id,
        )
        append_now(sessions, [entry])
    return pair


def known_or_pseudonym(sessions: sessionmaker[Session], username: str) -> str:
    """The name typed in a failed sign-in, if it is a user's; else a keyed pseudonym of it:
    people type all sorts there (their national ID, a password), none of it for the audit."""
    with sessions() as session:
        if accounts.user_exists(session, username):
            return username
    return "unknown:" + current_keyring().pseudonym("username", username)[:16]
