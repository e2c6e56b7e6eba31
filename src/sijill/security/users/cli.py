"""`sijill login | logout | whoami` and `sijill users ...`: the CLI acts as a named user."""

import typer

from sijill.core.db import make_engine, session_factory
from sijill.core.errors import InvalidInput
from sijill.core.settings import get_settings
from sijill.security.cli_common import (
    Column,
    Output,
    OutputOption,
    acting_user,
    audited_transaction,
    console,
    emit,
    emit_one,
)
from sijill.security.keys.keyring import install_keyring
from sijill.security.users import accounts, signin, tokens
from sijill.security.users.cli_session import forget_session, save_session
from sijill.security.users.signin import LoginLimiter

users_app = typer.Typer(help="Users, their roles and areas.", no_args_is_help=True)

ROLE_HELP = "role, or role:AREA_CODE for one area and all below it (repeat for several)"


def _roles(grants) -> list[str]:
    """Grants as `role:AREA_CODE`, `role:national` for the whole country."""
    return [f"{g.role}:{g.area_code or 'national'}" for g in grants]


def login(
    user: str = typer.Option(..., "--user", "-u", prompt=True, help="your user name"),
    output: OutputOption = Output.table,
) -> None:
    """Sign in on this machine; the next commands run as you. A one-time password (from the
    install or an administrator) is replaced by one you choose, here.

    Example: sijill login --user amira
    """
    settings = get_settings()
    install_keyring(settings)
    # Prompts stay off stdout when it carries a result for a script.
    prompts_on_stderr = output is not Output.table
    password = typer.prompt("Password", hide_input=True, err=prompts_on_stderr)
    engine = make_engine(settings.database_url)
    granted = []

    def attempt(session):
        account, grants = accounts.authenticate(session, user, password, allow_one_time=True)
        if account.password_one_time:
            console.print("This is a one-time password: choose your own.")
            new = typer.prompt(
                "New password", hide_input=True, confirmation_prompt=True, err=prompts_on_stderr
            )
            accounts.change_password(session, user, password, new)
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
    roles = _roles(granted)
    emit_one(
        {"username": user, "roles": roles},
        output,
        message=f"Signed in as {user} ({', '.join(roles)}).",
    )


def logout(output: OutputOption = Output.table) -> None:
    """Forget the session of `sijill login` on this machine.

    Example: sijill logout
    """
    forgotten = forget_session(get_settings())
    emit_one(
        {"signed_out": forgotten},
        output,
        message="Signed out." if forgotten else "You were not signed in.",
    )


def whoami(output: OutputOption = Output.table) -> None:
    """The user the next commands run as, with their roles and areas.

    Example: sijill whoami
    """
    with acting_user() as (_, principal):
        roles = _roles(principal.grants)
    emit_one(
        {"username": principal.username, "roles": roles},
        output,
        echo=f"{principal.username} ({', '.join(roles)})",
    )


def _grants(roles: list[str]) -> list[accounts.GrantSpec]:
    if not roles:
        raise InvalidInput("Give at least one --role")
    return [accounts.GrantSpec.parse(role) for role in roles]


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="the new user's name"),
    role: list[str] = typer.Option([], "--role", "-r", help=ROLE_HELP),
    service: bool = typer.Option(False, help="a service account for scripts (has a key)"),
    output: OutputOption = Output.table,
) -> None:
    """Create a user. Their one-time password (a service account's key) is printed once.

    Example: sijill users add amira --role registrar:SJ0101
    """
    grants = _grants(role)
    with acting_user() as (sessions, principal), audited_transaction(sessions, principal) as s:
        secret = accounts.create_user(s, principal, username, grants, service=service)
    key = f"{username}:{secret}" if service else None
    emit_one(
        {"username": username, "secret": secret, "service_key": key},
        output,
        echo=f"Service key for {username} (shown once): {key}\n"
        f"Use it as: export SIJILL_SERVICE_KEY='{key}'"
        if service
        else f"One-time password for {username} (shown once): {secret}",
    )


@users_app.command("roles")
def users_roles(
    username: str = typer.Argument(..., help="the user"),
    role: list[str] = typer.Option([], "--role", "-r", help=ROLE_HELP),
    output: OutputOption = Output.table,
) -> None:
    """Replace a user's roles and areas (their refresh tokens stop working).

    Example: sijill users roles amira --role registrar:SJ0101 --role grievance_officer:SJ01
    """
    grants = _grants(role)
    with acting_user() as (sessions, principal), audited_transaction(sessions, principal) as s:
        accounts.set_grants(s, principal, username, grants)
    emit_one(
        {"username": username, "roles": _roles(grants)},
        output,
        message=f"Roles of {username} replaced.",
    )


@users_app.command("disable")
def users_disable(
    username: str = typer.Argument(..., help="the user"),
    output: OutputOption = Output.table,
) -> None:
    """Stop a user from signing in or refreshing tokens.

    Example: sijill users disable amira
    """
    with acting_user() as (sessions, principal), audited_transaction(sessions, principal) as s:
        accounts.set_disabled(s, principal, username, True)
    emit_one({"username": username, "disabled": True}, output, message=f"{username} is disabled.")


@users_app.command("enable")
def users_enable(
    username: str = typer.Argument(..., help="the user"),
    output: OutputOption = Output.table,
) -> None:
    """Let a disabled user sign in again.

    Example: sijill users enable amira
    """
    with acting_user() as (sessions, principal), audited_transaction(sessions, principal) as s:
        accounts.set_disabled(s, principal, username, False)
    emit_one({"username": username, "disabled": False}, output, message=f"{username} is enabled.")


@users_app.command("reset")
def users_reset(
    username: str = typer.Argument(..., help="the user"),
    output: OutputOption = Output.table,
) -> None:
    """Give a user a new one-time password (a service account a new key).

    Example: sijill users reset amira
    """
    with acting_user() as (sessions, principal), audited_transaction(sessions, principal) as s:
        secret = accounts.reset_password(s, principal, username)
    emit_one(
        {"username": username, "secret": secret},
        output,
        echo=f"New one-time password for {username} (shown once): {secret}",
    )


@users_app.command("list")
def users_list(output: OutputOption = Output.table) -> None:
    """The users you manage, with their roles and areas.

    Example: sijill users list
    """
    with acting_user() as (sessions, principal), audited_transaction(sessions, principal) as s:
        views = accounts.list_users(s, principal)
    rows = []
    for view in views:
        state = "disabled" if view.disabled else ("service" if view.is_service else "active")
        if view.password_one_time and not view.disabled:
            state += " (one-time password)"
        rows.append({"username": view.username, "roles": _roles(view.grants), "state": state})
    emit(rows, [Column("username", "user"), "roles", "state"], output)


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    app.add_typer(users_app, name="users")
