"""Every page route: in the page's language, its session renewed and its CSRF seed set on the
answer, and an error the services raise shown as a page, not as a problem document."""

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from sijill.core.errors import NotFound, SijillError
from sijill.core.i18n import gettext, use_locale
from sijill.web.render import page, page_language, service_detail
from sijill.web.session import PREFIX, SignInRequired, end_session, finish

SIGN_IN = f"{PREFIX}/sign-in"


def error_page(request: Request, error: SijillError) -> Response:
    # Nothing of what was asked is shown on a not-found, not even the address in the language
    # links: a record out of the user's areas gets the page of one that does not exist, the
    # same byte for byte.
    missing = error.status == 404
    return page(
        request,
        "error.html",
        status=error.status,
        here=f"{PREFIX}/households" if missing else None,
        title=gettext(error.title),
        status_code=error.status,
        # A server's own trouble (5xx) is for its logs and operators, not for the page.
        message=None if missing or error.status >= 500 else service_detail(error),
    )


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            with use_locale(page_language(request)):
                try:
                    response = await handler(request)
                except SignInRequired:
                    wanted = request.url.path if request.method == "GET" else PREFIX
                    response = RedirectResponse(
                        f"{SIGN_IN}?next={quote(wanted, safe='/')}", status_code=303
                    )
                    end_session(response)
                    return response
                except RequestValidationError:
                    response = error_page(request, NotFound("There is no such page"))
                except SijillError as error:
                    response = error_page(request, error)
            finish(request, response)
            return response

        return page_handler


def page_router() -> APIRouter:
    """A router of pages: left out of the OpenAPI document, which describes the API."""
    return APIRouter(prefix=PREFIX, route_class=PageRoute, include_in_schema=False)
