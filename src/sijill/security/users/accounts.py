"""Users: create, grant roles in areas, disable, sign in, change passwords.

Managing users is itself scoped: an administrator of a governorate can only grant roles in
areas inside it, and only manage users whose every grant lies inside it.
"""

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.areas import Area
from sijill.core.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from sijill.security.principal import Grant, Principal
from sijill.security.roles import ROLES, Permission
from sijill.security.users.models import RoleGrant, User
from sijill.security.users.passwords import (
    SAME_AS_OLD,
    generate_password,
    hash_password,
    password_problem,
    verify_password,
)

FIRST_ADMINISTRATOR = "admin"


@dataclass(frozen=True)
class GrantSpec:
    """A role and the code of the area it holds in (None: the whole country)."""

    role: str
    area_code: str | None = None

    @classmethod
    def parse(cls, text: str) -> "GrantSpec":
        """`role` or `role:AREA_CODE`, as typed on the command line."""
        role, _, area = text.strip().partition(":")
        if role not in ROLES:
            raise InvalidInput(f"'{role}' is not a role: use one of {', '.join(ROLES)}")
        return cls(role, area or None)


@dataclass(frozen=True)
class UserView:
    username: str
    disabled: bool
    is_service: bool
    password_one_time: bool
    grants: tuple[Grant, ...]


def user_grants(session: Session, user_id: int) -> list[Grant]:
    rows = session.execute(
        select(RoleGrant.role, RoleGrant.area_id, Area.code)
        .outerjoin(Area, Area.id == RoleGrant.area_id)
        .where(RoleGrant.user_id == user_id)
        .order_by(RoleGrant.id)
    )
    return [Grant(role, area_id, code) for role, area_id, code in rows]


def _user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def user_exists(session: Session, username: str) -> bool:
    return _user(session, username) is not None


def _managed_user(session: Session, principal: Principal, username: str) -> User:
    """A user the principal may manage; others answer as missing."""
    scope = principal.scope(session, Permission.USERS_MANAGE)
    user = _user(session, username)
    if user is not None and not scope.national:
        grants = user_grants(session, user.id)
        if not grants or not all(scope.allows(g.area_id) for g in grants):
            user = None
    if user is None:
        raise NotFound(f"There is no user '{username}'")
    return user


def _resolve_grants(
    session: Session, principal: Principal | None, specs: list[GrantSpec]
) -> list[tuple[str, int | None]]:
    if not specs:
        raise InvalidInput("A user needs at least one role")
    scope = principal.scope(session, Permission.USERS_MANAGE) if principal else None
    resolved = []
    for spec in specs:
        area_id = None
        if spec.area_code:
            area_id = session.scalar(select(Area.id).where(Area.code == spec.area_code))
            if area_id is None:
                raise InvalidInput(f"There is no area with code '{spec.area_code}'")
        if scope is not None and not scope.national and not scope.allows(area_id):
            raise Forbidden(
                f"You may grant roles only in your own areas, not in "
                f"{spec.area_code or 'the whole country'}"
            )
        resolved.append((spec.role, area_id))
    return list(dict.fromkeys(resolved))


def _check_username(username: str) -> None:
    if not (1 <= len(username) <= 64) or not all(c.isalnum() or c in "._-" for c in username):
        raise InvalidInput("A user name is 1 to 64 letters, digits, dots, dashes or underscores")
    if username.startswith("system"):
        raise InvalidInput("User names starting with 'system' are reserved")


def create_user(
    session: Session,
    principal: Principal,
    username: str,
    grants: list[GrantSpec],
    *,
    service: bool = False,
    password: str | None = None,
) -> str:
    """Create a user; returns their one-time password (or a service account's key).

    A password given by the creator is one-time too: its holder must choose their own.
    """
    principal.require(Permission.USERS_MANAGE, record_type="user", record_id=username)
    _check_username(username)
    resolved = _resolve_grants(session, principal, grants)
    if _user(session, username) is not None:
        raise Conflict(f"There is already a user '{username}'")
    secret = password or generate_password()
    user = User(
        username=username,
        password_hash=hash_password(secret),
        # A service key is used as it is, by a program; a person's password is theirs to set.
        password_one_time=not service,
        is_service=service,
        disabled=False,
        token_version=1,
        created_at=clock.utcnow(),
        created_by=principal.username,
    )
    session.add(user)
    session.flush()
    session.add_all(RoleGrant(user_id=user.id, role=r, area_id=a) for r, a in resolved)
    session.flush()
    principal.audit("users.create", "ok", "user", username, permission=Permission.USERS_MANAGE)
    return secret


def set_grants(
    session: Session, principal: Principal, username: str, grants: list[GrantSpec]
) -> None:
    principal.require(Permission.USERS_MANAGE, record_type="user", record_id=username)
    user = _managed_user(session, principal, username)
    resolved = _resolve_grants(session, principal, grants)
    if user.username == principal.username and not any(r == "administrator" for r, _ in resolved):
        raise InvalidInput("You cannot take away your own administrator role")
    session.execute(delete(RoleGrant).where(RoleGrant.user_id == user.id))
    session.add_all(RoleGrant(user_id=user.id, role=r, area_id=a) for r, a in resolved)
    user.token_version += 1
    session.flush()
    principal.audit("users.roles", "ok", "user", username, permission=Permission.USERS_MANAGE)


def set_disabled(session: Session, principal: Principal, username: str, disabled: bool) -> None:
    principal.require(Permission.USERS_MANAGE, record_type="user", record_id=username)
    user = _managed_user(session, principal, username)
    if disabled and user.username == principal.username:
        raise InvalidInput("You cannot disable yourself")
    user.disabled = disabled
    user.token_version += 1
    session.flush()
    action = "users.disable" if disabled else "users.enable"
    principal.audit(action, "ok", "user", username, permission=Permission.USERS_MANAGE)


def reset_password(session: Session, principal: Principal, username: str) -> str:
    """A new one-time password (or service key) for a user; earlier tokens stop refreshing."""
    principal.require(Permission.USERS_MANAGE, record_type="user", record_id=username)
    user = _managed_user(session, principal, username)
    secret = generate_password()
    user.password_hash = hash_password(secret)
    user.password_one_time = not user.is_service
    user.token_version += 1
    session.flush()
    principal.audit("users.reset", "ok", "user", username, permission=Permission.USERS_MANAGE)
    return secret


def list_users(session: Session, principal: Principal) -> list[UserView]:
    scope = principal.scope(session, Permission.USERS_MANAGE)
    views = []
    for user in session.scalars(select(User).order_by(User.username)):
        grants = tuple(user_grants(session, user.id))
        if not scope.national and not (grants and all(scope.allows(g.area_id) for g in grants)):
            continue
        views.append(
            UserView(user.username, user.disabled, user.is_service, user.password_one_time, grants)
        )
    principal.audit("users.list", "ok", "user", None, permission=Permission.USERS_MANAGE)
    return views


# --- signing in ---------------------------------------------------------------------------------

_BAD_CREDENTIALS = "The user name or password is wrong, or the user is disabled"


def authenticate(
    session: Session, username: str, password: str, *, allow_one_time: bool = False
) -> tuple[User, list[Grant]]:
    """The user whose password this is. One failure message for every cause, so that a guess
    does not learn which user names exist or are disabled."""
    user = _user(session, username)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or user.disabled:
        raise Unauthenticated(_BAD_CREDENTIALS)
    if user.password_one_time and not allow_one_time:
        raise Forbidden(
            "This is a one-time password: choose your own first (POST /auth/password, "
            "or `sijill login` on the command line)"
        )
    return user, user_grants(session, user.id)


def change_password(session: Session, username: str, password: str, new_password: str) -> None:
    user, _ = authenticate(session, username, password, allow_one_time=True)
    if user.is_service:
        raise InvalidInput("A service account's key is replaced with `sijill users reset`")
    problem = password_problem(new_password)
    if problem is None and new_password == password:
        problem = FieldError("new_password", SAME_AS_OLD, template=SAME_AS_OLD)
    if problem is not None:
        raise InvalidInput(problem.message, errors=[problem])
    user.password_hash = hash_password(new_password)
    user.password_one_time = False
    user.token_version += 1
    session.flush()


def active_user(session: Session, username: str, token_version: int | None = None) -> User:
    """A user who may still act (for refresh and OIDC); their tokens' version must be current."""
    user = _user(session, username)
    if user is None or user.disabled:
        raise Unauthenticated("The user does not exist or is disabled")
    if token_version is not None and token_version != user.token_version:
        raise Unauthenticated("The token was revoked; sign in again")
    return user


def bootstrap_administrator(session: Session) -> str | None:
    """On a registry with no user: create the first administrator and return their one-time
    password (shown once, never stored in clear). None if users exist already."""
    if session.scalar(select(func.count()).select_from(User)):
        return None
    installer = Principal.system("install")
    password = create_user(session, installer, FIRST_ADMINISTRATOR, [GrantSpec("administrator")])
    from sijill.security.audit.service import append

    append(session, installer.take_audit())
    return password


def create_first_administrator(settings) -> str | None:
    """On a registry without users, the first administrator; their one-time password."""
    from sijill.core.db import make_engine, session_factory, transaction
    from sijill.security.keys.keyring import install_keyring

    install_keyring(settings)
    engine = make_engine(settings.database_url)
    try:
        with transaction(session_factory(engine)) as session:
            return bootstrap_administrator(session)
    finally:
        engine.dispose()
