"""The HTTP API: `create_app(settings)` assembles each stage's router into one FastAPI app.

Nothing is created at import time: the engine and the session factory are made by the factory
and kept on `app.state`, so tests build the app exactly as production does.

Every error is an RFC 9457 problem (`application/problem+json`) with field-level `errors`.
Request bodies, query strings and personal data are never logged.
"""

import logging
import os
import traceback
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sijill import __version__
from sijill.core.db import make_engine, session_factory
from sijill.core.errors import SijillError
from sijill.core.settings import Settings

logger = logging.getLogger("sijill.api")
PROBLEM_JSON = "application/problem+json"


# --- dependencies every router declares --------------------------------------------------------


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, else rolled back."""
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


async def get_actor() -> str:
    """Who is acting, for `recorded_by`. Until sign-in exists (security stage) it is the API."""
    return "api"


# scope="function": the commit happens before the response is sent, so a 2xx means stored,
# and a loop session's connection goes back to its pool before another request can run.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
LoopSessionDep = Annotated[Session, Depends(get_loop_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ActorDep = Annotated[str, Depends(get_actor)]


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
    404: "Not found",
    409: "Conflict: changed by someone else since it was read",
    422: "Invalid input, with the problem of each field",
    500: "Internal error",
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
    return problem(
        error.status, error.detail, title=error.title, errors=errors, instance=request.url.path
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

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        _redact_access_log()
        yield
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

    app.add_exception_handler(SijillError, _sijill_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(CrashToProblem)

    @app.get("/health", tags=["health"], operation_id="health", response_model=Health)
    def health(session: SessionDep) -> Health:
        session.execute(text("SELECT 1"))
        return Health(status="ok", database="ok", version=__version__)

    from sijill.registry.api import router as registry_router

    app.include_router(registry_router, responses=problem_responses(422, 500))
    _add_problem_schema(app)
    return app


def _add_problem_schema(app: FastAPI) -> None:
    """Put the Problem schema into the OpenAPI document, where problem_responses point."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["ProblemFieldError"] = ProblemFieldError.model_json_schema()
            components["Problem"] = Problem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            components["Problem"].pop("$defs", None)
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

    options = {"host": settings.host, "port": settings.port, "access_log": access_log}
    if workers <= 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Workers are separate processes that build their own app: hand them the settings
    # through the environment they inherit.
    for name, value in settings.model_dump().items():
        if value is not None:
            os.environ[f"SIJILL_{name.upper()}"] = str(value)
    uvicorn.run("sijill.api:app_from_environment", factory=True, workers=workers, **options)
