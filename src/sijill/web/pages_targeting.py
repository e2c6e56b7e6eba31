"""Targeting runs from the pages: a feature snapshot of the registry, PMT scores by an approved
model, multidimensional poverty, and an evaluation of targeting designs against uploaded
reference welfare. Each is checked as the API's route checks it (`targeting.starts`: the
permission, the area inside the user's scope, the models named) and starts the same job; the
page then follows it at `/web/jobs/{id}`."""

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from sijill.core.errors import InvalidInput, NotFound, SijillError
from sijill.core.i18n import N_, current_locale, gettext
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.targeting import features
from sijill.targeting.jobs import (
    EVALUATE_JOB,
    MPI_JOB,
    PMT_JOB,
    SNAPSHOT_JOB,
    EvaluateParams,
    MpiParams,
    PmtParams,
    SnapshotParams,
)
from sijill.targeting.pmt_models import list_models
from sijill.targeting.runs import visible_run
from sijill.targeting.starts import (
    check_models,
    check_run,
    check_selection,
    keep_upload,
    upload_folder,
)
from sijill.web.areas import run_area_choices
from sijill.web.pages_jobs import UNREADABLE, chosen_file, read_day, started_job, too_large
from sijill.web.render import page, service_detail
from sijill.web.routing import page_router
from sijill.web.session import check_csrf, page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
Csrf = Annotated[str, Form(max_length=128)]
Text = Annotated[str, Form(max_length=64)]
BAD_SNAPSHOT = N_("A snapshot is named by its number, such as 12.")
NO_MODEL = N_("Choose an approved model.")
NO_REFERENCE = N_("Choose the file of reference welfare.")
BAD_COVERAGE = N_("The coverage is a percentage above 0 and at most 100, such as 20.")
BAD_AMOUNT = N_("An amount is a number above 0, such as 1500.")
ONE_SELECTION = N_("Give either a coverage or a budget, not both.")
RUN_KINDS = {"pmt": N_("PMT scores"), "mpi": N_("Multidimensional poverty")}


def _snapshot_id(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) < 2**63:
        raise InvalidInput(gettext(BAD_SNAPSHOT))
    return int(text)


def read_amount(text: str) -> Decimal | None:
    text = text.strip().replace(",", "")
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(gettext(BAD_AMOUNT)) from None
    if not value.is_finite() or value <= 0 or value.as_tuple().exponent < -3:
        raise InvalidInput(gettext(BAD_AMOUNT))
    return value


def _coverage(text: str) -> float | None:
    """A percentage on the form; a share (0 to 1] for the job."""
    text = text.strip().rstrip("%").strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(gettext(BAD_COVERAGE)) from None
    if not value.is_finite() or not 0 < value <= 100:
        raise InvalidInput(gettext(BAD_COVERAGE))
    return float(value / 100)


def _targeting_page(
    request: Request, principal: Principal, status: int = 200, **values: Any
) -> Response:
    with transaction(request, principal) as session:
        principal.require(Permission.TARGETING_RUN)
        national, areas = run_area_choices(session, principal, Permission.TARGETING_RUN)
        approved = [model.version for model in list_models(session, principal) if model.approved_by]
    return page(
        request,
        "targeting.html",
        status=status,
        national=national,
        areas=areas,
        models=approved,
        errors=values.pop("errors", {}),
        sent=values.pop("sent", {}),
        **values,
    )


@router.get("/targeting", name="web_targeting")
def targeting(request: Request, principal: PrincipalDep) -> Response:
    return _targeting_page(request, principal)


def start_checked(
    request: Request,
    principal: Principal,
    build: Callable[[Session], tuple[str, Any] | Response],
    refused: Callable[[int, str], Response],
) -> Response:
    """Check and start a form's job: `build(session)` gives its kind and parameters (or starts
    it and answers); a refusal the user can act on is `refused(status, message)`, the message
    in the user's language where the catalogs have it."""
    try:
        with transaction(request, principal) as session:
            built = build(session)
            if isinstance(built, Response):
                return built
            return started_job(request, principal, *built)
    except InvalidInput as error:
        if any(e.field == "file" for e in error.errors):  # the upload's suffix
            return refused(422, gettext(UNREADABLE))
        return refused(422, error.errors[0].translated() if error.errors else service_detail(error))
    except SijillError as error:
        if error.status not in (403, 404, 429):
            raise
        return refused(error.status, service_detail(error))


def _start(request: Request, principal: Principal, form: str, sent: dict, build) -> Response:
    def refused(status: int, message: str) -> Response:
        return _targeting_page(request, principal, status, errors={form: message}, sent=sent)

    return start_checked(request, principal, build, refused)


@router.post("/targeting/snapshots", name="web_start_snapshot")
def start_snapshot(
    request: Request, principal: PrincipalDep, as_of: Text = "", area_code: Text = "",
    csrf: Csrf = "",
) -> Response:  # fmt: skip
    check_csrf(request, csrf)

    def build(session):
        check_run(session, principal, area_code or None)
        return SNAPSHOT_JOB, SnapshotParams(read_day(as_of), area_code or None)

    sent = {"as_of": as_of, "area_code": area_code}
    return _start(request, principal, "snapshot", sent, build)


@router.post("/targeting/scores", name="web_start_score")
def start_score(
    request: Request, principal: PrincipalDep, model_version: Text = "", as_of: Text = "",
    area_code: Text = "", snapshot_id: Text = "", csrf: Csrf = "",
) -> Response:  # fmt: skip
    check_csrf(request, csrf)

    def build(session):
        if not model_version:
            raise InvalidInput(gettext(NO_MODEL))
        check_run(session, principal, area_code or None)
        check_models(session, [model_version])
        day, snapshot = read_day(as_of), _snapshot_id(snapshot_id)
        return PMT_JOB, PmtParams(model_version, day, area_code or None, snapshot)

    sent = {"model_version": model_version, "as_of": as_of, "area_code": area_code,
            "snapshot_id": snapshot_id}  # fmt: skip
    return _start(request, principal, "score", sent, build)


@router.post("/targeting/mpi", name="web_start_mpi")
def start_mpi(
    request: Request, principal: PrincipalDep, as_of: Text = "", area_code: Text = "",
    snapshot_id: Text = "", csrf: Csrf = "",
) -> Response:  # fmt: skip
    check_csrf(request, csrf)

    def build(session):
        check_run(session, principal, area_code or None)
        day, snapshot = read_day(as_of), _snapshot_id(snapshot_id)
        return MPI_JOB, MpiParams(None, day, area_code or None, snapshot)

    sent = {"as_of": as_of, "area_code": area_code, "snapshot_id": snapshot_id}
    return _start(request, principal, "mpi", sent, build)


@router.post("/targeting/evaluations", name="web_start_evaluation")
def start_evaluation(
    request: Request,
    principal: PrincipalDep,
    reference: Annotated[UploadFile | None, File()] = None,
    pmt: Annotated[list[str], Form()] = [],  # noqa: B006  (FastAPI copies the default)
    mpi: Annotated[str, Form(max_length=8)] = "",
    coverage: Text = "",
    budget: Text = "",
    poverty_line: Text = "",
    as_of: Text = "",
    area_code: Text = "",
    csrf: Csrf = "",
) -> Response:
    check_csrf(request, csrf)
    settings = request.app.state.settings
    sent = {"pmt": pmt, "mpi": bool(mpi), "coverage": coverage, "budget": budget,
            "poverty_line": poverty_line, "as_of": as_of, "area_code": area_code}  # fmt: skip
    upload = chosen_file(reference)
    if upload is None or (refusal := too_large(request, upload)):
        message = gettext(NO_REFERENCE) if upload is None else refusal
        return _targeting_page(request, principal, 422, errors={"evaluation": message}, sent=sent)

    def build(session):
        check_run(session, principal, area_code or None)
        check_models(session, pmt[:20])
        share, money = _coverage(coverage), read_amount(budget)
        if share is not None and money is not None:
            raise InvalidInput(gettext(ONE_SELECTION))
        check_selection(share, money)
        line, day = read_amount(poverty_line), read_day(as_of)
        with upload_folder(settings) as folder:
            path = keep_upload(folder, "reference", upload.filename, upload.file)
            params = EvaluateParams(
                reference=path, out_dir=folder / "report", pmt_versions=tuple(pmt[:20]),
                use_mpi=bool(mpi), coverage=share, budget=money, poverty_line=line, as_of=day,
                area_code=area_code or None, upload=folder,
            )  # fmt: skip
            # Started inside: a job that cannot start leaves no upload behind.
            return started_job(request, principal, EVALUATE_JOB, params)

    return _start(request, principal, "evaluation", sent, build)


# --- what a run found, and the features runs read ---------------------------------------------


def _labelled(entry: dict[str, Any], language: str) -> str:
    labels = entry.get("labels") or {}
    return labels.get(language) or labels.get("en") or entry["name"]


def _exact(row: dict[str, Any]) -> dict[str, Any]:
    """A row of figures as stored (JSON floats) with its numbers as the pages format them:
    Decimals, read from the float's shortest text, never through binary arithmetic."""
    return {key: Decimal(str(value)) if isinstance(value, float) else value
            for key, value in row.items()}  # fmt: skip


def _mpi_view(summary: dict[str, Any], language: str) -> dict[str, Any]:
    """An MPI run's aggregates with the configuration's own labels, in the page's language."""
    config = summary.get("config") or {}
    indicator_labels, dimension_labels = {}, {}
    for dimension in config.get("dimensions", []):
        dimension_labels[dimension["name"]] = _labelled(dimension, language)
        for indicator in dimension.get("indicators", []):
            indicator_labels[indicator["name"]] = _labelled(indicator, language)
    indicators = [
        {**_exact(row), "label": indicator_labels.get(row["name"], row["name"]),
         "dimension_label": dimension_labels.get(row["dimension"], row["dimension"])}
        for row in summary.get("indicators", [])
    ]  # fmt: skip
    groups = [
        (column, features.BY_NAME[column].labels._asdict()[language]
         if column in features.BY_NAME else column, [_exact(row) for row in rows])
        for column, rows in (summary.get("decompositions") or {}).items()
    ]  # fmt: skip
    return {"national": _exact(summary.get("national") or {}), "indicators": indicators,
            "groups": groups, "k": config.get("k_fraction"), "name": config.get("name"),
            "min_households": summary.get("min_households"),
            "excluded": summary.get("excluded_households")}  # fmt: skip


@router.get("/targeting/runs/{run_id}", name="web_targeting_run")
def targeting_run(request: Request, principal: PrincipalDep, run_id: str) -> Response:
    if not run_id.isdigit() or not 1 <= int(run_id) < 2**63:
        raise NotFound("There is no such targeting run")
    with transaction(request, principal) as session:
        run = visible_run(session, principal, int(run_id))
    summary = run.summary or {}
    language = current_locale()
    return page(
        request,
        "targeting_run.html",
        run=run,
        kind=gettext(RUN_KINDS.get(run.kind, run.kind)),
        mpi=_mpi_view(summary, language) if run.kind == "mpi" else None,
        poverty_line=Decimal(summary["poverty_line"]) if "poverty_line" in summary else None,
    )


@router.get("/targeting/features", name="web_features")
def feature_catalogue(request: Request, principal: PrincipalDep) -> Response:
    """The household feature view, for anyone signed in (as `GET /targeting/features`)."""
    language = current_locale()
    rows = [
        {**feature.as_dict(), "label": feature.labels._asdict()[language]}
        for feature in features.FEATURES
    ]
    return page(request, "features.html", features=rows)
