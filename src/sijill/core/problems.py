"""RFC 9457 problems: every error the API answers is `application/problem+json` with the
problem of each field. `install_problem_handlers` makes an app answer so; `problem` builds one
answer; `problem_responses` documents them in the OpenAPI document.

A problem's `title` (and the fixed messages below) is answered in the request's language, with
a `Content-Language` header (`sijill.core.i18n`: the Accept-Language header, else the
`language` setting, else English); `detail` and field messages are English for now."""

from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from sijill.core.errors import SijillError
from sijill.core.i18n import N_, current_locale, gettext, ngettext

PROBLEM_JSON = "application/problem+json"


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
    415: "The body is not JSON (Content-Type application/json)",
    422: "Invalid input, with the problem of each field",
    429: "Too many requests",
    500: "Internal error",
    503: "The audit record could not be written (or the audit chain is broken: problem type "
    "urn:sijill:problem:audit-chain-broken), so the request was not served",
}


# Titles of the statuses the API answers without a SijillError (routing, the body size limit,
# a crash), by their RFC 9110 names, which do not change with the Python version (HTTPStatus
# says "Request Entity Too Large" and "Unprocessable Entity" before 3.13).
_STATUS_TITLES = {
    400: N_("Bad Request"),
    401: N_("Unauthorized"),
    403: N_("Forbidden"),
    404: N_("Not Found"),
    405: N_("Method Not Allowed"),
    406: N_("Not Acceptable"),
    408: N_("Request Timeout"),
    409: N_("Conflict"),
    413: N_("Content Too Large"),
    415: N_("Unsupported Media Type"),
    422: N_("Unprocessable Content"),
    429: N_("Too Many Requests"),
    500: N_("Internal Server Error"),
    503: N_("Service Unavailable"),
}
_NOT_JSON = N_("the body is not valid JSON")


def _invalid_fields(count: int, locale: str) -> str:
    return ngettext(
        "The request has {count} invalid field",
        "The request has {count} invalid fields",
        count,
        locale,
    ).format(count=count)


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
    locale: str | None = None,
    type_: str = "about:blank",
) -> ProblemResponse:
    """A problem answer; `title` is an English msgid (by default the status's name), answered
    in `locale`, by default the request's language."""
    locale = locale or current_locale()
    title = title or _STATUS_TITLES.get(status) or HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": type_,
        "title": gettext(title, locale),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body["errors"] = errors or []
    headers = {**(headers or {}), "Content-Language": locale}
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
        type_=error.type,
    )


def _json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _not_json_body(request: Request, error: RequestValidationError) -> bool:
    """A route that reads a JSON body was sent one of another declared media type: FastAPI
    then validates the raw bytes and answers 422, where RFC 9110 says 415."""
    content_type = request.headers.get("content-type")
    if content_type is None or _json_media_type(content_type):
        return False
    body = getattr(request.scope.get("route"), "body_field", None)
    if body is None or isinstance(body.field_info, params.Form):  # forms and file uploads
        return False
    return any(item["loc"][:1] == ("body",) for item in error.errors())


async def _validation_error(request: Request, error: RequestValidationError) -> ProblemResponse:
    locale = current_locale()
    if _not_json_body(request, error):
        return problem(
            415,
            "The request body must be JSON, sent as Content-Type: application/json",
            instance=request.url.path,
            headers={"Accept": "application/json"},
        )
    errors = []
    for item in error.errors():
        if item.get("type") == "json_invalid":
            errors.append({"field": "body", "message": gettext(_NOT_JSON, locale)})
            continue
        errors.append({"field": _field_path(tuple(item["loc"])), "message": _message(item)})
    detail = _invalid_fields(len(errors), locale)
    return problem(422, detail, title=N_("Invalid input"), errors=errors, instance=request.url.path)


async def _http_error(request: Request, error: StarletteHTTPException) -> ProblemResponse:
    if error.status_code == 400 and error.detail == "There was an error parsing the body":
        # FastAPI's own answer to a body that is not UTF-8: the same problem as bad JSON.
        locale = current_locale()
        errors = [{"field": "body", "message": gettext(_NOT_JSON, locale)}]
        detail = _invalid_fields(1, locale)
        return problem(
            422, detail, title=N_("Invalid input"), errors=errors, instance=request.url.path
        )
    content_type = request.headers.get("content-type", "")
    if error.status_code == 400 and content_type.lower().startswith("multipart/form-data"):
        # Starlette's answer to an upload whose body it cannot parse ("Invalid multipart
        # data.", "Missing boundary in multipart.", ...): invalid input too.
        errors = [{"field": "body", "message": str(error.detail)}]
        detail = _invalid_fields(1, current_locale())
        return problem(
            422, detail, title=N_("Invalid input"), errors=errors, instance=request.url.path
        )
    phrase = HTTPStatus(error.status_code).phrase
    detail = error.detail if error.detail and error.detail != phrase else None
    return problem(error.status_code, detail, instance=request.url.path, headers=error.headers)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SijillError, _sijill_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
