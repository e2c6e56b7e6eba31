"""RFC 9457 problems: every error the API answers is `application/problem+json` with the
problem of each field. `install_problem_handlers` makes an app answer so; `problem` builds one
answer; `problem_responses` documents them in the OpenAPI document."""

from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from sijill.core.errors import SijillError

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


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SijillError, _sijill_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
