"""A program's decisions explained in Arabic, French and English from the run's record alone,
within the reader's areas and audited; notification letters as HTML and PDF (the Arabic PDF's
text read back with pdftotext), written privately, with or without a PDF renderer."""

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from factories import commands_as
from sijill.cli import app as cli_app
from sijill.core.areas import Area
from sijill.core.db import session_factory
from sijill.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from sijill.core.ids import format_id
from sijill.programs.explain import DECISIONS, explain, explain_decisions
from sijill.programs.models import EligibilityDecision, ProgramRun
from sijill.programs.notices import write_notices
from sijill.programs.run_context import known_context, run_context
from sijill.programs.service import run_program
from sijill.programs.spec import SpecError, parse_spec
from sijill.registry.models import Household, Membership, Person
from sijill.security.audit.models import AuditRecord
from sijill.security.audit.service import append_now
from sijill.security.principal import Grant, Principal
from sijill.targeting.models import FeatureSnapshot, HouseholdScore
from sijill.targeting.service import load_snapshot, snapshot_folder
from test_programs import DAY, OFFICER, country, registry, spec_document  # noqa: F401

ANALYST = Principal("analyst", (Grant("analyst", None),))
LABEL = {"ar": "مؤشر الحرمان", "fr": "indice de privation", "en": "deprivation index"}
CLAUSES = [
    {"name": "children", "where": "n_children_0_17 > 0"},
    {"name": "deprived", "where": "mpi_score >= deprivation_cutoff"},
    {"name": "sized", "where": "hh_size BETWEEN 1 AND 40"},
    {"name": "adults", "where": "hh_size - n_children_0_17 >= 1"},
]


def _document() -> dict:
    document = spec_document(eligibility=CLAUSES)
    document["scores"] = {"mpi_score": {"kind": "mpi", "label": LABEL}}
    return document


@pytest.fixture
def decided(registry, tmp_path):  # noqa: F811
    """A run of the spec, its decisions with what they read (apart from the code under test:
    the snapshot's own view and the scores' rows)."""
    engine, settings = registry
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_document(), allow_unicode=True))
    report = run_program(engine, settings, principal=OFFICER, spec_path=path, as_of=DAY)
    with Session(engine) as session:
        run = session.get(ProgramRun, report.run_id)
        view = load_snapshot(session, settings, OFFICER, run.snapshot_id).view
        scores = session.execute(
            select(HouseholdScore.household_id, HouseholdScore.score).where(
                HouseholdScore.run_id == run.score_runs["mpi_score"]
            )
        ).all()
        decisions = session.execute(
            select(
                EligibilityDecision.household_id,
                EligibilityDecision.status,
                EligibilityDecision.passed,
                EligibilityDecision.rank,
            ).where(EligibilityDecision.run_id == run.id)
        ).all()
    frame = (
        pl.DataFrame(decisions, schema=dict.fromkeys(_DECISION, pl.Int64), orient="row")
        .join(
            view.with_columns(pl.col("household_id").cast(pl.Int64)).select(
                "household_id", "n_children_0_17", "hh_size"
            ),
            on="household_id",
        )
        .join(
            pl.DataFrame(
                scores, schema={"household_id": pl.Int64, "score": pl.Float64}, orient="row"
            ),
            on="household_id",
        )
        .sort("household_id")
    )
    return engine, settings, run, frame


_DECISION = ("household_id", "status", "passed", "rank")


def _shown(number: float, comma: bool = False) -> str:
    text = f"{number:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if comma else text


def _refused_on_deprivation(frame: pl.DataFrame) -> dict:
    """A household that failed the deprivation clause alone, with a score well under 0.2."""
    return frame.filter(
        (pl.col("passed") == 0b1101) & (pl.col("score") < 0.19) & (pl.col("score") > 0)
    ).row(0, named=True)


def test_a_label_is_given_in_the_three_languages():
    document = _document()
    document["scores"]["mpi_score"]["label"] = {"ar": "x", "en": "y"}
    with pytest.raises(SpecError, match=r"spec: scores.mpi_score.label: a label is"):
        parse_spec(document)
    assert parse_spec(_document()).scores[0].name == "mpi_score"


def test_an_explanation_replays_the_decision_in_three_languages(decided):
    engine, settings, run, frame = decided
    refused = _refused_on_deprivation(frame)
    household = refused["household_id"]
    with Session(engine) as session:
        english = explain(session, settings, OFFICER, run.id, household, "en")
        french = explain(session, settings, OFFICER, run.id, household, "fr")
        arabic = explain(session, settings, OFFICER, run.id, household, "ar")
    score = refused["score"]
    assert english.status == "not_eligible" and english.rank is None
    assert english.summary == (
        f"not eligible: deprivation index {_shown(score)} is below the cut-off 0.2"
    )
    assert french.summary == (
        f"non éligible : indice de privation de {_shown(score, True)}, en dessous du seuil de 0,2"
    )
    assert arabic.summary == f"غير مؤهلة: مؤشر الحرمان {_shown(score)} أدنى من الحد الفاصل 0.2"
    # Each clause: passed as the decision's bits say, the values it read, the rule as run.
    clauses = {clause.name: clause for clause in english.clauses}
    assert [c.passed for c in english.clauses] == [True, False, True, True]
    assert clauses["deprived"].values == {"mpi_score": score}
    assert clauses["deprived"].rule_as_run == '"mpi_score" >= 0.2'
    assert clauses["deprived"].parameters["deprivation_cutoff"]["value"] == "0.2"
    size, children = refused["hh_size"], refused["n_children_0_17"]
    assert clauses["children"].sentence == f"children 0-17 {children} is above the cut-off 0"
    assert clauses["sized"].sentence == f"household size {size} is between 1 and 40"
    # Not a simple comparison: the rule is quoted with the values it read.
    assert clauses["adults"].sentence == (
        f"the rule «hh_size - n_children_0_17 >= 1» is met "
        f"(values: hh_size = {size} and n_children_0_17 = {children})"
    )
    assert json.loads(json.dumps(english.as_dict()))["household_id"] == format_id(household)

    selected = frame.filter(pl.col("status") == 1).row(0, named=True)
    waiting = frame.filter(pl.col("status") == 2).row(0, named=True)
    with Session(engine) as session:
        chosen = explain(session, settings, OFFICER, run.id, selected["household_id"], "en")
        later = explain(session, settings, OFFICER, run.id, waiting["household_id"], "fr")
    assert chosen.summary == f"selected: rank {selected['rank']} among the eligible households"
    assert later.position == waiting["rank"] - run.selected
    assert later.summary == f"éligible, en liste d’attente à la position {later.position}"


def test_a_households_decisions_explained_together_as_one_by_one(decided, tmp_path):
    """The household page explains all of a household's runs at once (one read of each
    snapshot and of the scores): each explanation must be the one `explain` gives."""
    engine, settings, run, frame = decided
    other = _document()
    other["program"], other["eligibility"] = (
        "elder-grant",
        [
            {"name": "sized", "where": "hh_size >= 3"},
            {"name": "deprived", "where": "mpi_score >= 0.1"},
        ],
    )
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(other, allow_unicode=True))
    second = run_program(engine, settings, principal=OFFICER, spec_path=path, as_of=DAY).run_id
    households = [*frame["household_id"].head(3), _refused_on_deprivation(frame)["household_id"]]
    for household in households:
        with Session(engine) as session:
            decisions = [
                session.execute(
                    DECISIONS.where(
                        EligibilityDecision.run_id == run_id,
                        EligibilityDecision.household_id == household,
                    )
                ).one()
                for run_id in (second, run.id)
            ]
            for language in ("ar", "fr", "en"):
                one_by_one = [
                    explain(session, settings, OFFICER, d.run_id, household, language)
                    for d in decisions
                ]
                OFFICER.take_audit()
                together = explain_decisions(
                    session, settings, OFFICER, household, decisions, language
                )
                assert together == one_by_one
                # Read together, the decisions are one reading of the household: one record.
                assert [(r.action, r.outcome, r.record_id) for r in OFFICER.take_audit()] == [
                    ("programs.explain", "ok", str(household))
                ]
    assert {e.program for e in together} == {"child-grant", "elder-grant"}


def test_explanations_follow_the_readers_areas_and_are_audited(decided):
    engine, settings, run, frame = decided
    household = frame["household_id"][0]
    with Session(engine) as session:
        area_id = session.scalar(select(Household.area_id).where(Household.id == household))
        level = session.scalar(select(Area.level).where(Area.id == area_id))
        other = session.scalar(
            select(Area.id).where(Area.level == level, Area.id != area_id).limit(1)
        )
    local = Principal("local", (Grant("grievance_officer", area_id),))
    elsewhere = Principal("elsewhere", (Grant("grievance_officer", other),))
    with Session(engine) as session:
        assert explain(session, settings, local, run.id, household).household_id == household
        with pytest.raises(NotFound) as outside:
            explain(session, settings, elsewhere, run.id, household)
        with pytest.raises(NotFound) as missing:
            explain(session, settings, local, run.id, 1_000_000_007)
        with pytest.raises(Forbidden):
            explain(session, settings, ANALYST, run.id, household)
        with pytest.raises(InvalidInput, match="language"):
            explain(session, settings, local, run.id, household, "de")
    # An outside household answers as one that does not exist.
    assert str(outside.value).replace(str(household), "H") == str(missing.value).replace(
        "1000000007", "H"
    )
    for principal in (local, elsewhere):
        append_now(session_factory(engine), principal.take_audit())
    with Session(engine) as session:
        outcomes = session.execute(
            select(AuditRecord.actor, AuditRecord.outcome).where(
                AuditRecord.action == "programs.explain",
                AuditRecord.record_id == str(household),
            )
        ).all()
    assert sorted(outcomes) == [("elsewhere", "not_found"), ("local", "ok")]


def test_an_explanation_refuses_a_snapshot_file_that_changed(decided):
    engine, settings, run, frame = decided
    with Session(engine) as session:
        record = session.get(FeatureSnapshot, run.snapshot_id)
        path = snapshot_folder(settings) / record.file_name
        path.write_bytes(path.read_bytes() + b"\0")
        with pytest.raises(InvalidInput, match="not the one recorded"):
            explain(session, settings, OFFICER, run.id, frame["household_id"][0])


def _normalised(text: str) -> str:
    """Text without white space and the bidi controls pdftotext adds. pdftotext gives shaped
    Arabic back in logical order, but moves the spaces around the neutral characters next to
    an embedded left-to-right run ("مؤهلة: مؤشر" comes back "مؤهلة :مؤشر"): the words, the
    figures and their order are compared, not the spaces."""
    return "".join(re.sub("[\u200e\u200f\u202a-\u202e\u2066-\u2069]", "", text).split())


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
@pytest.mark.parametrize("language", ["ar", "fr", "en"])
def test_letters_as_html_and_pdf_read_back(decided, tmp_path, language):
    engine, settings, run, frame = decided
    household = _refused_on_deprivation(frame)["household_id"]
    out = tmp_path / "letters"
    report = write_notices(
        engine, settings, principal=OFFICER, run_id=run.id, out=out, language=language,
        household_id=household,
    )  # fmt: skip
    assert (report.letters, report.pdfs, report.no_pdf_because) == (1, 1, None)
    stem = out / f"{format_id(household)}-{language}"
    html = stem.with_suffix(".html").read_text()
    assert f'lang="{language}" dir="{"rtl" if language == "ar" else "ltr"}"' in html
    for path in out.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600
    with Session(engine) as session:
        expected = explain(session, settings, OFFICER, run.id, household, language)
    text = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(stem.with_suffix(".pdf")), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    read = _normalised(text)
    assert _normalised(spec_document()["name"][language]) in read
    assert _normalised(expected.summary) in read


def test_letters_go_to_an_empty_folder_and_are_audited_per_batch(decided, tmp_path):
    engine, settings, run, frame = decided
    out = tmp_path / "letters"
    report = write_notices(
        engine, settings, principal=OFFICER, run_id=run.id, out=out, status="waitlisted",
        pdf=False,
    )  # fmt: skip
    waiting = frame.filter(pl.col("status") == 2).height
    assert report.letters == waiting == len(list(out.glob("*.html"))) > 0
    assert not list(out.glob("*.pdf"))
    with pytest.raises(Conflict, match="not empty"):
        write_notices(engine, settings, principal=OFFICER, run_id=run.id, out=out, pdf=False)
    again = write_notices(
        engine, settings, principal=OFFICER, run_id=run.id, out=out, status="selected",
        pdf=False, force=True,
    )  # fmt: skip
    assert again.letters == run.selected
    with Session(engine) as session:
        batches = session.scalar(
            select(func.count()).where(
                AuditRecord.action == "programs.notices", AuditRecord.record_id == str(run.id)
            )
        )
    assert batches == 2


def test_without_a_pdf_renderer_the_html_is_written_and_the_reason_given(
    decided, tmp_path, monkeypatch
):
    engine, settings, run, frame = decided
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # as when it cannot be imported
    household = frame["household_id"][0]
    report = write_notices(
        engine, settings, principal=OFFICER, run_id=run.id, out=tmp_path / "l",
        household_id=household,
    )  # fmt: skip
    assert (report.letters, report.pdfs) == (1, 0)
    assert report.no_pdf_because.startswith("PDF letters not written: WeasyPrint cannot be")
    assert "\n" not in report.no_pdf_because


def test_the_commands_explain_and_write_letters_without_names(
    decided, tmp_path, monkeypatch, database_url
):
    engine, settings, run, frame = decided
    household = format_id(_refused_on_deprivation(frame)["household_id"])
    officer = ("officer1", "program_officer")
    with commands_as(monkeypatch, engine, database_url, settings.work_dir, *officer):
        shown = CliRunner().invoke(
            cli_app,
            ["programs", "explain", "--run", str(run.id), "--household", household,
             "--language", "fr", "-o", "json"],
        )  # fmt: skip
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["summary"].startswith("non éligible : indice de privation")
        written = CliRunner().invoke(
            cli_app,
            ["programs", "notices", "--run", str(run.id), "--out", str(tmp_path / "out"),
             "--household", household, "--no-pdf"],
        )  # fmt: skip
        assert written.exit_code == 0, written.output
    letter = (tmp_path / "out" / f"{household}-ar.html").read_text()
    with Session(engine) as session:
        head = session.scalar(
            select(Person.given_name_ar)
            .join(Membership, Membership.person_id == Person.id)
            .where(Membership.household_id == int(household), Membership.relationship == "head")
        )
    assert head and head in letter
    assert head not in written.output and "1 letters" in written.output
    assert Path(tmp_path / "out").stat().st_mode & 0o777 == 0o700


def test_a_runs_rules_are_kept_and_never_taken_for_another_runs():
    """The rules derived from a finished run are read once per process; a run recorded under
    the same ID with other rules (SQLite reuses a rolled-back ID) gets its own, and a run still
    going is never kept."""

    def run(digest: str, where: str, finished: bool = True) -> ProgramRun:
        clause = {"name": "size", "where": where, "sql": where}
        finished_at = datetime(2026, 1, 2, tzinfo=UTC) if finished else None
        return ProgramRun(id=987654, program="kept", version=1, digest=digest, as_of=DAY,
                          snapshot_id=1, score_runs={}, parameters={}, clauses=[clause],
                          selected=0, finished_at=finished_at)  # fmt: skip

    body = {("kept", 1): {"name": {"en": "Kept"}}}
    first = run_context(None, run("a", "hh_size > 3"), body)
    # Kept: no spec body is passed and no session to read one from.
    again = run_context(None, run("a", "hh_size > 3"))
    assert known_context(987654, run("a", "hh_size > 3")) is again
    other = run_context(None, run("b", "children_0_4 >= 1"), body)
    going = run("c", "hh_size > 1", finished=False)
    run_context(None, going, body)
    assert known_context(987654, going) is None
    assert again.rules is first.rules and known_context(987654, run("d", "x > 1")) is None
    assert first.reads == ["hh_size"] and other.reads == ["children_0_4"]
