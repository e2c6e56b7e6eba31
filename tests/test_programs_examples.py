"""The region's schemes in examples/programs/: each file passes `sijill programs check`, and
each runs end to end on a synthetic country (the demo's seed, so the areas the specs name
exist) with its decisions, counts, costs and every household's amount checked against the
scheme computed apart, household by household in plain Python, from the snapshot's feature
view and the scores; on SQLite and PostgreSQL."""

import json
import math
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from factories import commands_as, imported_registry
from sijill.cli import _register_commands
from sijill.cli import app as cli_app
from sijill.demo import DEMO_SEED
from sijill.programs.benefits import parse_formula
from sijill.programs.conditions import parse_conditions
from sijill.programs.models import EligibilityDecision, ProgramRun
from sijill.programs.rules import compile_rules, evaluate
from sijill.programs.service import run_program
from sijill.programs.spec import load_spec
from sijill.security.principal import Grant, Principal
from sijill.synth import geography
from sijill.synth.service import generate
from sijill.synth.welfare import POVERTY_LINE
from sijill.targeting.models import HouseholdScore
from sijill.targeting.pmt_models import approve
from sijill.targeting.runs import fit_survey
from sijill.targeting.service import load_snapshot

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "programs"
SPECS = sorted(EXAMPLES.glob("*.yaml"))
FITTER = Principal("fitter", (Grant("analyst", None),))
ROLE = "program_officer"
OFFICER = Principal("officer", (Grant(ROLE, None),))
DAY = date(2026, 11, 30)
CENT = Decimal("0.01")


def test_the_examples_are_the_regions_schemes():
    assert [path.stem for path in SPECS] == sorted(
        [
            "eg-takaful", "eg-karama", "ma-tayssir", "jo-naf-cash", "jo-fuel-compensation-2012",
            "ps-cash-transfer", "mr-tekavoul", "tn-amen", "universal-child-benefit",
            "universal-social-pension",
        ]
    )  # fmt: skip
    for path in SPECS:
        assert path.read_text().startswith("# "), f"{path.name}: no source comment at the top"
        assert load_spec(path).currency == "XSJ"
    # The conditional transfers condition on school attendance.
    for code in ("eg-takaful", "ma-tayssir"):
        document = load_spec(EXAMPLES / f"{code}.yaml").document
        assert [c.name for c in parse_conditions(document, code)] == ["school_attendance"]


@pytest.mark.parametrize("path", SPECS, ids=lambda path: path.stem)
def test_programs_check_passes_on_every_example(path):
    if not cli_app.registered_commands:
        _register_commands()
    result = CliRunner().invoke(
        cli_app, ["programs", "check", str(path), "--as-of", DAY.isoformat(), "--output", "json"]
    )
    assert result.exit_code == 0, result.output
    assert f'"program": "{path.stem}"' in result.stdout


def test_tayssirs_communes_are_rural_localities_of_the_demo_country():
    """Its areas are chosen from the demo country's geography, which depends on the seed only."""
    geo = geography.build(np.random.default_rng([DEMO_SEED, 0]))
    rural = {a.code for a in geo.areas if a.level == "locality" and not a.urban and not a.camp}
    areas = load_spec(EXAMPLES / "ma-tayssir.yaml").areas
    assert len(areas) == 19 and set(areas) <= rural


@pytest.fixture(scope="module")
def country(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("examples") / "synth"
    generate(1500, DEMO_SEED, out)
    # A survey of 500 households with their true consumption to fit the PMT on (synth's own 1%
    # survey of so small a country is too small), as tests/test_targeting_runs.py does.
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
        artifact = fit_survey(
            engine,
            principal=FITTER,
            survey=country / "survey.parquet",
            poverty_line=Decimal(POVERTY_LINE),
            folds=3,
        )
        with Session(engine) as session, session.begin():
            approve(session, artifact["version"], OFFICER.username)
        yield engine, settings


# --- the schemes computed apart: (eligible, amount per cycle in major units) per household --


def _half_up(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _six(value: float) -> Decimal:
    """A float part of an amount (from a score) fixed to six decimals, as the spec says."""
    return Decimal(repr(value)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def _takaful(h, p):
    left = p["max_children"]
    paid = Decimal(0)
    # The three children paid are counted from the highest amount down.
    for level, amount in (
        ("n_children_upper_secondary", p["per_child_secondary"]),
        ("n_children_lower_secondary", p["per_child_preparatory"]),
        ("n_children_primary", p["per_child_primary"]),
        ("n_children_0_4", p["per_child_under_school_age"]),
    ):
        counted = min(h[level], max(left, 0))
        paid += counted * amount
        left -= h[level]
    eligible = h["n_children_0_17"] > 0 and h["pmt_score"] < p["pmt_cutoff"]
    return eligible, p["base_amount"] + paid


def _karama(h, p):
    persons = h["n_elderly_65_without_pension"] + h["n_severe_disability"] + h["n_orphans"]
    eligible = persons > 0 and h["pmt_score"] < p["pmt_cutoff"]
    return eligible, min(persons, p["max_persons"]) * p["per_person"]


TAYSSIR_AREAS = set(load_spec(EXAMPLES / "ma-tayssir.yaml").areas)


def _tayssir(h, p):
    months = p["months_per_cycle"]
    secondary = min(h["n_children_lower_secondary"], p["max_children"])
    primary = min(h["n_children_primary"], max(p["max_children"] - secondary, 0))
    amount = months * (
        secondary * p["per_child_lower_secondary"] + primary * p["per_child_primary"]
    )
    pupils = h["n_children_primary"] + h["n_children_lower_secondary"]
    return h["area_code"] in TAYSSIR_AREAS and pupils > 0, amount


def _naf(h, p):
    line = float(p["poverty_line"])
    gap = _six(float(p["gap_share"]) * max(line - math.exp(h["pmt_score"]), 0) * h["hh_size"] / 12)
    amount = max(min(gap, p["maximum_amount"]), p["minimum_amount"])
    return math.exp(h["pmt_score"]) < line, amount


def _fuel(h, p):
    income = h["household_income_monthly"] or 0  # unknown income counts as below
    eligible = income < p["income_ceiling_monthly"] * 100
    return eligible, min(h["hh_size"], p["max_persons"]) * p["per_person"]


def _palestine(h, p):
    consumption = math.exp(h["pmt_score"])
    deprived = h["mpi_score"] is not None and h["mpi_score"] >= p["deprivation_cutoff"]
    eligible = consumption < p["deep_poverty_line"] or (
        consumption < p["poverty_line"] and deprived
    )
    gap = _six(max(float(p["poverty_line"]) - consumption, 0) * h["hh_size"] / 4)
    return eligible, max(min(gap, p["maximum_amount"]), p["minimum_amount"])


def _tekavoul(h, p):
    in_area = h["governorate_code"] in ("SJ05", "SJ06")
    return in_area and h["pmt_score"] < p["pmt_cutoff"], p["per_household"]


def _amen(h, p):
    children = min(h["n_children_5_17"], p["max_children"])
    return h["pmt_score"] < p["pmt_cutoff"], p["per_household"] + children * p["per_child"]


def _child_benefit(h, p):
    return h["n_children_0_17"] > 0, h["n_children_0_17"] * p["per_child"]


def _social_pension(h, p):
    elderly = h["n_elderly_65_without_pension"]
    return elderly > 0, elderly * p["per_person"]


SCHEMES = {
    "eg-takaful": _takaful,
    "eg-karama": _karama,
    "ma-tayssir": _tayssir,
    "jo-naf-cash": _naf,
    "jo-fuel-compensation-2012": _fuel,
    "ps-cash-transfer": _palestine,
    "mr-tekavoul": _tekavoul,
    "tn-amen": _amen,
    "universal-child-benefit": _child_benefit,
    "universal-social-pension": _social_pension,
}


def _parameters(document: dict) -> dict[str, Decimal]:
    """The spec's parameters in force on DAY, read from the YAML as plain data."""
    values = {}
    for name, body in document.get("parameters", {}).items():
        dated = sorted((start, value) for start, value in body["values"].items() if start <= DAY)
        value = dated[-1][1]
        value = value["value"] if isinstance(value, dict) else value
        values[name] = Decimal(str(value))
    return values


def _expected(document: dict, households: list[dict]) -> pl.DataFrame:
    scheme = SCHEMES[document["program"]]
    parameters = _parameters(document)
    rows = []
    for household in households:
        eligible, amount = scheme(household, parameters)
        rows.append((household["household_id"], eligible, _half_up(amount)))
    frame = pl.DataFrame(
        rows, schema={"household_id": pl.Int64, "eligible": pl.Boolean, "amount": pl.Int64},
        orient="row",
    )  # fmt: skip
    ranked = frame.filter("eligible")
    if "ranking" in document:  # poorest first by the PMT score, ties by household ID
        scores = pl.DataFrame(
            [(h["household_id"], h["pmt_score"]) for h in households],
            schema={"household_id": pl.Int64, "pmt_score": pl.Float64},
            orient="row",
        )
        ranked = ranked.join(scores, on="household_id").sort(["pmt_score", "household_id"])
    quota = (document.get("quota") or {}).get("households")
    selected = ranked.head(quota) if quota is not None else ranked
    return frame.with_columns(
        status=pl.when(pl.col("household_id").is_in(selected["household_id"].implode()))
        .then(1)
        .when("eligible")
        .then(2)
        .otherwise(0)
    )


def _scores(session: Session, run_id: int, name: str) -> pl.DataFrame:
    rows = session.execute(
        select(HouseholdScore.household_id, HouseholdScore.score).where(
            HouseholdScore.run_id == run_id
        )
    ).all()
    return pl.DataFrame(rows, schema={"household_id": pl.Int64, name: pl.Float64}, orient="row")


def _decisions(session: Session, run_id: int) -> pl.DataFrame:
    rows = session.execute(
        select(EligibilityDecision.household_id, EligibilityDecision.status).where(
            EligibilityDecision.run_id == run_id
        )
    ).all()
    return pl.DataFrame(rows, schema={"household_id": pl.Int64, "status": pl.Int64}, orient="row")


def _run_and_check(engine, settings, path: Path, document: dict, snapshot_id: int | None):
    """Run one spec on the registry and compare it with the scheme computed apart; the run."""
    report = run_program(
        engine, settings, principal=OFFICER, spec_path=path, as_of=DAY, snapshot_id=snapshot_id
    )
    with Session(engine) as session:
        run = session.get(ProgramRun, report.run_id)
        snapshot = load_snapshot(session, settings, OFFICER, run.snapshot_id)
        view = snapshot.view.with_columns(pl.col("household_id").cast(pl.Int64))
        for name, run_id in run.score_runs.items():
            view = view.join(_scores(session, run_id, name), on="household_id", how="left")
        got = _decisions(session, run.id).sort("household_id")
    for name in ("pmt_score", "mpi_score"):
        if name not in view.columns:
            view = view.with_columns(pl.lit(None, pl.Float64).alias(name))
    households = view.to_dicts()
    expected = _expected(document, households).sort("household_id")
    name = document["program"]
    assert got["household_id"].to_list() == expected["household_id"].to_list(), name
    assert got["status"].to_list() == expected["status"].to_list(), name
    selected = expected.filter(pl.col("status") == 1)
    assert report.eligible == expected["eligible"].sum() > 0, name
    assert report.selected == selected.height, name
    assert report.cost_per_cycle == selected["amount"].sum(), name
    # Every household's amount, as the rules compute it over the same view and scores.
    spec = load_spec(path)
    scores = {
        score: view.select("household_id", pl.col(score).alias("score")) for score in run.score_runs
    }
    amounts = evaluate(compile_rules(spec, parse_formula(spec), DAY), view, scores)
    amounts = amounts.sort("household_id").filter(pl.col("status") != 0)
    wanted = expected.filter(pl.col("status") != 0)
    assert amounts["amount"].to_list() == wanted["amount"].to_list(), name
    return report


def test_every_example_runs_on_the_synthetic_country_as_computed_apart(registry, tmp_path):
    engine, settings = registry
    snapshot_id = None
    reports = {}
    for path in SPECS:
        document = yaml.safe_load(path.read_text())
        report = _run_and_check(engine, settings, path, document, snapshot_id)
        snapshot_id = report.snapshot_id  # one snapshot, scored once, for every scheme
        reports[document["program"]] = report
    assert len(reports) == len(SCHEMES)
    # Rights-based designs select everyone eligible; Tayssir only inside its communes.
    for code in ("universal-child-benefit", "universal-social-pension"):
        assert reports[code].waitlisted == 0 and reports[code].selected == reports[code].eligible
    assert reports["ma-tayssir"].failed_by_clause["area"] > reports["ma-tayssir"].eligible

    # NAF's quota binds on a country of 20,000 households, not on this one: with a quota of
    # half its eligible households (a new version), the poorest half is paid, the rest waits.
    document = yaml.safe_load((EXAMPLES / "jo-naf-cash.yaml").read_text())
    half = reports["jo-naf-cash"].eligible // 2
    document.update(version=2, quota={"households": half})
    path = tmp_path / "jo-naf-cash-v2.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    report = _run_and_check(engine, settings, path, document, snapshot_id)
    assert report.selected == half and report.waitlisted == reports["jo-naf-cash"].eligible - half


def test_several_programs_run_on_one_snapshot_two_at_a_time(
    registry, tmp_path, monkeypatch, database_url
):
    """One command, three programs: the first run takes the snapshot, the two others read it,
    two at a time on PostgreSQL; again on that snapshot, nothing changes; a run that fails
    leaves the others' recorded and the command says which failed."""
    engine, settings = registry
    codes = ["universal-child-benefit", "jo-naf-cash", "eg-takaful"]
    specs = [str(EXAMPLES / f"{code}.yaml") for code in codes]
    run = ["programs", "run", "--as-of", DAY.isoformat(), "--parallel", "2", "-o", "json"]
    with commands_as(monkeypatch, engine, database_url, settings.work_dir, "officer1", ROLE):
        first = CliRunner().invoke(cli_app, [*run, *specs])
        assert first.exit_code == 0, first.output
        rows = json.loads(first.stdout)
        snapshot = rows[0]["snapshot_id"]
        again = CliRunner().invoke(cli_app, [*run, "--snapshot", str(snapshot), *specs])
        altered = yaml.safe_load((EXAMPLES / "jo-naf-cash.yaml").read_text())
        altered["eligibility"] = "hh_size >= 1"  # other rules under the same version
        (tmp_path / "jo-naf-cash.yaml").write_text(yaml.safe_dump(altered, allow_unicode=True))
        failed = CliRunner().invoke(
            cli_app,
            [*run, "--snapshot", str(snapshot), specs[0], str(tmp_path / "jo-naf-cash.yaml")],
        )
    assert [row["program"] for row in rows] == codes
    assert all(row["seconds"]["total"] > 0 and "transitions" in row for row in rows)
    assert {row["snapshot_id"] for row in rows} == {snapshot}
    with Session(engine) as session:
        for row in rows:
            recorded = session.get(ProgramRun, row["run_id"])
            assert (recorded.program, recorded.snapshot_id) == (row["program"], snapshot)
            decisions = session.scalar(
                select(func.count()).where(EligibilityDecision.run_id == row["run_id"])
            )
            assert decisions == row["households_assessed"] > 0
    assert again.exit_code == 0, again.output
    assert [(r["run_id"], r["unchanged"]) for r in json.loads(again.stdout)] == [
        (row["run_id"], True) for row in rows
    ]
    assert failed.exit_code == 1
    assert [r["program"] for r in json.loads(failed.stdout)] == [codes[0]]
    assert "not run: jo-naf-cash.yaml: version 1 of jo-naf-cash has already run" in failed.stderr
