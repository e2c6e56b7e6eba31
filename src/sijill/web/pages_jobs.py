"""The registrar's long work in pages: a job's page (state, progress, outcome, cancel, the
rejected rows), uploading a file to import, and starting linkage runs (duplicates in an area,
an agency's list matched to the registry).

Each starts its job as the API's route does (`receive_upload`, `resolve_area`, `may_link`,
`receive_list`, then the app's runner) and answers 303 to `/web/jobs/{id}`. A job is seen by
its starter and national administrators (`JobRunner.status`); to anyone else, and for an ID
that is malformed, it is the missing page, byte for byte."""

from datetime import date
from typing import Annotated, Any

from fastapi import Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response

from sijill.core.errors import Conflict, InvalidInput, NotFound, SijillError
from sijill.core.i18n import N_, gettext
from sijill.core.i18n.formats import format_number
from sijill.jobs import service as jobs
from sijill.jobs.models import ACTIVE
from sijill.linkage.dedup import resolve_area
from sijill.linkage.jobs import DEDUP_JOB, LINK_JOB, DedupParams
from sijill.linkage.link import may_link
from sijill.linkage.lists import LIST_KINDS
from sijill.linkage.uploads import receive_list
from sijill.payments.jobs import PREPARE_JOB, RECONCILE_JOB
from sijill.programs.jobs import PROGRAM_JOB
from sijill.registry.bulk.jobs import IMPORT, receive_upload
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.targeting.jobs import EVALUATE_JOB, FIT_JOB, MPI_JOB, PMT_JOB, SNAPSHOT_JOB
from sijill.web.areas import run_area_choices
from sijill.web.render import page, service_detail
from sijill.web.routing import page_router
from sijill.web.session import PREFIX, check_csrf, page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
Csrf = Annotated[str, Form(max_length=128)]
Text = Annotated[str, Form(max_length=64)]
Upload = Annotated[UploadFile | None, File()]

# The pages that take a file: the server's upload limit, not its request limit (sijill.api).
IMPORT_PAGE = f"{PREFIX}/imports"
LINK_PAGE = f"{PREFIX}/linkage/link"
EVALUATION_PAGE = f"{PREFIX}/targeting/evaluations"
FIT_PAGE = f"{PREFIX}/targeting/models"
UPLOAD_PAGES = (IMPORT_PAGE, LINK_PAGE, EVALUATION_PAGE, FIT_PAGE)
PAGE_FORM_BYTES = 64 * 1024  # the form's own fields and its parts' headers

KINDS = {
    IMPORT: N_("Import of households"),
    DEDUP_JOB: N_("Finding duplicates"),
    LINK_JOB: N_("Matching an agency's list"),
    EVALUATE_JOB: N_("Targeting evaluation"),
    SNAPSHOT_JOB: N_("Household features"),
    PMT_JOB: N_("PMT scores"),
    MPI_JOB: N_("Multidimensional poverty"),
    FIT_JOB: N_("Fitting a PMT"),
    PROGRAM_JOB: N_("Program run"),
    PREPARE_JOB: N_("Preparing payments"),
    RECONCILE_JOB: N_("Provider report"),
}
STATES = {
    "queued": N_("Waiting to start"),
    "running": N_("Running"),
    "succeeded": N_("Finished"),
    "failed": N_("Failed"),
    "cancelled": N_("Cancelled"),
    "interrupted": N_("Interrupted"),
}
FIGURES = {
    "source": N_("Source"),
    "households_read": N_("Households read"),
    "persons_read": N_("Persons read"),
    "households_added": N_("Households added"),
    "persons_added": N_("Persons added"),
    "households_present": N_("Households already present"),
    "persons_present": N_("Persons already present"),
    "rejected_rows": N_("Rows rejected"),
    "batches_committed": N_("Batches saved"),
    "ignored_columns": N_("Columns ignored"),
    "seconds": N_("Seconds"),
    "run_id": N_("Run"),
    "model_version": N_("Model version"),
    "area_code": N_("Area code"),
    "records": N_("Records compared"),
    "pairs_proposed": N_("Pairs proposed"),
    "flags_raised": N_("Pairs sent for review"),
    "merged": N_("Merged"),
    "already_open": N_("Already waiting for review"),
    "decided_before": N_("Decided before"),
    "kind": N_("Kind of list"),
    "list_file": N_("List file"),
    "lines": N_("Lines"),
    "matched": N_("Matched"),
    "unmatched": N_("Not matched"),
    "rejected": N_("Lines rejected"),
    "deaths_recorded": N_("Deaths recorded"),
    "deaths_already_recorded": N_("Deaths already recorded"),
    "facts_added": N_("Facts added"),
    "facts_present": N_("Facts already present"),
    "snapshot_id": N_("Feature snapshot"),
    "as_of": N_("As of"),
    "households": N_("Households"),
    "households_without_consent": N_("Households without consent"),
    "households_scored": N_("Households scored"),
    "poor": N_("Poor"),
    "catalogue_version": N_("Feature catalogue version"),
}
LIST_LABELS = {
    "civil": N_("Civil register: deaths"),
    "payroll": N_("Payroll"),
    "tax": N_("Tax records"),
    "beneficiaries": N_("Another program's beneficiaries"),
}
ENDED_ALREADY = N_("This job has already ended: there is nothing to cancel.")
UNREADABLE = N_("This file cannot be read: send a .csv, .xlsx or .parquet file.")
NO_FILE = N_("Choose a file.")
TOO_LARGE = N_("The files are larger than this server accepts (%(limit)s bytes).")
BAD_THRESHOLD = N_("The threshold is a number between 0 and 1, such as 0.95.")
BAD_DATE = N_("A date is written as year-month-day, such as 2026-01-31.")


def _job_id(text: str) -> int:
    try:
        return jobs.parse_job_id(text)
    except SijillError:
        raise NotFound("There is no such job") from None


def _figures(outcome: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The outcome's figures, each under a readable label; a key this page does not know is
    shown as it is."""
    shown = []
    for key, value in (outcome or {}).items():
        if isinstance(value, list):
            value = ", ".join(str(item) for item in value) or "—"
        label = gettext(FIGURES[key]) if key in FIGURES else key
        shown.append((label, value))
    return shown


def _job_page(request: Request, principal: Principal, number: int, status: int = 200, **notes):
    runner, settings = request.app.state.jobs, request.app.state.settings
    with transaction(request, principal) as session:
        job = jobs.public(runner.status(session, principal, number), settings.work_dir)
    links = []
    if job.state == "succeeded":
        if job.kind == EVALUATE_JOB:
            links.append((f"{PREFIX}/targeting/evaluations/{job.job_id}", N_("The report")))
        if job.kind == DEDUP_JOB and principal.may(Permission.REVIEW_FLAGS):
            links.append((f"{PREFIX}/review", N_("The pairs waiting for review")))
        if job.kind == IMPORT:
            links.append((f"{PREFIX}/households", N_("Find the households")))
        model = (job.outcome or {}).get("model_version")
        if job.kind in (DEDUP_JOB, LINK_JOB) and model and principal.may(Permission.LINKAGE_RUN):
            links.append((f"{PREFIX}/linkage/models/{model}", N_("The linkage model")))
        if job.kind in (PMT_JOB, MPI_JOB) and (job.outcome or {}).get("run_id"):
            links.append((f"{PREFIX}/targeting/runs/{job.outcome['run_id']}", N_("The run")))
    return page(
        request,
        "job.html",
        status=status,
        job=job,
        kind=gettext(KINDS[job.kind]) if job.kind in KINDS else job.kind,
        state=gettext(STATES[job.state]),
        running=job.state in ACTIVE,
        figures=_figures(job.outcome),
        links=[(href, gettext(text)) for href, text in links],
        **notes,
    )


@router.get("/jobs/{job_id}", name="web_job")
def job_page(request: Request, principal: PrincipalDep, job_id: str) -> Response:
    return _job_page(request, principal, _job_id(job_id))


@router.post("/jobs/{job_id}/cancel", name="web_cancel_job")
def cancel_job(request: Request, principal: PrincipalDep, job_id: str, csrf: Csrf = "") -> Response:
    check_csrf(request, csrf)
    number = _job_id(job_id)
    try:
        with transaction(request, principal) as session:
            request.app.state.jobs.cancel(session, principal, number)
    except Conflict:
        return _job_page(request, principal, number, status=409, refusal=gettext(ENDED_ALREADY))
    # Post, redirect, get: reloading the page does not ask again.
    return RedirectResponse(f"{PREFIX}/jobs/{number}", status_code=303)


@router.get("/jobs/{job_id}/rejects", name="web_job_rejects")
def job_rejects(request: Request, principal: PrincipalDep, job_id: str) -> Response:
    number = _job_id(job_id)
    runner, settings = request.app.state.jobs, request.app.state.settings
    with transaction(request, principal) as session:
        job = runner.status(session, principal, number)
        path = jobs.rejects_file(principal, job, settings.work_dir)
    return FileResponse(path, media_type="text/csv", filename=f"job-{job.id}-rejects.csv")


def started_job(request: Request, principal: Principal, kind: str, params: Any) -> Response:
    job = request.app.state.jobs.start(kind, params, principal)
    return RedirectResponse(f"{PREFIX}/jobs/{job.id}", status_code=303)


def too_large(request: Request, *uploads: UploadFile | None) -> str | None:
    # Bodies well past the limit are refused before the page by the server's body limit.
    limit = request.app.state.settings.max_upload_bytes
    if sum(upload.size or 0 for upload in uploads if upload is not None) <= limit:
        return None
    return gettext(TOO_LARGE) % {"limit": format_number(limit)}


def chosen_file(upload: UploadFile | None) -> UploadFile | None:
    """A file input left empty arrives as a part without a file name."""
    return upload if upload is not None and upload.filename else None


# --- import ----------------------------------------------------------------------------------


def _import_form(request: Request, status: int = 200, **values: Any) -> Response:
    return page(request, "import.html", status=status, **values)


@router.get("/imports", name="web_import_form")
def import_form(request: Request, principal: PrincipalDep) -> Response:
    with transaction(request, principal):  # a refusal is audited
        principal.require(Permission.HOUSEHOLD_IMPORT)
    return _import_form(request)


@router.post("/imports", name="web_import")
def start_import(
    request: Request,
    principal: PrincipalDep,
    file: Upload = None,
    mapping: Upload = None,
    source: Text = "",
    csrf: Csrf = "",
) -> Response:
    check_csrf(request, csrf)
    file, mapping = chosen_file(file), chosen_file(mapping)
    source = source.strip()
    errors: dict[str, str] = {}
    if file is None:
        errors["file"] = gettext(NO_FILE)
    elif message := too_large(request, file, mapping):
        errors["file"] = message
    try:
        with transaction(request, principal):
            principal.require(Permission.HOUSEHOLD_IMPORT)
            if errors:
                return _import_form(request, 413 if file else 422, errors=errors, source=source)
            assert file is not None
            params = receive_upload(
                principal,
                request.app.state.settings,
                file.filename,
                file.file,
                mapping.file if mapping is not None else None,
                source or None,
            )
            return started_job(request, principal, IMPORT, params)
    except InvalidInput as error:
        fields = {e.field for e in error.errors}
        if "file" in fields:
            errors["file"] = gettext(UNREADABLE)
        else:
            errors["mapping" if "mapping" in fields else "source"] = service_detail(error)
        return _import_form(request, 422, errors=errors, source=source)


# --- linkage ---------------------------------------------------------------------------------


def _linkage_page(
    request: Request, principal: Principal, status: int = 200, **values: Any
) -> Response:
    with transaction(request, principal) as session:
        principal.require(Permission.LINKAGE_RUN)
        national, areas = run_area_choices(session, principal, Permission.LINKAGE_RUN)
    return page(
        request,
        "linkage.html",
        status=status,
        national=national,
        areas=areas,
        kinds=[
            (kind, gettext(LIST_LABELS[kind]) if kind in LIST_LABELS else kind)
            for kind in LIST_KINDS
        ],  # fmt: skip
        **values,
    )


@router.get("/linkage", name="web_linkage")
def linkage(request: Request, principal: PrincipalDep) -> Response:
    return _linkage_page(request, principal)


def _threshold(text: str) -> float | None:
    """None when left empty; the API's bounds (0 < t < 1), else InvalidInput."""
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise InvalidInput(gettext(BAD_THRESHOLD))
    return value


@router.post("/linkage/dedup", name="web_start_dedup")
def start_dedup(
    request: Request,
    principal: PrincipalDep,
    area_code: Annotated[str, Form(max_length=32)] = "",
    threshold: Text = "",
    csrf: Csrf = "",
) -> Response:
    check_csrf(request, csrf)
    sent = {"area_code": area_code, "threshold": threshold}
    try:
        with transaction(request, principal) as session:
            principal.require(Permission.LINKAGE_RUN)
            value = _threshold(threshold)
            # Refused now rather than by the job, as the API does.
            resolve_area(session, principal, area_code or None)
            params = DedupParams(area_code or None, None, None, value)
            return started_job(request, principal, DEDUP_JOB, params)
    except InvalidInput as error:
        return _linkage_page(request, principal, 422, dedup_error=service_detail(error), sent=sent)
    except SijillError as error:
        if error.status not in (403, 404, 429):
            raise
        return _linkage_page(
            request, principal, error.status, dedup_error=service_detail(error), sent=sent
        )


def read_day(text: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(gettext(BAD_DATE)) from None


@router.post("/linkage/link", name="web_start_link")
def start_link(
    request: Request,
    principal: PrincipalDep,
    file: Upload = None,
    mapping: Upload = None,
    kind: Text = "",
    threshold: Text = "",
    as_of: Annotated[str, Form(max_length=32)] = "",
    csrf: Csrf = "",
) -> Response:
    check_csrf(request, csrf)
    file, mapping = chosen_file(file), chosen_file(mapping)
    sent = {"kind": kind, "threshold": threshold, "as_of": as_of}
    with transaction(request, principal) as session:
        # Refused as the API refuses: a plain refusal, audited, with no form to show.
        may_link(session, principal)
    try:
        if file is None:
            raise InvalidInput(gettext(NO_FILE))
        if message := too_large(request, file, mapping):
            return _linkage_page(request, principal, 413, link_error=message, sent=sent)
        value, day = _threshold(threshold), read_day(as_of)
        with transaction(request, principal):
            params = receive_list(
                principal,
                request.app.state.settings,
                file.filename,
                file.file,
                kind=kind,
                mapping=mapping.file if mapping is not None else None,
                threshold=value,
                as_of=day,
            )
            return started_job(request, principal, LINK_JOB, params)
    except InvalidInput as error:
        unreadable = any(e.field == "file" for e in error.errors)
        message = gettext(UNREADABLE) if unreadable else service_detail(error)
        return _linkage_page(request, principal, 422, link_error=message, sent=sent)
