"""Errors a user can act on. The API renders them as RFC 9457 problems, the CLI as one line."""

from dataclasses import dataclass, field


@dataclass
class FieldError:
    field: str
    message: str
    row: int | None = None


class SijillError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, errors: list[FieldError] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidInput(SijillError):
    status = 422
    title = "Invalid input"


class NotFound(SijillError):
    status = 404
    title = "Not found"


class Conflict(SijillError):
    status = 409
    title = "Conflict"


@dataclass
class ErrorCollector:
    """Collects every problem of an input so the user fixes them all in one go."""

    errors: list[FieldError] = field(default_factory=list)

    def add(self, field_name: str, message: str, row: int | None = None) -> None:
        self.errors.append(FieldError(field_name, message, row))

    def raise_if_any(self, detail: str = "The input has errors") -> None:
        if self.errors:
            raise InvalidInput(detail, self.errors)
