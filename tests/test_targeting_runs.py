"""Targeting on a registry: a PMT fitted on a survey, approved by a second person, scoring every
consenting household; MPI over the same snapshot; the runs through the CLI's service and the
API's jobs, on SQLite and PostgreSQL."""

import math
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import auth_headers, household, imported_registry
from sijill.api import create_app
from sijill.core.areas import Area
from sijill.core.errors import Forbidden, InvalidInput
from sijill.registry.models import Household
from sijill.security.audit.models import AuditRecord
from sijill.security.principal import Grant, Principal
from sijill.synth.service import generate
from sijill.targeting import mpi, pmt_design
from sijill.targeting.models import HouseholdScore, TargetingRun
from sijill.targeting.mpi_config import load_config
from sijill.targeting.pmt_models import approve
from sijill.targeting.runs import fit_survey, run_mpi, score_pmt
from sijill.targeting.service import load_snapshot

LINE = Decimal(1800)
ENDED = ("succeeded", "failed", "cancelled", "interrupted")
FITTER = Principal("fitter", (Grant("analyst", None),))
OFFICER = Principal("officer", (Grant("program_officer", None),))


@pytest.fixture(scope="module")
def country(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("targeting") / "synth"
    generate(1500, 5, out)
    # A census-like survey of 500 households with their true consumption (synth's own 1% survey
    # of so small a country is too small to fit a model on).
    truth = pl.read_parquet(out / "truth_households.parquet").sample(500, seed=3)
    truth.select(
        "household_key",
        "consumption_pc",
        pl.lit(1.0).alias("weight"),
        pl.col("region_code").alias("stratum"),
    ).write_parquet(out / "survey.parquet")
    return out


@pytest.fixture
def registry(database_url, country, tmp_path):
    with imported_registry(database_url, country, tmp_path / "work") as (engine, settings):
        yield engine, settings


def _approved_model(engine, country) -> dict:
    artifact = fit_survey(
        engine, principal=FITTER, survey=country / "survey.parquet", poverty_line=LINE, folds=3
    )
    with Session(engine) as session, session.begin(), pytest.raises(Forbidden):
        approve(session, artifact["version"], FITTER.username)
    with Session(engine) as session, session.begin():
        approve(session, artifact["version"], OFFICER.username)
    return artifact


def _consenting(engine) -> tuple[int, int]:
    with Session(engine) as session:
        households = session.scalars(select(Household.consent_purposes)).all()
    yes = sum("eligibility_assessment" in (purposes or []) for purposes in households)
    return yes, len(households) - yes


def test_a_pmt_scores_every_consenting_household_with_its_approved_model(registry, country):
    engine, settings = registry
    artifact = _approved_model(engine, country)
    assert artifact["validation"]["out_of_sample"]["wls"]["r2"] > 0.2
    report = score_pmt(engine, settings, principal=OFFICER, model_version=artifact["version"])
    consenting, refusing = _consenting(engine)
    assert refusing > 0
    assert (report.households_scored, report.households_without_consent) == (consenting, refusing)
    with Session(engine) as session:
        scores = pl.DataFrame(
            session.execute(
                select(
                    HouseholdScore.household_id, HouseholdScore.score, HouseholdScore.poor
                ).where(HouseholdScore.run_id == report.run_id)
            ).all(),
            schema=["household_id", "score", "poor"],
            orient="row",
        )
        run = session.get(TargetingRun, report.run_id)
        snapshot = load_snapshot(session, settings, OFFICER, run.snapshot_id)
        audited = session.scalar(
            select(func.count()).where(
                AuditRecord.action == "targeting.pmt", AuditRecord.record_id == str(run.id)
            )
        )
    assert (run.model_version, run.households_scored, audited) == (
        artifact["version"],
        consenting,
        1,
    )
    # The bulk SQL gives what the fitted model predicts, household by household.
    view = snapshot.view.with_columns(pl.col("household_id").cast(pl.Int64))
    joined = view.join(scores, on="household_id")
    assert joined.height == consenting
    expected = pmt_design.predict(artifact, joined)
    np.testing.assert_allclose(joined["score"].to_numpy(), expected, rtol=1e-9)
    assert (joined["poor"] == (joined["score"] < math.log(LINE))).all()
    assert report.poor == int(joined["poor"].sum())


def test_an_unapproved_model_scores_nothing(registry, country):
    engine, settings = registry
    artifact = fit_survey(
        engine, principal=FITTER, survey=country / "survey.parquet", poverty_line=LINE, folds=3
    )
    with pytest.raises(InvalidInput, match="not approved"):
        score_pmt(engine, settings, principal=OFFICER, model_version=artifact["version"])
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(TargetingRun)) == 0


def test_mpi_scores_the_snapshot_and_keeps_its_aggregates(registry):
    engine, settings = registry
    report = run_mpi(engine, settings, principal=OFFICER, area_code="SJ01")
    with Session(engine) as session:
        run = session.get(TargetingRun, report.run_id)
        snapshot = load_snapshot(session, settings, OFFICER, run.snapshot_id)
        stored = session.scalar(
            select(func.count()).where(HouseholdScore.run_id == run.id, HouseholdScore.poor)
        )
    expected = mpi.compute(snapshot.view, load_config(), min_households=5)
    assert set(snapshot.view["governorate_code"]) == {"SJ01"}
    assert report.summary["national"]["M0"] == pytest.approx(expected.national.m0)
    assert report.poor == stored == int(expected.households[mpi.POOR].sum())
    assert run.config_digest == load_config().digest and run.config is not None
    assert report.summary["decompositions"]["governorate_code"][0]["value"] == "SJ01"


def test_the_api_runs_mpi_as_a_job_and_shows_the_run(registry):
    engine, settings = registry
    app = create_app(settings)
    with TestClient(app) as client:
        headers = auth_headers(app.state.sessions, settings, "program_officer", "SJ02")
        started = client.post("/targeting/mpi", json={"area_code": "SJ02"}, headers=headers)
        assert started.status_code == 202, started.text
        job = _finished(client, started.headers["Location"], headers)
        assert job["state"] == "succeeded", job
        run_id = job["outcome"]["run_id"]
        run = client.get(f"/targeting/runs/{run_id}", headers=headers)
        assert run.status_code == 200 and run.json()["kind"] == "mpi"
        assert run.json()["summary"]["national"]["H"] is not None
        # Another governorate's officer does not see it.
        other = auth_headers(app.state.sessions, settings, "program_officer", "SJ01")
        assert client.get(f"/targeting/runs/{run_id}", headers=other).status_code == 404
        features = client.get("/targeting/features", headers=headers).json()
        assert any(f["name"] == "hh_size" and f["labels"]["ar"] for f in features)


def _finished(client, location: str, headers) -> dict:
    for _ in range(3000):  # up to five minutes on a busy machine
        job = client.get(location, headers=headers).json()
        if job["state"] in ENDED:
            return job
        time.sleep(0.1)
    raise AssertionError(f"the job did not end: {job}")


def test_an_evaluation_compares_designs_and_its_report_is_served_to_its_owner(registry, country):
    engine, settings = registry
    artifact = _approved_model(engine, country)
    app = create_app(settings)
    with TestClient(app) as client:
        owner = auth_headers(app.state.sessions, settings, "program_officer")
        started = client.post(
            "/targeting/evaluations",
            data={"pmt": [artifact["version"]], "coverage": "0.2", "poverty_line": "1800"},
            files={
                "reference": (
                    "truth.parquet",
                    (country / "truth_households.parquet").read_bytes(),
                )
            },
            headers=owner,
        )
        assert started.status_code == 202, started.text
        job = _finished(client, started.headers["Location"], owner)
        assert job["state"] == "succeeded", job
        outcome = job["outcome"]
        assert [d["kind"] for d in outcome["designs"]] == ["pmt", "mpi"]
        assert outcome["households"] + outcome["unmatched"] == outcome["reference_rows"]
        base = f"/targeting/evaluations/{job['job_id']}/files"
        page = client.get(f"{base}/report.html", headers=owner)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "data:image/png;base64," in page.text and "http://" not in page.text
        table = client.get(f"{base}/measures.csv", headers=owner)
        measures = pl.read_csv(table.content)
        overall = measures.filter(pl.col("group") == "all")
        assert overall.height == 2 and overall["exclusion_error"].is_between(0, 1).all()
        # Another officer does not see it; a name the report does not hold is not served.
        other = auth_headers(app.state.sessions, settings, "program_officer", "SJ01")
        assert client.get(f"{base}/report.html", headers=other).status_code == 404
        assert client.get(f"{base}/reference.parquet", headers=owner).status_code == 404
        assert client.get(f"{base}/..", headers=owner).status_code == 404


def test_the_commands_fit_approve_score_and_refuse_with_one_line(
    registry, country, monkeypatch, tmp_path
):
    import json

    from typer.testing import CliRunner

    from factories import make_user
    from sijill.cli import _register_commands
    from sijill.cli import app as cli_app
    from sijill.core.db import session_factory
    from sijill.core.errors import SijillError
    from sijill.core.settings import get_settings

    engine, settings = registry
    _register_commands()
    sessions = session_factory(engine)
    keys = {
        name: make_user(sessions, name, role, service=True)
        for name, role in (("fitter1", "program_officer"), ("officer1", "program_officer"))
    }
    monkeypatch.setenv("SIJILL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SIJILL_WORK_DIR", str(settings.work_dir))

    def run(user: str, *args: str):
        monkeypatch.setenv("SIJILL_SERVICE_KEY", f"{user}:{keys[user]}")
        get_settings.cache_clear()
        return CliRunner().invoke(cli_app, list(args))

    try:
        listed = run("officer1", "features", "list", "-o", "json")
        assert listed.exit_code == 0 and "hh_size" in {f["name"] for f in json.loads(listed.stdout)}
        fitted = run("fitter1", "pmt", "fit", "--survey", str(country / "survey.parquet"),
                     "--poverty-line", "1800", "--folds", "3", "-o", "json")  # fmt: skip
        assert fitted.exit_code == 0, fitted.output
        version = json.loads(fitted.stdout.strip().splitlines()[-1])["version"]
        # The command raises the user's mistake; `sijill`'s main prints it as one line.
        refused = run("fitter1", "pmt", "approve", version)
        assert isinstance(refused.exception, SijillError)
        assert "four eyes" in refused.exception.detail
        assert run("officer1", "pmt", "approve", version).exit_code == 0
        scored = run("officer1", "pmt", "score", "--model", version, "-o", "json")
        assert scored.exit_code == 0, scored.output
        assert json.loads(scored.stdout.strip().splitlines()[-1])["households_scored"] > 0
        shown = run("officer1", "pmt", "show", version, "-o", "json")
        assert json.loads(shown.stdout)["approved_by"] == "officer1"
        # Bad input names the file (and never a value of it).
        bad = tmp_path / "survey.csv"
        bad.write_text("household_key,consumption_pc,weight,stratum\nH1,abc,1,S\n")
        failed = run("fitter1", "pmt", "fit", "--survey", str(bad), "--poverty-line", "1800")
        assert isinstance(failed.exception, SijillError)
        assert failed.exception.detail.startswith("survey.csv")
        wrong = run("officer1", "mpi", "--config", str(tmp_path / "nothing.yaml"))
        assert isinstance(wrong.exception, SijillError)
        assert "nothing.yaml" in wrong.exception.detail
    finally:
        get_settings.cache_clear()


def test_a_snapshot_read_in_partitions_equals_one_read_whole(registry):
    from sijill.targeting.service import take_snapshot

    engine, settings = registry
    whole = take_snapshot(engine, settings, principal=OFFICER)
    small = settings.model_copy(update={"targeting_partition_households": 1_000})
    stages = []
    parted = take_snapshot(engine, small, principal=OFFICER, stage=stages.append)
    assert "selecting the households (2 of 2)" in stages
    # The registry is read once for all partitions, into files that do not outlive the read.
    assert stages.count("reading the registry") == 1
    assert not [path for path in settings.work_dir.iterdir() if path.name.startswith("tmp")]
    assert parted.record.households == whole.record.households > 1_000
    assert parted.record.households_without_consent == whole.record.households_without_consent
    assert parted.view.sort("household_id").equals(whole.view.sort("household_id"))


def test_a_snapshot_in_partitions_reads_the_registry_at_one_moment(registry):
    """A household registered while the partitions are computed is not in the snapshot: had
    a partition read the database then, it would have found the household but not its
    members, which were read before it was registered."""
    from sijill.registry.schemas import HouseholdCreate
    from sijill.registry.service import register_household
    from sijill.targeting.service import take_snapshot

    engine, settings = registry
    small = settings.model_copy(update={"targeting_partition_households": 1_000})
    with Session(engine) as session:
        registered = session.scalar(select(func.count()).select_from(Household))
        area_code = session.scalar(
            select(Area.code).join(Household, Household.area_id == Area.id).limit(1)
        )
    added = []

    def register_meanwhile(stage: str) -> None:
        if stage.startswith("selecting the households (1 of"):
            with Session(engine) as session, session.begin():
                created = register_household(
                    session,
                    Principal.system("test"),
                    HouseholdCreate(**household(area_code=area_code)),
                    settings=small,
                )
            added.append(created.household_id)

    parted = take_snapshot(engine, small, principal=OFFICER, stage=register_meanwhile)
    assert added, "the snapshot was not taken in partitions"
    record = parted.record
    assert record.households + record.households_without_consent == registered
    assert not parted.view.filter(pl.col("hh_size") == 0).height
