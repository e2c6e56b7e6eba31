"""The programs' pages without a browser: the list, a program's page (its spec written out, the
latest run's counts and cost as the run's row holds them, the parameters with their sources),
in English and French, refused without PROGRAMS_READ, and an unknown or out-of-scope program
answered as a missing one; a targeting evaluation's page with its figures.

A small synthetic country (the demo's seed, so the example specs' areas exist) gets a PMT
fitted and approved, then runs `examples/programs/jo-naf-cash.yaml` (ranking, quota, a benefit
between a minimum and a maximum); another gets an evaluation of the MPI's ranking against the
country's true consumption, as a job run in the foreground. One test function per registry:
building one takes most of the time."""

import re
from datetime import date
from decimal import Decimal
from html import unescape
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from factories import imported_registry
from sijill.api import create_app
from sijill.core.db import session_factory
from sijill.core.i18n.formats import format_amount, format_number
from sijill.core.ids import format_id
from sijill.demo import DEMO_SEED
from sijill.jobs.models import Job
from sijill.programs.models import ProgramRun
from sijill.programs.service import run_program
from sijill.security.principal import Grant, Principal
from sijill.synth.service import generate
from sijill.synth.welfare import POVERTY_LINE
from sijill.targeting.jobs import EVALUATE_JOB, EvaluateParams
from sijill.targeting.pmt_models import approve
from sijill.targeting.report_tables import read_tables
from sijill.targeting.runs import fit_survey
from web_support import sign_in, web_user

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "programs" / "jo-naf-cash.yaml"
FITTER = Principal("fitter", (Grant("analyst", None),))
DAY = date(2026, 11, 30)


@pytest.fixture(scope="module")
def country(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("web-programs") / "synth"
    generate(400, DEMO_SEED, out)
    truth = pl.read_parquet(out / "truth_households.parquet")
    truth.sample(250, seed=3).select(
        "household_key",
        "consumption_pc",
        pl.lit(1.0).alias("weight"),
        pl.col("region_code").alias("stratum"),
    ).write_parquet(out / "survey.parquet")
    return out


def _users(engine) -> str:
    sessions = session_factory(engine)
    web_user(sessions, "local", "program_officer", "SJ02")
    web_user(sessions, "payer", "payment_officer")
    return web_user(sessions, "officer", "program_officer")


@pytest.fixture
def world(database_url, country, tmp_path):
    """The registry with a PMT fitted and approved and a run of the example."""
    with imported_registry(database_url, country, tmp_path / "work") as (engine, settings):
        officer = _users(engine)
        acting = Principal(officer, (Grant("program_officer", None),))
        artifact = fit_survey(
            engine,
            principal=FITTER,
            survey=country / "survey.parquet",
            poverty_line=Decimal(POVERTY_LINE),
            folds=3,
        )
        with Session(engine) as session, session.begin():
            approve(session, artifact["version"], officer)
        report = run_program(engine, settings, principal=acting, spec_path=EXAMPLE, as_of=DAY)
        with TestClient(create_app(settings), follow_redirects=False) as client:
            yield {
                "client": client,
                "engine": engine,
                "settings": settings,
                "run_id": report.run_id,
            }


def evaluate_mpi(app, engine, settings, country: Path, username: str = "officer"):
    """An evaluation of the MPI's ranking against the country's true consumption, run as the
    API runs it (a job), in the foreground: its report and its job's ID."""
    report = app.state.jobs.run(
        EVALUATE_JOB,
        EvaluateParams(
            reference=country / "truth_households.parquet",
            # Inside the work folder, as the API's jobs write it: nothing else is read.
            out_dir=settings.work_dir / "evaluation" / "report",
            pmt_versions=(),
            use_mpi=True,
            designs_file=None,
            coverage=0.2,
            budget=None,
            transfer=Decimal(100),
            per_person=False,
            poverty_line=Decimal(POVERTY_LINE),
            as_of=DAY,
            area_code=None,
            snapshot_id=None,
            source=None,
            upload=None,
        ),
        Principal(username, (Grant("program_officer", None),)),
    )
    with Session(engine) as session:
        job_id = session.scalar(select(Job.id).where(Job.kind == EVALUATE_JOB))
    return report, format_id(job_id)


@pytest.fixture
def evaluated(database_url, country, tmp_path):
    with imported_registry(database_url, country, tmp_path / "work") as (engine, settings):
        _users(engine)
        app = create_app(settings)
        with TestClient(app, follow_redirects=False) as client:
            report, job_id = evaluate_mpi(app, engine, settings, country)
            yield {"client": client, "report": report, "job_id": job_id}


def _text(html: str) -> str:
    """The page's text: tags dropped, entities read, spaces collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def _run(world) -> ProgramRun:
    with Session(world["engine"]) as session:
        return session.get(ProgramRun, world["run_id"])


def test_a_programs_page_shows_its_spec_counts_and_cost_and_is_scoped(world):
    client, run = world["client"], _run(world)
    sign_in(client, "officer")
    listed = client.get("/web/programs")
    assert listed.status_code == 200
    assert 'href="/web/programs/jo-naf-cash"' in listed.text
    assert "National Aid Fund cash support" in listed.text
    assert '<a href="/web/programs">' in listed.text  # the nav link

    page = client.get("/web/programs/jo-naf-cash")
    assert page.status_code == 200, page.text
    text = _text(page.text)
    assert "National Aid Fund cash support" in text and "National Aid Fund (Jordan)" in text
    assert "الدعم النقدي لصندوق المعونة الوطنية" in text  # the other languages' names
    counts = _text(re.search(r'<dl class="counts" id="counts">.*?</dl>', page.text, re.S)[0])
    for label, value in (
        ("Households assessed", run.households_assessed),
        ("Without consent", run.households_without_consent),
        ("Eligible", run.eligible),
        ("Selected", run.selected),
        ("Waiting list", run.waitlisted),
    ):
        assert f"{label} {format_number(value, 'en')}" in counts
    assert run.selected > 0 and run.cost_per_cycle > 0
    # The cost from the run's minor units, written as English writes money.
    cost = format_amount(Decimal(run.cost_per_cycle).scaleb(-2), "XSJ", "en")
    assert f"Cost per cycle {cost}" in counts
    # Each clause as written, in a left-to-right code block, with the households failing it.
    clause = run.clauses[0]
    assert f'<code dir="ltr">{escape(clause["where"])}</code>' in page.text
    failed = run.summary["failed_by_clause"][clause["name"]]
    assert f"{clause['name']} {clause['where']} {format_number(failed, 'en')}" in text
    # The parameters in force with their value, date and source.
    parameters = _text(re.search(r'<table id="parameters">.*?</table>', page.text, re.S)[0])
    assert "minimum_amount" in parameters and "88.48 XSJ" in parameters
    assert "World Bank PAD P173974: JOD 40 x 2.212117" in parameters
    assert "poverty_line" in parameters and "1,800" in parameters and "Jan 1, 2019" in parameters
    # Ranking, quota, benefit formula, recertification; the runs with the rule hash shortened.
    assert '<code dir="ltr">pmt_score</code>, lowest first' in page.text
    assert "2,000 households" in text and "every 12 months" in text
    assert "gap_share * GREATEST(poverty_line - EXP(pmt_score), 0) * hh_size / 12" in text
    assert f">{run.digest[:12]}</code>" in page.text and run.digest not in text

    client.cookies.set("sijill_lang", "fr", path="/web")
    french = client.get("/web/programs/jo-naf-cash")
    assert french.status_code == 200
    assert 'lang="fr"' in french.text and "Aide monétaire du Fonds national d'aide" in unescape(
        french.text
    )
    french_cost = format_amount(Decimal(run.cost_per_cycle).scaleb(-2), "XSJ", "fr")
    assert french_cost in unescape(french.text)

    # Without PROGRAMS_READ: refused, and no link in the navigation.
    sign_in(client, "payer")
    assert client.get("/web/programs").status_code == 403
    assert client.get("/web/programs/jo-naf-cash").status_code == 403
    assert '<a href="/web/programs">' not in client.get("/web/households").text

    # A governorate's officer does not see a whole-registry run: the program is missing to
    # them, the same page byte for byte as a program that does not exist.
    sign_in(client, "local")
    assert "jo-naf-cash" not in client.get("/web/programs").text
    hidden = client.get("/web/programs/jo-naf-cash")
    unknown = client.get("/web/programs/no-such-program")
    malformed = client.get("/web/programs/NOT_A_CODE")
    assert hidden.status_code == unknown.status_code == malformed.status_code == 404
    assert hidden.content == unknown.content == malformed.content
    assert "jo-naf-cash" not in hidden.text


def test_an_evaluations_page_shows_its_figures_to_its_owner(evaluated):
    client, job_id = evaluated["client"], evaluated["job_id"]
    tables = read_tables(evaluated["report"].folder)
    sign_in(client, "officer")
    page = client.get(f"/web/targeting/evaluations/{job_id}")
    assert page.status_code == 200, page.text
    overall = tables["measures"].filter(pl.col("group") == "all")
    assert overall.height == 1  # the MPI's ranking
    table = _text(re.search(r'<table id="overall">.*?</table>', page.text, re.S)[0])
    for row in overall.iter_rows(named=True):
        shown = (
            f"{row['design']} {format_number(row['households'], 'en')} "
            f"{format_number(row['selected_share'], 'en', format='#,##0.0%')} "
            f"{format_number(row['inclusion_error'], 'en', format='#,##0.0%')} "
            f"{format_number(row['exclusion_error'], 'en', format='#,##0.0%')}"
        )
        assert shown in table
        assert format_number(row["auc"], "en", format="#,##0.000") in table
    assert "<caption>" in page.text and "<svg" in page.text and "<meter" in page.text
    assert "Exclusion error by group, designs side by side" in page.text

    client.cookies.set("sijill_lang", "fr", path="/web")
    french = client.get(f"/web/targeting/evaluations/{job_id}")
    pmt = overall.row(0, named=True)
    assert format_number(pmt["exclusion_error"], "fr", format="#,##0.0%") in unescape(french.text)

    # Someone else's evaluation, or none: the same missing page.
    sign_in(client, "local")
    other = client.get(f"/web/targeting/evaluations/{job_id}")
    missing = client.get("/web/targeting/evaluations/1")
    assert other.status_code == missing.status_code == 404
    assert other.content == missing.content
