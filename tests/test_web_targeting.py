"""Targeting runs started from the pages, as the API's routes start them: a feature snapshot,
PMT scores by an approved model on that snapshot, multidimensional poverty, and an evaluation
of the MPI's ranking against uploaded reference welfare; each form's refusals said at the form
with nothing started, and the area rule of bulk runs (the whole registry needs a national
scope)."""

import re
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import test_web_programs
from sijill.core.i18n.formats import format_percent
from sijill.jobs.models import Job
from sijill.jobs.service import wait_for_end
from sijill.synth.welfare import POVERTY_LINE
from web_support import csrf_of, sign_in

country = test_web_programs.country
world = test_web_programs.world


def _jobs(engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Job))


def _ended(engine, response) -> Job:
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/web/jobs/(\d+)", response.headers["location"])
    assert found, response.headers["location"]
    assert wait_for_end(int(found.group(1)), 120)
    with Session(engine) as session:
        job = session.get(Job, int(found.group(1)))
    assert job.state == "succeeded", job.error
    return job


def test_targeting_runs_started_from_the_pages(world, country):
    client, engine = world["client"], world["engine"]
    sign_in(client, "officer")
    form = client.get("/web/targeting")
    assert form.status_code == 200 and 'href="/web/targeting"' in form.text
    versions = re.findall(r'<option value="(pmt-[0-9a-f]{16})"', form.text)
    assert len(versions) == 1
    csrf = csrf_of(form.text)
    before = _jobs(engine)

    # Refused at its form, with what was sent, and nothing started.
    bad_day = client.post("/web/targeting/snapshots", data={"csrf": csrf, "as_of": "30/11/2026"})
    assert bad_day.status_code == 422 and 'id="snapshot-error"' in bad_day.text
    assert 'value="30/11/2026"' in bad_day.text
    no_token = client.post("/web/targeting/snapshots", data={"as_of": ""})
    assert no_token.status_code == 403
    assert _jobs(engine) == before

    snapshot = _ended(engine, client.post("/web/targeting/snapshots",
                                          data={"csrf": csrf, "as_of": "2026-11-30"}))  # fmt: skip
    assert snapshot.kind == "feature_snapshot" and snapshot.outcome["households"] > 0
    snapshot_id = str(snapshot.outcome["snapshot_id"])
    page = client.get(f"/web/jobs/{snapshot.id}")
    assert "Household features" in page.text and "Feature snapshot" in page.text

    score = {"csrf": csrf, "model_version": versions[0], "snapshot_id": snapshot_id}
    unknown = client.post("/web/targeting/scores", data=score | {"snapshot_id": "x1"})
    assert unknown.status_code == 422 and 'id="score-error"' in unknown.text
    scored = _ended(engine, client.post("/web/targeting/scores", data=score))
    assert scored.kind == "pmt_score" and scored.outcome["snapshot_id"] == int(snapshot_id)
    assert scored.outcome["households_scored"] == snapshot.outcome["households"]
    poor = _ended(engine, client.post("/web/targeting/mpi",
                                      data={"csrf": csrf, "snapshot_id": snapshot_id}))  # fmt: skip
    assert poor.kind == "mpi" and poor.outcome["households_scored"] > 0

    reference = (country / "truth_households.parquet").read_bytes()
    files = {"reference": ("truth.parquet", reference, "application/octet-stream")}
    both = {"csrf": csrf, "mpi": "1", "coverage": "20", "budget": "1000"}
    refused = client.post("/web/targeting/evaluations", data=both, files=files)
    assert refused.status_code == 422 and "either a coverage or a budget" in refused.text
    no_file = client.post("/web/targeting/evaluations", data={"csrf": csrf, "coverage": "20"})
    assert no_file.status_code == 422 and 'id="evaluation-error"' in no_file.text
    assert _jobs(engine) == before + 3
    evaluation = _ended(engine, client.post(
        "/web/targeting/evaluations",
        data={"csrf": csrf, "mpi": "1", "coverage": "20", "poverty_line": "1500",
              "as_of": "2026-11-30", "snapshot_id": snapshot_id},
        files=files,
    ))  # fmt: skip
    assert evaluation.kind == "targeting_evaluate" and evaluation.outcome["households"] > 0
    report = client.get(f"/web/jobs/{evaluation.id}")
    assert f'href="/web/targeting/evaluations/{evaluation.id}"' in report.text


def test_targeting_runs_keep_to_the_users_areas(world):
    client, engine = world["client"], world["engine"]
    sign_in(client, "local")  # a program officer of SJ02
    form = client.get("/web/targeting")
    assert form.status_code == 200
    assert 'value="SJ02"' in form.text and '<option value="">' not in form.text
    before = _jobs(engine)
    whole = client.post("/web/targeting/snapshots", data={"csrf": csrf_of(form.text)})
    assert whole.status_code == 403 and 'id="snapshot-error"' in whole.text
    assert _jobs(engine) == before
    client.cookies.clear()
    sign_in(client, "payer")  # no targeting permission
    assert client.get("/web/targeting").status_code == 403
    assert 'href="/web/targeting"' not in client.get("/web/households").text


def test_a_pmt_fitted_from_the_page_waits_for_another_persons_approval(world, country):
    client, engine = world["client"], world["engine"]
    sign_in(client, "officer")
    listed = client.get("/web/targeting/models")
    assert listed.status_code == 200 and 'id="fit"' in listed.text
    csrf = csrf_of(listed.text)
    files = {
        stem: (f"{stem}.parquet", (country / f"{stem}.parquet").read_bytes(), "application/x")
        for stem in ("survey", "households", "persons")
    }
    # Not the fixture's model (a model's version is its content's digest): other folds.
    form = {"csrf": csrf, "poverty_line": str(POVERTY_LINE), "method": "wls", "folds": "4"}
    before = _jobs(engine)
    missing = client.post("/web/targeting/models", data=form, files={"survey": files["survey"]})
    assert missing.status_code == 422 and "the three files" in missing.text
    folds = client.post("/web/targeting/models", data=form | {"folds": "1"}, files=files)
    assert folds.status_code == 422 and 'id="fit-error"' in folds.text
    text_file = files | {"survey": ("survey.txt", b"household_key\n", "text/plain")}
    unreadable = client.post("/web/targeting/models", data=form, files=text_file)
    assert unreadable.status_code == 422 and ".csv, .xlsx or .parquet" in unreadable.text
    assert _jobs(engine) == before
    fitted = _ended(engine, client.post("/web/targeting/models", data=form, files=files))
    assert fitted.kind == "pmt_fit" and fitted.outcome["households"] == 250
    version = fitted.outcome["version"]
    page = client.get("/web/targeting/models")
    assert f'href="/web/targeting/models/{version}"' in page.text
    assert page.text.count("awaiting approval") == 1
    # The fitter may not approve it: four eyes.
    own = client.post(f"/web/targeting/models/{version}/approve", data={"csrf": csrf})
    assert own.status_code == 403
    # Its upload is gone once the job has read it.
    assert not list(world["settings"].work_dir.rglob("survey.parquet"))


def test_a_runs_page_shows_what_it_found_and_keeps_to_its_area(world):
    client, engine = world["client"], world["engine"]
    sign_in(client, "officer")
    csrf = csrf_of(client.get("/web/targeting").text)
    national = _ended(engine, client.post("/web/targeting/mpi", data={"csrf": csrf}))
    local = _ended(engine, client.post("/web/targeting/mpi",
                                       data={"csrf": csrf, "area_code": "SJ02"}))  # fmt: skip
    run_id = national.outcome["run_id"]
    assert f'href="/web/targeting/runs/{run_id}"' in client.get(f"/web/jobs/{national.id}").text
    page = client.get(f"/web/targeting/runs/{run_id}")
    assert page.status_code == 200
    h = Decimal(str(national.outcome["summary"]["national"]["H"]))
    assert f'<dd id="mpi-h"><bdi>{format_percent(h, "en")}</bdi></dd>' in page.text
    assert "Years of schooling" in page.text and 'id="indicators"' in page.text
    client.cookies.set("sijill_lang", "ar")
    arabic = client.get(f"/web/targeting/runs/{run_id}")
    assert 'dir="rtl"' in arabic.text and "سنوات الدراسة" in arabic.text
    client.cookies.set("sijill_lang", "en")
    features = client.get("/web/targeting/features")
    assert features.status_code == 200 and '<code dir="ltr">hh_size</code>' in features.text
    # A program officer of SJ02 reads the SJ02 run, and the national one is missing to them.
    client.cookies.clear()
    sign_in(client, "local")
    assert client.get(f"/web/targeting/runs/{local.outcome['run_id']}").status_code == 200
    hidden = client.get(f"/web/targeting/runs/{run_id}")
    missing = client.get("/web/targeting/runs/999999")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text == missing.text
