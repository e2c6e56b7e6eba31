"""The HTTP API: `create_app(settings)` assembles each stage's router into one FastAPI app.

Nothing is created at import time: the engine and the session factory are made by the factory
and kept on `app.state`, so tests build the app exactly as production does.

Every error is an RFC 9457 problem (`application/problem+json`, `sijill.core.problems`) with
field-level `errors`. Request bodies, query strings and personal data are never logged
(`sijill.middleware`).

Every route but `/health` and signing in needs a bearer token (`PrincipalDep`,
`sijill.security.deps`). A request's audit entries are appended in its own transaction when it
succeeds (`SessionDep`), in one of their own when it is refused or fails, and through the
group-committing `AuditWriter` on the reads served from the event loop.
"""

import gc
import os
from contextlib import asynccontextmanager
from typing import Any

import orjson
from anyio import to_thread
from fastapi import FastAPI, Response
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field
from sqlalchemy import Engine, text
from sqlalchemy.orm import configure_mappers

from sijill import __version__
from sijill.core.db import make_engine, session_factory
from sijill.core.problems import (
    Problem,
    ProblemFieldError,
    install_problem_handlers,
    problem_responses,
)
from sijill.core.settings import Settings
from sijill.jobs.runner import JobRunner
from sijill.middleware import CrashToProblem, Hardening, RequestLanguage, redact_access_log
from sijill.security.audit import service as audit
from sijill.security.audit.chain import chain_health
from sijill.security.deps import BEARER_SCHEME, PURPOSE_PATTERN, PublicSessionDep, get_principal
from sijill.security.keys.keyring import current_keyring, install_keyring
from sijill.security.keys.usage import missing_key_ids
from sijill.security.users.passwords import prepare_checks

# --- the app -----------------------------------------------------------------------------------


class Health(BaseModel):
    status: str
    database: str
    keys: str = Field(
        description="ok, or which keys the registry's values use that the keyring lacks"
    )
    audit_chain: str = Field(
        description="intact, or broken: audited actions answer 503 until an administrator "
        "runs `sijill audit repair` (signing in still works)"
    )
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
        redact_access_log()
        # What exists once the app is built (modules, routes, models, pools) lives as long as
        # the process: taken out of the collector's reach, a full collection walks only what
        # requests left behind. Otherwise each one walks a million objects, ~100 ms during
        # which every request of the worker waits; objects of requests waiting for their
        # audit commit live long enough to be promoted, which makes full collections frequent.
        # SQLAlchemy configures its mappers at their first use, so without this the first
        # request would build thousands of lasting objects after the freeze, and every full
        # collection would walk them (with ~40 mapped classes, twice the time per collection).
        configure_mappers()
        prepare_checks()
        gc.collect()
        gc.freeze()
        # anyio's default of 40 threads suits waiting on slow calls; a request here is mostly
        # Python, and dozens of threads of it contend for one interpreter lock (settings).
        to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        # Jobs a previous process left queued or running are said to be interrupted.
        app.state.jobs.interrupt_left_behind()
        yield
        app.state.jobs.shutdown()
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
    # Pages that only read: their transactions are READ ONLY on PostgreSQL, so they can end
    # with a commit. A rollback would make psycopg forget the connection's prepared statements,
    # and every page would then have each of its statements parsed and planned again.
    app.state.read_sessions = session_factory(engine.execution_options(postgresql_readonly=True))
    app.state.loop_engine = loop_engine
    app.state.loop_sessions = session_factory(loop_engine)
    app.state.audit_writer = audit.AuditWriter(
        app.state.sessions, wait_for_flush=settings.audit_reads_wait_for_flush
    )
    # Long work (imports, ...) in a few threads of this process: 202, then GET /jobs/{id}.
    app.state.jobs = JobRunner(app.state.sessions, settings)

    install_problem_handlers(app)
    app.add_middleware(CrashToProblem)
    if settings.cors_origins:
        # Closed unless origins are configured: the API is not for arbitrary web pages.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Authorization", "Content-Type", "X-Purpose", "X-Request-ID"],
        )
    from sijill.linkage.api import LINK_UPLOAD_PATH
    from sijill.registry.api import UPLOAD_PATH
    from sijill.targeting.api import EVALUATE_UPLOAD_PATH, FIT_UPLOAD_PATH
    from sijill.web.pages_jobs import PAGE_FORM_BYTES, UPLOAD_PAGES

    app.add_middleware(
        Hardening,
        max_body=settings.max_request_bytes,
        body_limits={
            UPLOAD_PATH: settings.max_upload_bytes,
            LINK_UPLOAD_PATH: settings.max_upload_bytes,
            FIT_UPLOAD_PATH: settings.max_upload_bytes,
            EVALUATE_UPLOAD_PATH: settings.max_upload_bytes,
            # A page's form also carries its CSRF token and fields: the page itself says
            # when its files are past the limit, in the page's language.
            **dict.fromkeys(UPLOAD_PAGES, settings.max_upload_bytes + PAGE_FORM_BYTES),
        },
        body_timeout=settings.request_body_timeout_seconds,
    )
    # Outermost: every answer, a refused body or a crash too, is in the request's language.
    app.add_middleware(RequestLanguage, default=settings.language)

    @app.get(
        "/health",
        tags=["health"],
        operation_id="health",
        response_model=Health,
        responses={503: {"model": Health, "description": "The server cannot serve the registry"}},
    )
    def health(session: PublicSessionDep, response: Response) -> Health:
        session.execute(text("SELECT 1"))
        status, keys = "ok", "ok"
        if missing := missing_key_ids(session.connection(), current_keyring()):
            # Every read of those values would fail: a balancer should take this server out.
            status, response.status_code = "failing", 503
            keys = f"the registry's values use key {', '.join(missing)}, not in this keyring"
        # The remembered verification and the chain's tip, not a walk of the whole chain.
        chain = chain_health(session)
        if not chain.ok and status == "ok":
            status = "degraded"  # sign-in still served; audited actions answer 503
        return Health(
            status=status, database="ok", keys=keys, audit_chain=chain.state, version=__version__
        )

    from sijill.analytics.api import router as analytics_router
    from sijill.jobs.api import router as jobs_router
    from sijill.linkage.api import router as linkage_router
    from sijill.payments.api import household_router as household_payments_router
    from sijill.payments.api import router as payments_router
    from sijill.payments.instrument_api import router as instruments_router
    from sijill.programs.api import router as programs_router
    from sijill.registry.api import imports_router
    from sijill.registry.api import router as registry_router
    from sijill.registry.merges.api import router as merges_router
    from sijill.registry.reviews.api import router as review_flags_router
    from sijill.security.audit.api import router as audit_router
    from sijill.security.users.api import router as auth_router
    from sijill.targeting.api import router as targeting_router

    common = problem_responses(413, 415, 422, 500)
    app.include_router(auth_router, responses=common)
    protected = {**common, **problem_responses(401, 403, 503)}
    app.include_router(registry_router, responses=protected)
    app.include_router(imports_router, responses=protected)
    app.include_router(review_flags_router, responses=protected)
    app.include_router(merges_router, responses=protected)
    app.include_router(linkage_router, responses=protected)
    app.include_router(targeting_router, responses=protected)
    app.include_router(programs_router, responses=protected)
    app.include_router(instruments_router, responses=protected)
    app.include_router(payments_router, responses=protected)
    app.include_router(household_payments_router, responses=protected)
    app.include_router(jobs_router, responses=protected)
    app.include_router(analytics_router, responses=protected)
    app.include_router(audit_router, responses=protected)
    # The pages (`/web`): the same services, with a session cookie instead of a bearer token.
    from sijill.web import mount as mount_pages

    mount_pages(app)
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
            components.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
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
                    operation.setdefault("security", []).append({BEARER_SCHEME: []})
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
    os.environ.update(settings.as_environment())
    run_workers(
        "sijill.api:app_from_environment",
        settings.host,
        settings.port,
        workers,
        access_log=access_log,
    )
