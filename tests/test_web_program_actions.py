"""A program officer's actions in the pages, without a browser: running a program from its page
(the stored spec of its latest run or an uploaded one, checked before anything starts, the same
job as `POST /programs/runs`, whose decisions it matches) and approving a fitted PMT model as a
second person (four eyes: its fitter is refused), with CSRF and permissions as the API's."""

import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import auth_headers, imported_registry
from sijill.api import create_app
from sijill.core.clock import utcnow
from sijill.core.db import session_factory
from sijill.jobs.models import Job
from sijill.jobs.service import wait_for_end
from sijill.programs.jobs import PROGRAM_JOB
from sijill.programs.models import EligibilityDecision, ProgramRun
from sijill.programs.service import run_program
from sijill.security.principal import Grant, Principal
from sijill.synth.service import generate
from sijill.targeting.models import PmtModel
from sijill.targeting.pmt_models import save_model
from test_targeting_pmt import _fitted
from web_support import csrf_of, sign_in, web_user

EXAMPLE = (
    Path(__file__).resolve().parents[1] / "examples" / "programs" / "universal-child-benefit.yaml"
)
DAY = utcnow().date()  # the registry as imported: it holds no household the day before
ENDED = 600  # seconds: a generous bound on a loaded machine, never reached when all is well


@pytest.fixture(scope="module")
def country(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("web-program-actions") / "synth"
    generate(120, 7, out)
    return out


@pytest.fixture
def world(database_url, country, tmp_path):
    """A registry where the example has run once (its page exists), and its officers."""
    with imported_registry(database_url, country, tmp_path / "work") as (engine, settings):
        sessions = session_factory(engine)
        web_user(sessions, "officer", "program_officer")
        web_user(sessions, "local", "program_officer", "SJ02")
        web_user(sessions, "reader", "grievance_officer")
        acting = Principal("officer", (Grant("program_officer", None),))
        run_program(engine, settings, principal=acting, spec_path=EXAMPLE, as_of=DAY)
        app = create_app(settings)
        with TestClient(app, follow_redirects=False) as client:
            yield {"client": client, "app": app, "engine": engine, "settings": settings}


def _program_jobs(engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).where(Job.kind == PROGRAM_JOB))


def _decisions(engine, run_id: int) -> list[tuple]:
    with Session(engine) as session:
        rows = session.execute(
            select(
                EligibilityDecision.household_id,
                EligibilityDecision.status,
                EligibilityDecision.passed,
                EligibilityDecision.rank,
            )
            .where(EligibilityDecision.run_id == run_id)
            .order_by(EligibilityDecision.household_id)
        ).all()
    return [tuple(row) for row in rows]


def _ended(app, engine, job_id: int) -> Job:
    """The job once the runner has recorded its end (its own completion point)."""
    assert wait_for_end(job_id, ENDED), "the job did not end"
    with Session(engine) as session:
        return session.get(Job, job_id)


def _uploads(settings) -> list[str]:
    """The uploads' private folders left in the work folder (each is 32 hex digits)."""
    work = settings.work_dir
    found = work.iterdir() if work.exists() else []
    return sorted(p.name for p in found if p.is_dir() and re.fullmatch("[0-9a-f]{32}", p.name))


def test_a_program_runs_from_its_page_as_through_the_api(world):
    client, app, engine, settings = (world[k] for k in ("client", "app", "engine", "settings"))
    page_url = "/web/programs/universal-child-benefit"
    assert sign_in(client, "officer").status_code == 303
    page = client.get(page_url)
    assert page.status_code == 200 and 'id="run-form"' in page.text
    assert '<option value="">' in page.text  # the whole country: a national scope
    token = csrf_of(page.text)
    before = _program_jobs(engine)

    # Without the page's CSRF token: refused, nothing started.
    refused = client.post(f"{page_url}/runs", data={"as_of": DAY.isoformat()})
    assert refused.status_code == 403 and _program_jobs(engine) == before

    # A bad new version: its message and place shown on the page, nothing started or kept.
    bad = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    bad.update(version=2, currency="dollars")
    answer = client.post(
        f"{page_url}/runs",
        data={"csrf": token, "as_of": DAY.isoformat()},
        files={"spec": ("new.yaml", yaml.safe_dump(bad), "application/yaml")},
    )
    assert answer.status_code == 422
    assert "spec.yaml: currency: &#39;dollars&#39; is not an ISO 4217 code" in answer.text
    assert 'id="run-refusal"' in answer.text
    assert _program_jobs(engine) == before and _uploads(settings) == []

    # The stored spec of the latest run, over the whole registry: the job's page next.
    started = client.post(
        f"{page_url}/runs", data={"csrf": token, "as_of": DAY.isoformat(), "area": ""}
    )
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    assert location.startswith("/web/jobs/")
    from_page = _ended(app, engine, int(location.rsplit("/", 1)[1]))
    assert from_page.state == "succeeded", from_page.error
    assert from_page.started_by == "officer"

    # The same spec and day through the API: the same decisions, household by household.
    headers = auth_headers(app.state.sessions, settings, "program_officer")
    api = client.post(
        "/programs/runs",
        data={"as_of": DAY.isoformat()},
        files={"spec": ("spec.yaml", EXAMPLE.read_bytes())},
        headers=headers,
    )
    assert api.status_code == 202, api.text
    from_api = _ended(app, engine, int(api.json()["job_id"]))
    assert from_api.state == "succeeded", from_api.error
    page_run, api_run = from_page.outcome["run_id"], from_api.outcome["run_id"]
    assert page_run != api_run
    with Session(engine) as session:
        runs = [session.get(ProgramRun, run_id) for run_id in (page_run, api_run)]
        assert runs[0].digest == runs[1].digest and runs[0].version == runs[1].version == 1
    decided = _decisions(engine, page_run)
    assert decided and decided == _decisions(engine, api_run)
    assert _uploads(settings) == []


def test_running_needs_the_permission_and_a_scope_over_the_area(world):
    client, engine = world["client"], world["engine"]
    page_url = "/web/programs/universal-child-benefit"
    # A run of one governorate: its officers see the program.
    acting = Principal("officer", (Grant("program_officer", None),))
    run_program(
        engine, world["settings"], principal=acting, spec_path=EXAMPLE, as_of=DAY,
        area_code="SJ02",
    )  # fmt: skip
    before = _program_jobs(engine)
    # A reader of programs sees the page, without the form, and cannot start a run.
    assert sign_in(client, "reader").status_code == 303
    page = client.get(page_url)
    assert page.status_code == 200 and 'id="run-form"' not in page.text
    refused = client.post(f"{page_url}/runs", data={"csrf": csrf_of(page.text)})
    assert refused.status_code == 403
    # An officer of one governorate: its areas, never the whole registry.
    client.cookies.clear()
    assert sign_in(client, "local").status_code == 303
    page = client.get(page_url)
    assert 'id="run-form"' in page.text and '<option value="">' not in page.text
    assert '<option value="SJ02">' in page.text and '<option value="SJ01">' not in page.text
    token = csrf_of(page.text)
    whole = client.post(f"{page_url}/runs", data={"csrf": token, "area": ""})
    assert whole.status_code == 403
    other = client.post(f"{page_url}/runs", data={"csrf": token, "area": "SJ01"})
    assert other.status_code == 404
    assert _program_jobs(engine) == before


# --- PMT models ------------------------------------------------------------------------------


@pytest.fixture
def models(settings, sessions, tmp_path):
    for username, role in (("fitter", "program_officer"), ("second", "program_officer"),
                           ("analyst", "analyst"), ("reader", "grievance_officer")):  # fmt: skip
        web_user(sessions, username, role)
    _, _, artifact = _fitted(tmp_path, n=300)
    with sessions() as session, session.begin():
        save_model(session, artifact, "fitter", "survey.csv")
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client, sessions, artifact


def _approval(sessions, version: str) -> str | None:
    with sessions() as session:
        return session.get(PmtModel, version).approved_by


def test_a_pmt_model_is_shown_and_approved_by_a_second_person_only(models):
    client, sessions, artifact = models
    version = artifact["version"]
    url = f"/web/targeting/models/{version}"
    assert sign_in(client, "fitter").status_code == 303
    listed = client.get("/web/targeting/models")
    assert listed.status_code == 200 and f'href="{url}"' in listed.text
    assert 'href="/web/targeting/models"' in listed.text  # the nav's link
    page = client.get(url)
    assert page.status_code == 200
    # Its coefficients, each proxy by its label: the drinking water's levels, the household size.
    for term in artifact["terms"]:
        shown = f"{abs(term['coefficient']):,.4f}"
        assert shown in page.text, term
    assert "drinking water" in page.text and '<code dir="ltr">tanker</code>' in page.text
    oos = artifact["validation"]["out_of_sample"]["wls"]["r2"]
    assert f"{oos:,.3f}" in page.text
    # The fitter's own approval: refused by the four-eyes rule, said plainly.
    token = csrf_of(page.text)
    own = client.post(f"{url}/approve", data={"csrf": token})
    assert own.status_code == 403 and "four eyes" in own.text
    assert _approval(sessions, version) is None
    # An analyst fits models but does not approve them: no button, and refused.
    client.cookies.clear()
    assert sign_in(client, "analyst").status_code == 303
    page = client.get(url)
    assert page.status_code == 200 and "/approve" not in page.text
    assert client.post(f"{url}/approve", data={"csrf": csrf_of(page.text)}).status_code == 403
    # Without the form's token: refused.
    client.cookies.clear()
    assert sign_in(client, "second").status_code == 303
    page = client.get(url)
    assert client.post(f"{url}/approve").status_code == 403
    assert _approval(sessions, version) is None
    # A second officer approves it; after that, no button, and a second approval is refused.
    approved = client.post(f"{url}/approve", data={"csrf": csrf_of(page.text)})
    assert approved.status_code == 303 and approved.headers["location"] == f"{url}?approved=1"
    assert _approval(sessions, version) == "second"
    page = client.get(approved.headers["location"])
    assert 'role="status"' in page.text and "/approve" not in page.text
    again = client.post(f"{url}/approve", data={"csrf": csrf_of(page.text)})
    assert again.status_code == 409 and _approval(sessions, version) == "second"
    # Neither fitting nor scoring: no models, and no link to them.
    client.cookies.clear()
    assert sign_in(client, "reader").status_code == 303
    assert client.get("/web/targeting/models").status_code == 403
    assert client.get(url).status_code == 403
    assert 'href="/web/targeting/models"' not in client.get("/web/households").text
