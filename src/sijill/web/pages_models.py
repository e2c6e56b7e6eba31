"""Fitted PMT models: the list (`GET /targeting/pmt/models`), a model written out readably (its
proxies by their labels, coefficients, validation) and its approval for scoring by a second
person, through the services of the API's routes: `pmt_models.list_models`, `get_model`
(read by those who fit or score) and `approve_for` (four eyes: never the fitter)."""

from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from sijill.core.errors import Conflict, Forbidden, InvalidInput
from sijill.core.i18n import N_, current_locale, gettext
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.targeting import features
from sijill.targeting.jobs import FIT_JOB, FitParams
from sijill.targeting.pmt_models import (
    approve_for,
    get_model,
    list_models,
    model_summary,
    require_model_reader,
)
from sijill.targeting.starts import keep_upload, upload_folder
from sijill.web.pages_jobs import chosen_file, read_day, started_job, too_large
from sijill.web.pages_targeting import read_amount, start_checked
from sijill.web.render import page, service_detail
from sijill.web.routing import page_router
from sijill.web.session import PREFIX, check_csrf, page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
Version = Annotated[str, Path(pattern=r"^pmt-[0-9a-f]{16}$")]
Text = Annotated[str, Form(max_length=64)]
Upload = Annotated[UploadFile | None, File()]
COEFFICIENT = "#,##0.0000"
FIGURE = "#,##0.000"
OWN_MODEL = N_("Refused: you fitted this model. Another person must approve it (four eyes).")
APPROVED_ALREADY = N_("Refused: this model is already approved.")
APPROVED = N_("Model approved for scoring.")
METHODS = {"wls": N_("weighted least squares"), "quantile": N_("quantile regression"),
           "gradient_boosting": N_("gradient boosting (for comparison)")}  # fmt: skip
TERM_KINDS = {"log": N_("logarithm"), "number": N_("number"), "boolean": N_("yes or no"),
              "code": N_("level of a code")}  # fmt: skip
FIT_METHODS = {"wls": METHODS["wls"], "quantile": METHODS["quantile"]}
NO_FILES = N_("Choose the three files: the survey, its households and its persons.")
NO_LINE = N_("Give the poverty line per person and year, such as 1500.")
BAD_METHOD = N_("Choose weighted least squares or quantile regression.")
BAD_FOLDS = N_("The folds are a whole number from 2 to 20.")
MEASURES = (("r2", N_("R²")), ("rmse", N_("Root mean squared error")),
            ("rank_correlation", N_("Rank correlation")))  # fmt: skip


def _label(name: str) -> str:
    feature = features.BY_NAME.get(name)
    return getattr(feature.labels, current_locale()) if feature is not None else name


def _named(code: str | None, names: dict[str, str]) -> str:
    return gettext(names[code]) if code in names else (code or "")


def _terms(terms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**term, "label": _label(term["feature"]), "kind_label": _named(term["kind"], TERM_KINDS)}
        for term in terms
    ]


def _model_view(model) -> dict[str, Any]:
    body = model.body
    validation = body.get("validation") or {}
    regions = body.get("regions") or {}
    line = (body.get("poverty_line") or {}).get("per_person_per_year")
    return {
        **model_summary(model),
        "method_label": _named(model.method, METHODS),
        "target": body.get("target", ""),
        "intercept": body.get("intercept"),
        "terms": _terms(body.get("terms") or []),
        "references": [
            (_label(name), level) for name, level in (body.get("reference_levels") or {}).items()
        ],  # fmt: skip
        "dropped": [
            _label(dropped["feature"])
            for dropped in (body.get("selection") or {}).get("dropped", [])
        ],
        "regions_label": _label(regions["column"]) if regions else None,
        "regions": [
            {**region, "terms": _terms(region.get("terms") or [])}
            for region in regions.get("models", [])
        ],
        "source": body.get("data_source") or {},
        "poverty_line": Decimal(str(line)) if line is not None else None,
        "folds": validation.get("folds"),
        "validation": sorted(
            (
                (_named(method, METHODS), method == model.method, figures)
                for method, figures in (validation.get("out_of_sample") or {}).items()
            ),
            key=lambda row: not row[1],  # the model's own method first
        ),
        "in_sample": validation.get("in_sample"),
    }


def _page_values() -> dict[str, Any]:
    return {"measures": [(key, gettext(label)) for key, label in MEASURES],
            "coefficient": COEFFICIENT, "figure": FIGURE}  # fmt: skip


def _models_page(
    request: Request, principal: Principal, status: int = 200, **values: Any
) -> Response:
    with transaction(request, principal) as session:
        found = [model_summary(model) for model in list_models(session, principal)]
    for model in found:
        model["method_label"] = _named(model["method"], METHODS)
    return page(
        request, "models.html", status=status, models=found,
        may_fit=principal.may(Permission.TARGETING_FIT), methods=FIT_METHODS,
        sent=values.pop("sent", {}), **_page_values(), **values,
    )  # fmt: skip


@router.get("/targeting/models", name="web_models")
def models(request: Request, principal: PrincipalDep) -> Response:
    return _models_page(request, principal)


@router.post("/targeting/models", name="web_fit_model")
def fit_model(
    request: Request,
    principal: PrincipalDep,
    survey: Upload = None,
    households: Upload = None,
    persons: Upload = None,
    poverty_line: Text = "",
    method: Text = "wls",
    regions: Text = "",
    folds: Text = "5",
    as_of: Text = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """A PMT fitted on an uploaded survey (its households and persons in the exchange format),
    as `POST /targeting/pmt/models` fits it: a job, then another person's approval."""
    check_csrf(request, csrf)
    settings = request.app.state.settings
    sent = {"poverty_line": poverty_line, "method": method, "regions": bool(regions),
            "folds": folds, "as_of": as_of}  # fmt: skip

    def refused(status: int, message: str) -> Response:
        return _models_page(request, principal, status, fit_error=message, sent=sent)

    files = {"survey": chosen_file(survey), "households": chosen_file(households),
             "persons": chosen_file(persons)}  # fmt: skip
    if None in files.values():
        return refused(422, gettext(NO_FILES))
    if message := too_large(request, *files.values()):
        return refused(422, message)

    def build(session) -> Response:
        principal.require(Permission.TARGETING_FIT)
        line = read_amount(poverty_line)
        if line is None:
            raise InvalidInput(gettext(NO_LINE))
        if method not in FIT_METHODS:
            raise InvalidInput(gettext(BAD_METHOD))
        if not folds.strip().isdigit() or not 2 <= int(folds) <= 20:
            raise InvalidInput(gettext(BAD_FOLDS))
        day = read_day(as_of)
        with upload_folder(settings) as folder:
            saved = {stem: keep_upload(folder, stem, upload.filename, upload.file)
                     for stem, upload in files.items()}  # fmt: skip
            params = FitParams(saved["survey"], line, method, bool(regions), int(folds), day,
                               folder)  # fmt: skip
            # Started inside: a job that cannot start leaves no upload behind.
            return started_job(request, principal, FIT_JOB, params)

    return start_checked(request, principal, build, refused)


def _model_page(
    request: Request, principal: Principal, version: str, status: int = 200, **notes: Any
) -> Response:
    with transaction(request, principal) as session:
        require_model_reader(principal)
        view = _model_view(get_model(session, version))
    may_approve = principal.may(Permission.TARGETING_APPROVE)
    return page(
        request, "model.html", status=status, model=view, may_approve=may_approve,
        **_page_values(), **notes,
    )  # fmt: skip


@router.get("/targeting/models/{version}", name="web_model")
def model(request: Request, principal: PrincipalDep, version: Version) -> Response:
    approved = request.query_params.get("approved") == "1"
    notice = gettext(APPROVED) if approved else None
    return _model_page(request, principal, version, notice=notice)


@router.post("/targeting/models/{version}/approve", name="web_approve_model")
def approve_model(
    request: Request,
    principal: PrincipalDep,
    version: Version,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    check_csrf(request, csrf)
    try:
        with transaction(request, principal) as session:
            approve_for(session, principal, version)
    except Forbidden as error:
        # With the permission, the refusal is the four-eyes rule's: said in the page's language.
        four_eyes = principal.may(Permission.TARGETING_APPROVE)
        message = gettext(OWN_MODEL) if four_eyes else service_detail(error)
        return _model_page(request, principal, version, status=403, refusal=message)
    except Conflict:
        return _model_page(
            request, principal, version, status=409, refusal=gettext(APPROVED_ALREADY)
        )
    # Post, redirect, get: reloading the page does not send the approval again.
    return RedirectResponse(f"{PREFIX}/targeting/models/{version}?approved=1", status_code=303)
