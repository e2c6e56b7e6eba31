"""Starting a cycle's payment run and reading a provider's report in, from forms: the input is
the API's (`PrepareRequest`, the report's provider), checked and started by the same functions
as `POST /payments/runs` and `POST /payments/reports` (`payments.jobs`), so the permission,
the area scope and the audit are the same. Both are jobs: the form leads to the job's page."""

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from sijill.core.errors import Forbidden, InvalidInput, NotFound
from sijill.core.i18n import N_, gettext
from sijill.payments.api import PrepareRequest
from sijill.payments.jobs import (
    PREPARE_JOB,
    RECONCILE_JOB,
    PrepareParams,
    check_prepare,
    receive_report,
)
from sijill.payments.providers import provider_names
from sijill.security.area_scope import run_areas
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.web import forms
from sijill.web.pages_forms import NOT_SAVED
from sijill.web.render import page
from sijill.web.routing import page_router
from sijill.web.session import PREFIX, check_csrf, page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
NOTHING_APPROVED = N_(
    "No approved entitlement of this cycle waits for payment: nothing to prepare. Approve the "
    "cycle's entitlements first."
)
WHOLE_COUNTRY = N_(
    "Preparing for the whole country needs a national scope: choose one of your areas."
)
NO_AREA = N_("choose one of the listed areas")
CYCLE_HINT = N_("a month (2026-11) or a quarter (2026-Q4)")
NO_FILE = N_("choose the provider's report file")
NO_PROVIDER = N_("choose one of the listed providers")


async def _form(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(_form)]


def _job_page(job_id: int) -> Response:
    # The job's page shows its progress and outcome: post, redirect, get.
    return RedirectResponse(f"{PREFIX}/jobs/{job_id}", status_code=303)


# --- a cycle's run ---------------------------------------------------------------------------


def _run_form(
    request: Request,
    principal: Principal,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> Response:
    with transaction(request, principal) as session:
        principal.require(Permission.PAYMENTS_PREPARE)  # a refusal is audited
        national = principal.scope(session, Permission.PAYMENTS_PREPARE).national
        areas = [(a.code, a.name_ar, a.name_en) for a in run_areas(
            session, principal, Permission.PAYMENTS_PREPARE
        )]  # fmt: skip
    errors = errors or {}
    return page(
        request,
        "payment_run_form.html",
        status=status,
        values=values or {},
        errors=errors,
        national=national,
        areas=areas,
        cycle_hint=gettext(CYCLE_HINT),
        not_saved=gettext(NOT_SAVED) if errors else None,
    )


@router.get("/payments/runs", name="web_payment_run_form")
def run_form(request: Request, principal: PrincipalDep) -> Response:
    return _run_form(request, principal)


def _request_errors(error: ValidationError) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for problem in error.errors():
        where = str(problem["loc"][0]) if problem["loc"] else ""
        wording = forms.BY_TYPE.get(problem["type"], forms.BY_TYPE["string_pattern_mismatch"])
        ctx = {key: str(value) for key, value in (problem.get("ctx") or {}).items()}
        found.setdefault(where, []).append(gettext(wording).format(**ctx))
    return found


@router.post("/payments/runs", name="web_payment_run_start")
def start_run(request: Request, principal: PrincipalDep, form: FormDep) -> Response:
    check_csrf(request, str(form.get("csrf", "")))
    values = {
        name: str(form.get(name, "")).strip() for name in ("cycle", "area_code", "value_date")
    }
    values["consolidate"] = form.get("consolidate") == "true"
    try:
        body = PrepareRequest.model_validate(
            {
                "cycle": values["cycle"],
                "area_code": values["area_code"] or None,
                "consolidate": values["consolidate"],
                "value_date": values["value_date"] or None,
            }
        )
    except ValidationError as error:
        return _run_form(request, principal, values, _request_errors(error), 422)
    params = PrepareParams(body.cycle, body.area_code, body.consolidate, body.value_date)
    try:
        with transaction(request, principal) as session:
            check_prepare(session, principal, params)
            job = request.app.state.jobs.start(PREPARE_JOB, params, principal)
    except NotFound as error:
        # Said on the form: a cycle with nothing approved, or an area outside the scope.
        if body.area_code and "area" in error.detail:
            errors = {"area_code": [gettext(NO_AREA)]}
        else:
            errors = {"cycle": [gettext(NOTHING_APPROVED)]}
        return _run_form(request, principal, values, errors, 404)
    except Forbidden:
        if not principal.may(Permission.PAYMENTS_PREPARE):
            raise  # the error page says what the roles allow
        return _run_form(request, principal, values, {"area_code": [gettext(WHOLE_COUNTRY)]}, 403)
    return _job_page(job.id)


# --- a provider's report ---------------------------------------------------------------------


def _report_form(
    request: Request,
    principal: Principal,
    provider: str = "",
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> Response:
    with transaction(request, principal):
        principal.require(Permission.PAYMENTS_RECONCILE)  # a refusal is audited
    errors = errors or {}
    return page(
        request,
        "payment_report_form.html",
        status=status,
        providers=provider_names(),
        provider=provider,
        errors=errors,
        not_saved=gettext(NOT_SAVED) if errors else None,
    )


@router.get("/payments/reports", name="web_payment_report_form")
def report_form(request: Request, principal: PrincipalDep) -> Response:
    return _report_form(request, principal)


@router.post("/payments/reports", name="web_payment_report_start")
def start_report(request: Request, principal: PrincipalDep, form: FormDep) -> Response:
    check_csrf(request, str(form.get("csrf", "")))
    provider = str(form.get("provider", ""))
    report = form.get("report")
    errors: dict[str, list[str]] = {}
    if provider not in provider_names():
        errors["provider"] = [gettext(NO_PROVIDER)]
    if not isinstance(report, UploadFile) or not report.filename:
        errors["report"] = [gettext(NO_FILE)]
    if errors:
        return _report_form(request, principal, provider, errors, 422)
    assert isinstance(report, UploadFile)
    settings = request.app.state.settings
    try:
        with transaction(request, principal):
            job = receive_report(
                settings, principal, report.file, report.filename, provider,
                lambda params: request.app.state.jobs.start(RECONCILE_JOB, params, principal),
            )  # fmt: skip
    except InvalidInput:
        return _report_form(request, principal, provider, {"provider": [gettext(NO_PROVIDER)]}, 422)
    return _job_page(job.id)
