"""What wraps every request of the API: its language, an ID, a body size limit, security
headers, unexpected errors turned into a 500 problem that says nothing of the internals, and
access log lines without query strings."""

import asyncio
import logging
import re
import traceback
import uuid
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sijill.core.i18n import _, negotiate, supported, use_locale
from sijill.core.problems import problem

logger = logging.getLogger("sijill.api")


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
            response = problem(500, _("The server met an unexpected error; it has been logged"))
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
# The pages (`sijill.web`): their own stylesheet and forms, nothing from elsewhere, no script.
_PAGES_PREFIX = "/web"
_PAGES_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
]


class Hardening:
    """Every request gets an ID (the client's X-Request-ID if it is an opaque token of 1 to 64
    letters, digits, dots, hyphens and underscores, else a new one: the ID goes into the audit
    trail, which must not hold whatever a client sends), a body size limit (413 beyond it), a
    body read deadline (408) and, on its answer, security headers; answers are never cached,
    since most carry personal data.

    `body_limits` gives a path a limit of its own instead of `max_body`: the file uploads
    (`POST /imports`, settings.max_upload_bytes), whose bodies are counted the same way.

    uvicorn waits for a body as long as the client keeps the connection open, so a client that
    announces more than it sends would hold a worker's request forever: each part of a body
    must arrive within `body_timeout` seconds of the one before (nginx's client_body_timeout),
    else the client gets a 408 and the connection is closed.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body: int,
        body_limits: dict[str, int] | None = None,
        body_timeout: float = 10.0,
    ):
        self.app = app
        self.max_body = max_body
        self.body_limits = dict(body_limits or {})
        self.body_timeout = body_timeout

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
        path = scope["path"]
        if path == _PAGES_PREFIX or path.startswith(_PAGES_PREFIX + "/"):
            policy = _PAGES_POLICY
        else:
            policy = _DOCS_POLICY if path in _DOCS_PATHS else _DATA_POLICY
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

        max_body = self.body_limits.get(scope["path"], self.max_body)
        if length is not None and length > max_body:
            await self._too_large(scope, receive, secured_send, max_body)
            return
        received = 0
        body_done = False

        async def limited_receive() -> Message:
            # A body sent in chunks, without a length, is counted as it arrives: past the
            # limit the client gets its 413 and the app sees the client gone.
            nonlocal received, refused, body_done
            if body_done:  # the app waits for a disconnect, which may take any time
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except TimeoutError:
                if not started:
                    response = problem(
                        408,
                        f"The request body did not arrive within {self.body_timeout:g} s",
                        headers={"Connection": "close"},
                    )
                    await response(scope, receive, secured_send)
                refused = True
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > max_body and not started:
                    await self._too_large(scope, receive, secured_send, max_body)
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, limited_receive, secured_send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(413, f"The request body is larger than the limit of {limit:,} bytes")
        await response(scope, receive, send)


def request_language(scope: Scope, default: str) -> str:
    """The language a request asks for: its `lang` query parameter if that names a supported
    language, else its Accept-Language header, else `default`."""
    query = scope.get("query_string", b"")
    if b"lang=" in query:
        for value in parse_qs(query.decode("latin-1")).get("lang", []):
            if found := supported(value):
                return found
    accept = None
    for name, value in scope["headers"]:
        if name == b"accept-language":
            accept = value.decode("latin-1")
            break
    return negotiate(accept, default)


class RequestLanguage:
    """Each request is answered in its language (`request_language`): the current language of
    `sijill.core.i18n` while it is served, so `_()` and problem titles follow it."""

    def __init__(self, app: ASGIApp, default: str):
        self.app = app
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with use_locale(request_language(scope, self.default)):
            await self.app(scope, receive, send)


class _NoQueryStrings(logging.Filter):
    """Access log lines keep the path but drop the query: searches carry names and IDs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            if isinstance(args[2], str):
                args[2] = args[2].split("?", 1)[0]
            record.args = tuple(args)
        return True


def redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _NoQueryStrings) for f in access.filters):
        access.addFilter(_NoQueryStrings())
