"""`sijill login | logout | whoami` and `sijill users ...`: the CLI acts as a named user."""

import typer
from rich.console import Console
from rich.table import Table

from sijill.core.db import make_engine, session_factory
from sijill.core.errors import InvalidInput
from sijill.core.settings import get_settings
from sijill.security import signin, tokens, users
from sijill.security.cli_auth import forget_session, save_session
from sijill.security.cli_common import acting_user, audited_transaction, console
from sijill.security.keys.keyring import install_keyring
from sijill.security.signin import LoginLimiter

users_app = typer.Typer(help="Users, their roles and areas.", no_args_is_help=True)

ROLE_HELP = "role, or role:AREA_CODE for one area and all below it (repeat for several)"


def login(
    user: str = typer.Option(..., "--user", "-u", prompt=True, help="your user name"),
) -> None:
    """Sign in on this machine; the next commands run as you. A one-time password (from the
    install or an administrator) is replaced by one you choose, here.

    Example: sijill login --user amira
    """
    settings = get_settings()
    install_keyring(settings)
    password = typer.prompt("Password", hide_input=True)
    engine = make_engine(settings.database_url)
    granted = []

    def attempt(session):
        account, grants = users.authenticate(session, user, password, allow_one_time=True)
        if account.password_one_time:
            console.print("This is a one-time password: choose your own.")
            new = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
            users.change_password(session, user, password, new)
        granted.extend(grants)
        return tokens.issue(settings, account.username, account.token_version, grants)

    try:
        limiter = LoginLimiter(settings.login_attempts_per_minute)
        pair = signin.signed_in(
            session_factory(engine), limiter, user, "cli", "auth.sign_in", attempt
        )
    finally:
        engine.dispose()
    save_session(settings, pair)
    roles = ", ".join(f"{g.role}:{g.area_code or 'national'}" for g in granted)
    console.print(f"Signed in as {user} ({roles}).")


def logout() -> None:
    """Forget the session of `sijill login` on this machine.

    Example: sijill logout
    """
    forgotten = forget_session(get_settings())
    console.print("Signed out." if forgotten else "You were not signed in.")


def whoami() -> None:
    """The user the next commands run as, with their roles and areas.

    Example: sijill whoami
    """
    with acting_user() as (_, principal):
        roles = ", ".join(f"{g.role}:{g.area_code or 'national'}" for g in principal.grants)
        typer.echo(f"{principal.username} ({roles})")


def _grants(roles: list[str]) -> list[users.GrantSpec]:
    if not roles:
        raise InvalidInput("Give at least one --role")
    return [users.GrantSpec.parse(role) for role in roles]


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="the new user's name"),
    role: list[str] = typer.Option([], "--role", "-r", help=ROLE_HELP),
    service: bool = typer.Option(False, help="a service account for scripts (has a key)"),
) -> None:
    """Create a user. Their one-time password (a service account's key) is printed once.

    Example: sijill users add amira --role registrar:SJ0101
    """
    grants = _grants(role)
    with acting_user() as (sessions, principal), audited_transaction(sessions, principal) as s:
        secret = users.create_user(s, principal, username, grants, service=service)
    if service:
        typer.echo(f"Service key for {username} (shown once): {username}:{secret}")
        typer.echo(f"Use it as: export SIJILL_SERVICE_KEY='{username}:{secret}'")
    else:
        typer.echo(f"One-time password for {username} (shown once): {secret}")


@users_app.command("roles")
def users_roles(
    username: str = typer.Argument(..., help="the user"),
    role: list[str] = typer.Option([], "--role", "-r", help=ROLE_HELP),
) -> None:
    """Replace a user's roles and areas (their refresh tokens stop working).

    Example: sijill users roles amira --role registrar:SJ0101 --role grievance_officer:SJ01
    """
    grants = _grants(role)
    with acting_user() as (sessions, principal), audited_transaction(sessions, principal) as s:
        users.set_grants(s, principal, username, grants)
    console.print(f"Roles of {username} replaced.")


@users_app.command("disable")
def users_disable(username: str = typer.Argument(..., help="the user")) -> None:
    """Stop a user from signing in or refreshing tokens.

    Example: sijill users disable amira
    """
    with acting_user() as (sessions, principal), audited_transaction(sessions, principal) as s:
        users.set_disabled(s, principal, username, True)
    console.print(f"{username} is disabled.")


@users_app.command("enable")
def users_enable(username: str = typer.Argument(..., help="the user")) -> None:
    """Let a disabled user sign in again.

    Example: sijill users enable amira
    """
    with acting_user() as (sessions, principal), audited_transaction(sessions, principal) as s:
        users.set_disabled(s, principal, username, False)
    console.print(f"{username} is enabled.")


@users_app.command("reset")
def users_reset(username: str = typer.Argument(..., help="the user")) -> None:
    """Give a user a new one-time password (a service account a new key).

    Example: sijill users reset amira
    """
    with acting_user() as (sessions, principal), audited_transaction(sessions, principal) as s:
        secret = users.reset_password(s, principal, username)
    typer.echo(f"New one-time password for {username} (shown once): {secret}")


@users_app.command("list")
def users_list() -> None:
    """The users you manage, with their roles and areas.

    Example: sijill users list
    """
    with acting_user() as (sessions, principal), audited_transaction(sessions, principal) as s:
        views = users.list_users(s, principal)
    table = Table("user", "roles", "state")
    for view in views:
        roles = ", ".join(f"{g.role}:{g.area_code or 'national'}" for g in view.grants)
        state = "disabled" if view.disabled else ("service" if view.is_service else "active")
        if view.password_one_time and not view.disabled:
            state += " (one-time password)"
        table.add_row(view.username, roles, state)
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    app.add_typer(users_app, name="users")
