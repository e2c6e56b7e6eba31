"""Errors a user can act on. The API renders them as RFC 9457 problems, the CLI as one line.

A `title` is marked with `N_` and translated when the problem is answered, into the request's
language (`sijill.core.problems`)."""

from dataclasses import dataclass, field
from typing import Any

from sijill.core.i18n import N_, gettext


@dataclass
class FieldError:
    field: str
    message: str
    row: int | None = None
    # The message as a catalog key (`N_`), with `{name}` fields filled from `values`, when it
    # can be said in the user's language (the pages do; the API's field messages are English).
    template: str | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def translated(self) -> str:
        """The message in the current language (English where the catalogs have none)."""
        if self.template is None:
            return gettext(self.message)
        return gettext(self.template).format(**self.values)


class SijillError(Exception):
    status = 400
    title = N_("Bad request")
    # The RFC 9457 problem type: a URI naming a problem clients may act on by name.
    type = "about:blank"

    def __init__(self, detail: str, errors: list[FieldError] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidInput(SijillError):
    status = 422
    title = N_("Invalid input")


class NotFound(SijillError):
    status = 404
    title = N_("Not found")


class Conflict(SijillError):
    status = 409
    title = N_("Conflict")


class Unauthenticated(SijillError):
    """No valid credentials: the client must sign in (again)."""

    status = 401
    title = N_("Unauthorized")


class Forbidden(SijillError):
    """Signed in, but this user's roles do not allow the action, or consent does not cover it.

    A record outside the user's areas is never Forbidden: it is NotFound, word for word as a
    record that does not exist, so its existence does not leak.
    """

    status = 403
    title = N_("Forbidden")


class TooManyRequests(SijillError):
    status = 429
    title = N_("Too many requests")


@dataclass
class ErrorCollector:
    """Collects every problem of an input so the user fixes them all in one go."""

    errors: list[FieldError] = field(default_factory=list)

    def add(
        self,
        field_name: str,
        message: str,
        row: int | None = None,
        *,
        template: str | None = None,
        **values: Any,
    ) -> None:
        """`message` with `values` is a catalog key with `{name}` fields, filled in here;
        `template`, a catalog key to translate instead of a message that cannot be one."""
        if values and template is None:
            template, message = message, message.format(**values)
        self.errors.append(FieldError(field_name, message, row, template, values))

    def raise_if_any(self, detail: str = "The input has errors") -> None:
        if self.errors:
            raise InvalidInput(detail, self.errors)
