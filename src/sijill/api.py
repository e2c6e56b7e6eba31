"""The HTTP API: `create_app(settings)` assembles each stage's router into one FastAPI app.

Nothing is created at import time: the engine and the session factory are made by the factory
and kept on `app.state`, so tests build the app exactly as production does.

Every error is an RFC 9457 problem (`application/problem+json`) with field-level `errors`.
Request bodies, query strings and personal data are never logged.

Every route but `/health` and signing in needs a bearer token (`PrincipalDep`). A request's
audit entries are appended in its own transaction when it succeeds (`SessionDep`), in one of
their own when it is refused or fails, and through the group-committing `AuditWriter` on the
reads served from the event loop.
"""

import gc
import logging
import os
import re
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sijill import __version__
from sijill.core.db import make_engine, session_factory
from sijill.core.errors import FieldError, InvalidInput, SijillError, Unauthenticated
from sijill.core.settings import Settings
from sijill.registry.codes import DATA_SHARING_PREFIX
from sijill.security import audit
from sijill.security.authn import principal_from_token
from sijill.security.keys import install_keyring
from sijill.security.principal import AGENCY, PURPOSES, Principal, purpose_problem

logger = logging.getLogger("sijill.api")
PROBLEM_JSON = "application/problem+json"


# --- dependencies every router declares --------------------------------------------------------


PURPOSE_PATTERN = f"^$|^({'|'.join(PURPOSES)})$|^{DATA_SHARING_PREFIX}{AGENCY.pattern}$"
_BEARER = "HTTPBearer"  # the security scheme's name in the OpenAPI document


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


# --- problems (RFC 9457) -----------------------------------------------------------------------


class ProblemFieldError(BaseModel):
    field: str = Field(description="dotted path of the field, e.g. members.0.birth_date")
    message: str


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[ProblemFieldError] = Field(default_factory=list)


def _problem_response(status: int, description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {PROBLEM_JSON: {"schema": schema}}}


_PROBLEM_DESCRIPTIONS = {
    401: "Not signed in, or the token is not valid (any more)",
    403: "The user's roles, or the household's consent, do not allow this",
    404: "Not found",
    409: "Conflict: changed by someone else since it was read",
    413: "The request body is too large",
    422: "Invalid input, with the problem of each field",
    429: "Too many requests",
    500: "Internal error",
    503: "The audit record could not be written, so the request was not served",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` documenting problem+json answers with these statuses."""
    return {status: _problem_response(status, _PROBLEM_DESCRIPTIONS[status]) for status in statuses}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problem(
    status: int,
    detail: str | None,
    *,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body["errors"] = errors or []
    return ProblemResponse(body, status_code=status, headers=headers)


def _field_path(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie") and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)


def _message(error: dict[str, Any]) -> str:
    return error["msg"].removeprefix("Value error, ")


async def _sijill_error(request: Request, error: SijillError) -> ProblemResponse:
    errors = [{"field": e.field, "message": e.message} for e in error.errors]
    for item, e in zip(errors, error.errors, strict=True):
        if e.row is not None:
            item["row"] = e.row
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    if error.status == 429:
        headers = {"Retry-After": "60"}
    return problem(
        error.status,
        error.detail,
        title=error.title,
        errors=errors,
        instance=request.url.path,
        headers=headers,
    )


async def _validation_error(request: Request, error: RequestValidationError) -> ProblemResponse:
    errors = []
    for item in error.errors():
        if item.get("type") == "json_invalid":
            errors.append({"field": "body", "message": "the body is not valid JSON"})
            continue
        errors.append({"field": _field_path(tuple(item["loc"])), "message": _message(item)})
    count = len(errors)
    detail = f"The request has {count} invalid field{'s' if count != 1 else ''}"
    return problem(422, detail, title="Invalid input", errors=errors, instance=request.url.path)


async def _http_error(request: Request, error: StarletteHTTPException) -> ProblemResponse:
    if error.status_code == 400 and error.detail == "There was an error parsing the body":
        # FastAPI's own answer to a body that is not UTF-8: the same problem as bad JSON.
        errors = [{"field": "body", "message": "the body is not valid JSON"}]
        detail = "The request has 1 invalid field"
        return problem(422, detail, title="Invalid input", errors=errors, instance=request.url.path)
    phrase = HTTPStatus(error.status_code).phrase
    detail = error.detail if error.detail and error.detail != phrase else None
    return problem(error.status_code, detail, instance=request.url.path, headers=error.headers)


class CrashToProblem:
    """An unexpected error becomes a 500 problem that says nothing of the internals.

    The log gets the error's type, the route and the traceback's frames, but not the error's
    message: database errors carry the values of the row that failed.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            route = getattr(scope.get("route"), "path", "?")
            frames = "".join(traceback.format_tb(error.__traceback__))
            logger.error(
                "Unexpected %s in %s %s\n%s", type(error).__name__, scope["method"], route, frames
            )
            if started:
                raise
            response = problem(500, "The server met an unexpected error; it has been logged")
            await response(scope, receive, send)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_DOCS_PATHS = ("/docs", "/docs/oauth2-redirect")
# The interactive docs page loads Swagger UI from its CDN; every other answer is data.
_DOCS_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src https://cdn.jsdelivr.net; img-src https://fastapi.tiangolo.com data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)
_DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
]


class Hardening:
    """Every request gets an ID (the client's X-Request-ID if well-formed, else a new one),
    a body size limit (413 beyond it) and, on its answer, security headers; answers are
    never cached, since most carry personal data."""

    def __init__(self, app: ASGIApp, max_body: int):
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                text_value = value.decode("latin-1")
                request_id = text_value if _REQUEST_ID.fullmatch(text_value) else None
            elif name == b"content-length":
                length = int(value) if value.isdigit() else None
        request_id = request_id or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        policy = _DOCS_POLICY if scope["path"] in _DOCS_PATHS else _DATA_POLICY
        extra = [
            *_SECURITY_HEADERS,
            (b"content-security-policy", policy.encode()),
            (b"x-request-id", request_id.encode()),
        ]
        started = False
        refused = False  # a 413 was sent: whatever the app answers after is dropped

        async def secured_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers + extra
            await send(message)

        if length is not None and length > self.max_body:
            await self._too_large(scope, receive, secured_send)
            return
        received = 0

        async def limited_receive() -> Message:
            # A body sent in chunks, without a length, is counted as it arrives: past the
            # limit the client gets its 413 and the app sees the client gone.
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body and not started:
                    await self._too_large(scope, receive, secured_send)
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, limited_receive, secured_send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413, f"The request body is larger than the limit of {self.max_body:,} bytes"
        )
        await response(scope, receive, send)


class _NoQueryStrings(logging.Filter):
    """Access log lines keep the path but drop the query: searches carry names and IDs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            if isinstance(args[2], str):
                args[2] = args[2].split("?", 1)[0]
            record.args = tuple(args)
        return True


def _redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _NoQueryStrings) for f in access.filters):
        access.addFilter(_NoQueryStrings())


# --- the app -----------------------------------------------------------------------------------


class Health(BaseModel):
    status: str
    database: str
    version: str


def _engine(settings: Settings, **options: Any) -> Engine:
    return make_engine(
        settings.database_url,
        # An error from the database never carries a person's data into a log.
        hide_parameters=True,
        # No ping before each checkout: it would double the round trips of the hottest read.
        # After a database restart the first query on a dead connection fails, and that
        # failure discards every pooled connection at once.
        pool_pre_ping=False,
        json_serializer=lambda value: orjson.dumps(value).decode(),
        json_deserializer=orjson.loads,
        **options,
    )


def create_app(settings: Settings) -> FastAPI:
    engine = _engine(settings)
    # The event loop reads one request at a time: a small pool of its own is plenty.
    loop_engine = _engine(settings, isolation_level="AUTOCOMMIT", pool_size=2)

    install_keyring(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        _redact_access_log()
        # What exists once the app is built (modules, routes, models, pools) lives as long as
        # the process: taken out of the collector's reach, a full collection walks only what
        # requests left behind. Otherwise each one walks a million objects, ~100 ms during
        # which every request of the worker waits; objects of requests waiting for their
        # audit commit live long enough to be promoted, which makes full collections frequent.
        gc.collect()
        gc.freeze()
        yield
        await app.state.audit_writer.close()
        engine.dispose()
        loop_engine.dispose()

    app = FastAPI(
        title="Sijill",
        summary="Social registry and social protection delivery system",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        # No response class is set on purpose: with a response model FastAPI serialises
        # straight to JSON bytes in pydantic-core, faster than ORJSONResponse. Problems are
        # rendered with orjson (ProblemResponse).
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.loop_engine = loop_engine
    app.state.loop_sessions = session_factory(loop_engine)
    app.state.audit_writer = audit.AuditWriter(
        app.state.sessions, wait_for_flush=settings.audit_reads_wait_for_flush
    )

    app.add_exception_handler(SijillError, _sijill_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(CrashToProblem)
    if settings.cors_origins:
        # Closed unless origins are configured: the API is not for arbitrary web pages.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Authorization", "Content-Type", "X-Purpose", "X-Request-ID"],
        )
    app.add_middleware(Hardening, max_body=settings.max_request_bytes)

    @app.get("/health", tags=["health"], operation_id="health", response_model=Health)
    def health(session: PublicSessionDep) -> Health:
        session.execute(text("SELECT 1"))
        return Health(status="ok", database="ok", version=__version__)

    from sijill.registry.api import router as registry_router
    from sijill.registry.api import summary_router
    from sijill.security.api import router as auth_router
    from sijill.security.audit_api import router as audit_router

    common = problem_responses(413, 422, 500)
    app.include_router(auth_router, responses=common)
    protected = {**common, **problem_responses(401, 403, 503)}
    app.include_router(registry_router, responses=protected)
    app.include_router(summary_router, responses=protected)
    app.include_router(audit_router, responses=protected)
    _complete_openapi(app)
    return app


_PURPOSE_PARAMETER = {
    "name": "X-Purpose",
    "in": "header",
    "required": False,
    "description": "what the data is used for (eligibility_assessment, payment, research, "
    "data_sharing:<agency>, ...); by default the purpose of the user's role",
    "schema": {"type": "string", "maxLength": 64, "pattern": PURPOSE_PATTERN},
}


def _depends_on(dependant: Dependant, call: Any) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def _complete_openapi(app: FastAPI) -> None:
    """Put into the OpenAPI document the Problem schema, where problem_responses point, and
    on every route that needs a principal, the bearer token and the X-Purpose header that
    `get_principal` reads itself."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            schemas["ProblemFieldError"] = ProblemFieldError.model_json_schema()
            schemas["Problem"] = Problem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            schemas["Problem"].pop("$defs", None)
            components.setdefault("securitySchemes", {})[_BEARER] = {
                "type": "http",
                "scheme": "bearer",
                "description": "An access token from POST /auth/token "
                "(or from the configured OIDC provider)",
            }
            for context in iter_route_contexts(app.routes):
                route = context.original_route
                if not isinstance(route, APIRoute) or not route.include_in_schema:
                    continue
                if not _depends_on(route.dependant, get_principal):
                    continue
                for method in route.methods:
                    operation = schema["paths"][context.path_format][method.lower()]
                    operation.setdefault("security", []).append({_BEARER: []})
                    operation.setdefault("parameters", []).append(_PURPOSE_PARAMETER)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory` and for each worker of `serve(workers=N)`."""
    return create_app(Settings())


def serve(settings: Settings, *, workers: int = 1, access_log: bool = False) -> None:
    """Run the API with uvicorn on settings.host:settings.port.

    The access log is off by default: it costs about a sixth of the hottest read's time, and
    a reverse proxy in front usually keeps one. When on, its lines carry no query strings.
    """
    import uvicorn

    from sijill.serving import run_workers

    if workers <= 1:
        uvicorn.run(
            create_app(settings), host=settings.host, port=settings.port, access_log=access_log
        )
        return
    # Workers are separate processes that build their own app: hand them the settings
    # through the environment they inherit.
    for name, value in settings.model_dump().items():
        if value is not None:
            os.environ[f"SIJILL_{name.upper()}"] = str(value)
    run_workers(
        "sijill.api:app_from_environment",
        settings.host,
        settings.port,
        workers,
        access_log=access_log,
    )
