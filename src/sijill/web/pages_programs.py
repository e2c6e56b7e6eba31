"""Programs and targeting evaluations: the programs of the user's areas, a program's page (its
spec written out readably, its latest run's counts and cost, its runs) and an evaluation's
page (the tables its report was written from, in the page's language).

Programs are read through `programs.catalogue` (scoped as the API's program runs are), an
evaluation through `targeting.report_tables` (its job's starter or a national administrator,
as the API serves its files)."""

import re
from decimal import Decimal
from typing import Annotated, Any

import polars as pl
from fastapi import Depends, Path, Request
from fastapi.responses import Response

from sijill.core.errors import NotFound
from sijill.core.i18n import N_, current_locale, gettext
from sijill.jobs.service import parse_job_id
from sijill.programs.catalogue import list_programs, read_program
from sijill.programs.clauses import AREA_CLAUSE
from sijill.security.principal import Principal
from sijill.targeting import features
from sijill.targeting.evaluation import ALL
from sijill.targeting.report_tables import (
    HEADINGS,
    SHARES,
    by_group,
    evaluation_folder,
    exclusion_side_by_side,
    overall,
    read_tables,
)
from sijill.web.pages_program_runs import run_form
from sijill.web.render import page
from sijill.web.routing import page_router
from sijill.web.session import page_principal, transaction

router = page_router()
PrincipalDep = Annotated[Principal, Depends(page_principal)]
ProgramCode = Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]{1,47}$")]
PERCENT = "#,##0.0%"
FIGURE = "#,##0.000"
HASH_SHOWN = 12  # characters of a rule hash: enough to tell versions apart at a glance
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")

CYCLES = {"monthly": N_("monthly"), "bimonthly": N_("every two months"),
          "quarterly": N_("quarterly")}  # fmt: skip
RECIPIENTS = {"head": N_("the head of household"), "female_caregiver": N_("the female caregiver")}
KINDS = {"eligibility": N_("eligibility"), "recertification": N_("recertification")}
ORDERS = {"ascending": N_("lowest first"), "descending": N_("highest first")}
ROUNDING = {"half_up": N_("to the nearest minor unit, halves up"),
            "half_even": N_("to the nearest minor unit, halves to even"),
            "down": N_("down to the minor unit")}  # fmt: skip
SCORE_KINDS = {"pmt": N_("PMT score"), "mpi": N_("deprivation score")}
# The evaluation's selection rule, as its parameters table names it.
RULE_LABELS = {
    "selection": N_("Selection by"), "coverage": N_("Coverage"), "budget": N_("Budget"),
    "transfer": N_("Transfer"), "transfer_per": N_("Transfer per"), "poor": N_("Reference poor"),
    "poverty_line": N_("Poverty line"), "line_used": N_("Line used"),
    "min_cell": N_("Smallest cell shown (households)"), "groups": N_("Groups"),
}  # fmt: skip
RULE_VALUES = {
    "coverage": N_("coverage"), "budget": N_("budget"), "person": N_("person"),
    "household": N_("household"), "below the poverty line": N_("below the poverty line"),
    "poorest fifth of persons": N_("poorest fifth of persons"),
}  # fmt: skip
GROUP_SIZE = N_("household size")
CELL_VALUES = {"true": N_("yes"), "false": N_("no"), "(missing)": N_("(missing)")}
DESIGN_KINDS = {"ranking": N_("ranking"), "selection": N_("selection")}


def _exact(value: Any) -> tuple[Decimal | None, str | None]:
    """A number written in a spec, and the pattern that shows all its decimals (a cut-off of
    7.495542 is not 7.496)."""
    text = str(value)
    if isinstance(value, bool) or not _DECIMAL.match(text):
        return None, None
    number = Decimal(text)
    places = max(0, -number.as_tuple().exponent)
    return number, "#,##0." + "0" * places if places else "#,##0"


def _items(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):  # one `where:` expression
        return [{"name": "", "where": value}]
    return [item for item in value or [] if isinstance(item, dict)]


def _named(code: str | None, names: dict[str, str]) -> str:
    return gettext(names[code]) if code in names else (code or "")


def _program_view(found: dict[str, Any]) -> dict[str, Any]:
    spec, latest = found["spec"], found["latest"]
    language = current_locale()
    failed = latest["summary"].get("failed_by_clause", {})
    described = spec.get("parameters") or {}
    parameters = []
    for name, record in latest["parameters"].items():
        value, pattern = _exact(record["value"])
        parameters.append(
            {
                "name": name,
                "description": (described.get(name) or {}).get("description", ""),
                "value": value,
                "pattern": pattern,
                "text": record["value"],
                "unit": record.get("unit") or "",
                "since": record["since"],
                "reference": record.get("reference") or "",
            }
        )
    clauses = [
        {
            "name": gettext(N_("geographic scope"))
            if clause["name"] == AREA_CLAUSE
            else clause["name"],
            "where": clause["where"],
            "failed": failed.get(clause["name"]),
        }
        for clause in latest["clauses"]
    ]
    quota = spec.get("quota") or {}
    ranking = spec.get("ranking") or {}
    names = spec.get("name") or {}
    return {
        "code": found["program"],
        "name": names.get(language) or found["program"],
        "other_names": [(code, text) for code, text in names.items() if code != language],
        "spec": spec,
        "currency": spec.get("currency"),
        "minor_units": found["minor_units"],
        "cycle": _named(spec.get("cycle"), CYCLES),
        "recipient": _named(spec.get("recipient", "head"), RECIPIENTS),
        "areas": spec.get("areas") or [],
        "scores": [
            {
                "name": name,
                "kind": _named(body.get("kind"), SCORE_KINDS),
                "kind_code": body.get("kind"),
                "model": body.get("model"),
            }
            for name, body in (spec.get("scores") or {}).items()
        ],
        "clauses": clauses,
        "parameters": parameters,
        "ranking": ranking.get("by"),
        "order": _named(ranking.get("order", "ascending"), ORDERS),
        "quota_households": quota.get("households"),
        "quota_budget": _exact(quota["budget"])[0] if "budget" in quota else None,
        "benefit": spec.get("benefit") or None,
        "rounding": _named((spec.get("benefit") or {}).get("rounding", "half_up"), ROUNDING),
        "exits": _items(spec.get("exits")),
        "latest": latest,
        "kind": _named(latest["kind"], KINDS),
        "runs": [{**run, "kind": _named(run["kind"], KINDS)} for run in found["runs"]],
        "hash_shown": HASH_SHOWN,
    }


@router.get("/programs", name="web_programs")
def programs(request: Request, principal: PrincipalDep) -> Response:
    with transaction(request, principal) as session:
        found = list_programs(session, principal)
    language = current_locale()
    for program in found:
        program["name"] = program["names"].get(language) or program["program"]
        program["cycle"] = _named(program["cycle"], CYCLES)
    return page(request, "programs.html", programs=found)


@router.get("/programs/{program}", name="web_program")
def program(request: Request, principal: PrincipalDep, program: ProgramCode) -> Response:
    return program_page(request, principal, program)


def program_page(
    request: Request, principal: Principal, program: str, status: int = 200, **notes: Any
) -> Response:
    """A program's page, with the form to run it for those who may (`pages_program_runs`)."""
    with transaction(request, principal) as session:
        found = read_program(session, principal, program)
        form = run_form(session, principal)
    view = _program_view(found)
    return page(request, "program.html", status=status, program=view, run_form=form, **notes)


# --- a targeting evaluation ------------------------------------------------------------------


def _group(name: str) -> str:
    feature = features.BY_NAME.get(name)
    if feature is not None:
        return getattr(feature.labels, current_locale())
    return gettext(GROUP_SIZE) if name == "hh_size_band" else name


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    rows = frame.to_dicts()
    for row in rows:
        if "group" in row:
            row["group_label"] = _group(row["group"])
            row["cell_label"] = _named(row["cell"], CELL_VALUES) if row["cell"] else ""
    return rows


def _rule(parameters: pl.DataFrame) -> list[tuple[str, Any, str | None]]:
    """(label, value, number pattern) of each parameter of the selection rule."""
    shown = []
    for name, value in parameters.iter_rows():
        if value == "":
            continue
        if name == "groups":
            value = ", ".join(_group(group.strip()) for group in value.split(","))
            shown.append((gettext(RULE_LABELS[name]), value, None))
            continue
        number, pattern = _exact(value)
        if name == "coverage" and number is not None:
            pattern = PERCENT
        elif name == "line_used" and number is not None:
            pattern = FIGURE
        shown.append(
            (
                _named(name, RULE_LABELS),
                number if number is not None else _named(value, RULE_VALUES),
                pattern,
            )  # fmt: skip
        )
    return shown


def _roc_points(roc: pl.DataFrame, designs: list[str]) -> list[dict[str, Any]]:
    """Each design's ROC curve over all households as SVG points in a 100 x 100 box."""
    curves = []
    whole = roc.filter(pl.col("group") == ALL)
    for index, design in enumerate(designs):
        curve = whole.filter(pl.col("design") == design).sort("step")
        points = " ".join(
            f"{100 * fpr:.2f},{100 - 100 * tpr:.2f}"
            for fpr, tpr in curve.select("fpr", "tpr").iter_rows()
        )
        if points:
            curves.append({"design": design, "points": points, "index": index % 4})
    return curves


@router.get("/targeting/evaluations/{job_id}", name="web_evaluation")
def evaluation(request: Request, principal: PrincipalDep, job_id: str) -> Response:
    settings = request.app.state.settings
    try:
        number = parse_job_id(job_id)
    except Exception:
        raise NotFound("There is no such evaluation") from None
    with transaction(request, principal) as session:
        job, folder = evaluation_folder(
            session, principal, settings.work_dir, number, "targeting.report"
        )
        tables = read_tables(folder)
        principal.audit("targeting.report", "ok", "job", str(job.id))
    measures = tables["measures"]
    designs = tables["designs"]["design"].to_list()
    wide, side_headings = exclusion_side_by_side(measures)
    return page(
        request,
        "evaluation.html",
        job=job,
        rule=_rule(tables["parameters"]),
        designs=[
            {**row, "kind_label": _named(row["kind"], DESIGN_KINDS)}
            for row in tables["designs"].to_dicts()
        ],
        overall=_rows(overall(measures)),
        groups=[(design, _rows(by_group(measures, design))) for design in designs],
        side=_rows(wide),
        side_headings=side_headings,
        columns=[(column, gettext(heading)) for column, heading in HEADINGS.items()],
        shares=SHARES,
        percent=PERCENT,
        figure=FIGURE,
        curves=_roc_points(tables["roc"], designs),
    )
