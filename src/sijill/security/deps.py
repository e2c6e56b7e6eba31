"""What every router declares: the signed-in principal, the request's transaction with its
audit entries, the event loop's read session, the settings.

Routers import these; the app factory (`sijill.api`) only assembles the routers, so no router
imports the module that assembles it.
"""

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from sijill.core.errors import FieldError, InvalidInput, Unauthenticated
from sijill.core.settings import Settings
from sijill.security.audit import service as audit
from sijill.security.consent import AGENCY_PATTERN, DATA_SHARING_PREFIX
from sijill.security.principal import PURPOSES, Principal, purpose_problem
from sijill.security.users.authn import principal_from_token

PURPOSE_PATTERN = f"^$|^({'|'.join(PURPOSES)})$|^{DATA_SHARING_PREFIX}{AGENCY_PATTERN}$"
BEARER_SCHEME = "HTTPBearer"  # the security scheme's name in the OpenAPI document


async def get_principal(request: Request) -> Principal:
    """The signed-in user of the bearer token, and the purpose the X-Purpose header declares.

    The two headers are read here rather than through FastAPI's HTTPBearer and Header
    parameters: two fewer dependencies to resolve on every request, about 40 µs of the
    hottest read's 650. `_document_security` puts both into the OpenAPI document.
    """
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Sign in first: send Authorization: Bearer <access token>")
    declared = request.headers.get("x-purpose")
    problem_text = purpose_problem(declared) if declared else None
    if problem_text:
        raise InvalidInput(
            "The request has 1 invalid field", [FieldError("X-Purpose", problem_text)]
        )
    principal = principal_from_token(
        request.app.state.settings, token.strip(), request.app.state.loop_sessions
    )
    principal.declared_purpose = declared or None
    principal.request_id = request.state.request_id
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_session(request: Request, principal: PrincipalDep) -> Iterator[Session]:
    """One transaction per request, with its audit entries: committed when the handler
    returns, else rolled back and the entries of the refusal appended on their own."""
    sessions = request.app.state.sessions
    try:
        with sessions.begin() as session:
            yield session
            audit.append(session, principal.take_audit())
    except BaseException:
        entries = principal.take_audit()
        if entries:
            audit.append_now(sessions, entries)
        raise


def get_public_session(request: Request) -> Iterator[Session]:
    """A transaction for the routes open to all (health): no personal data, no audit."""
    with request.app.state.sessions.begin() as session:
        yield session


async def get_loop_session(request: Request) -> AsyncIterator[Session]:
    """A session for `async` handlers that read on the event loop itself.

    For short indexed reads only (one statement, or a few), where handing the work to a worker
    thread and back costs more than the read. Its connections come from a pool of their own,
    in autocommit mode: handing one back sends nothing to the database, and no worker thread
    can hold the connection the event loop waits for. Never `await` while using it.
    """
    session = request.app.state.loop_sessions()
    try:
        yield session
    finally:
        session.close()


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def record_audit(request: Request, principal: Principal) -> None:
    """Append a loop-served request's audit entries; returns once they are committed."""
    entries = principal.take_audit()
    if entries:
        await request.app.state.audit_writer.record(entries)


# scope="function": the commit happens before the response is sent, so a 2xx means stored,
# and a loop session's connection goes back to its pool before another request can run.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
PublicSessionDep = Annotated[Session, Depends(get_public_session, scope="function")]
LoopSessionDep = Annotated[Session, Depends(get_loop_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
