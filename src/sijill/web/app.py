"""Signing in and out, choosing one's own password, the language switch, and `mount(app)`,
which adds every page.

Choosing a password (`POST /auth/password`'s service) is the way past the one-time password an
administrator hands out, and a change at any time. It is open without a session, as the API's
route is: the current password proves who asks. Audited and rate-limited with signing in; on
success the user is signed in with the new password."""

from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from sijill.core.errors import (
    Forbidden,
    InvalidInput,
    SijillError,
    TooManyRequests,
    Unauthenticated,
)
from sijill.core.i18n import N_, gettext, supported
from sijill.security.users import signin
from sijill.security.users.passwords import MIN_LENGTH
from sijill.web.render import page, service_detail
from sijill.web.routing import SIGN_IN, page_router
from sijill.web.session import (
    LANGUAGE_COOKIE,
    PREFIX,
    SignInRequired,
    check_csrf,
    end_session,
    keep_session,
    new_seed,
    signed_in,
    signed_in_principal,
)

router = page_router()
HOME = f"{PREFIX}/households"
WRONG = N_("Wrong user name or password.")
TOO_MANY = N_("Too many failed attempts to sign in: wait a minute and try again.")
Text = Annotated[str, Form(max_length=200)]


def local(target: str | None) -> str:
    """Where to go next: a page of this site only, never another site (`//host`, `\\host`)."""
    if target and target.startswith(PREFIX) and "\\" not in target and "//" not in target:
        return target
    return HOME


@router.get("", name="web_home")
def home() -> Response:
    return RedirectResponse(HOME, status_code=303)


@router.get("/sign-in", name="web_sign_in_form")
def sign_in_form(request: Request, next: str | None = None) -> Response:
    return page(request, "sign_in.html", next=local(next))


@router.post("/sign-in", name="web_sign_in")
def sign_in(
    request: Request,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Text = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = HOME,
) -> Response:
    check_csrf(request, csrf)
    settings = request.app.state.settings
    try:
        if not username.strip() or not password:
            raise Unauthenticated("A user name and a password are needed")
        pair = signed_in(
            request,
            username,
            "auth.sign_in",
            signin.password_attempt(settings, username, password),
        )
    except Forbidden:  # the right one-time password: the user chooses their own first
        return password_page(
            request, status=403, username=username, next=next, notice=gettext(ONE_TIME)
        )
    except SijillError as error:
        message = TOO_MANY if isinstance(error, TooManyRequests) else WRONG
        status = error.status if isinstance(error, TooManyRequests) else 401
        return page(
            request,
            "sign_in.html",
            status=status,
            next=local(next),
            username=username,
            error=gettext(message),
        )
    response = RedirectResponse(local(next), status_code=303)
    keep_session(request, response, pair)
    new_seed(request)
    return response


@router.post("/sign-out", name="web_sign_out")
def sign_out(request: Request, csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
    check_csrf(request, csrf)
    response = RedirectResponse(SIGN_IN, status_code=303)
    end_session(response)
    return response


@router.get("/language/{code}", name="web_language")
def choose_language(request: Request, code: str, next: str | None = None) -> Response:
    """A link, not a form: choosing a language changes nothing but how pages are written."""
    response = RedirectResponse(local(next), status_code=303)
    language = supported(code)
    if language:
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=365 * 86400,
            path=PREFIX,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


ONE_TIME = N_("This is a one-time password: choose your own to sign in.")
MISMATCH = N_("The two new passwords are not the same.")
MISSING = N_("Fill in this field.")


def password_page(
    request: Request,
    *,
    status: int = 200,
    username: str = "",
    next: str | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response:
    return page(
        request,
        "password.html",
        status=status,
        username=username,
        next=local(next),
        errors=errors or {},
        notice=notice,
        min_length=MIN_LENGTH,
    )


@router.get("/password", name="web_password_form")
def password_form(request: Request, next: str | None = None) -> Response:
    try:  # signed in, the page shows the menu and the user's own name
        principal = signed_in_principal(request)
    except SignInRequired:
        principal = None
    return password_page(request, username=principal.username if principal else "", next=next)


@router.post("/password", name="web_password_change")
def change_password(
    request: Request,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Text = "",
    new_password: Text = "",
    confirm: Text = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    check_csrf(request, csrf)
    errors = {
        name: gettext(MISSING)
        for name, value in (
            ("username", username.strip()),
            ("password", password),
            ("new_password", new_password),
            ("confirm", confirm),
        )  # fmt: skip
        if not value
    }
    if new_password and confirm and new_password != confirm:
        errors["confirm"] = gettext(MISMATCH)
    if errors:
        return password_page(request, status=422, username=username, next=next, errors=errors)
    settings = request.app.state.settings
    attempt = signin.password_change_attempt(settings, username, password, new_password)
    try:
        pair = signed_in(request, username, "auth.password", attempt)
    except InvalidInput as error:
        errors = {e.field: e.translated() for e in error.errors} or {
            "new_password": service_detail(error)
        }
        return password_page(request, status=422, username=username, next=next, errors=errors)
    except SijillError as error:
        status = 429 if isinstance(error, TooManyRequests) else 401
        message = gettext(TOO_MANY if status == 429 else WRONG)
        return password_page(
            request, status=status, username=username, next=next, errors={"password": message}
        )
    response = RedirectResponse(local(next), status_code=303)
    keep_session(request, response, pair)
    new_seed(request)
    return response


def mount(app: FastAPI) -> None:
    from sijill.web.pages_audit import router as audit_pages
    from sijill.web.pages_dashboard import router as dashboard_pages
    from sijill.web.pages_enrollment import router as enrollment_pages
    from sijill.web.pages_forms import router as form_pages
    from sijill.web.pages_instrument_form import router as instrument_form_pages
    from sijill.web.pages_instruments import router as instrument_pages
    from sijill.web.pages_jobs import router as job_pages
    from sijill.web.pages_linkage import router as linkage_model_pages
    from sijill.web.pages_merges import router as merge_pages
    from sijill.web.pages_models import router as model_pages
    from sijill.web.pages_payment_reports import router as payment_report_pages
    from sijill.web.pages_payment_runs import router as payment_run_pages
    from sijill.web.pages_payments import router as payments_pages
    from sijill.web.pages_program_runs import router as program_run_pages
    from sijill.web.pages_programs import router as programs_pages
    from sijill.web.pages_registry import router as registry_pages
    from sijill.web.pages_review import router as review_pages
    from sijill.web.pages_targeting import router as targeting_pages

    app.include_router(router)
    app.include_router(form_pages)  # before the registry's: /households/new is not an ID
    app.include_router(registry_pages)
    app.include_router(merge_pages)
    app.include_router(payments_pages)
    app.include_router(instrument_pages)
    app.include_router(instrument_form_pages)
    app.include_router(payment_run_pages)
    app.include_router(payment_report_pages)
    app.include_router(enrollment_pages)
    app.include_router(programs_pages)
    app.include_router(program_run_pages)
    app.include_router(targeting_pages)
    app.include_router(model_pages)
    app.include_router(dashboard_pages)
    app.include_router(review_pages)
    app.include_router(job_pages)
    app.include_router(linkage_model_pages)
    app.include_router(audit_pages)
    app.mount(
        f"{PREFIX}/static",
        StaticFiles(packages=[("sijill.web", "static")]),
        name="web_static",
    )
