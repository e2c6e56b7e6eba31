"""Record linkage: the matching frame, the model artifact, and `sijill dedup` end to end on a
small synthetic country imported into the registry (SQLite and PostgreSQL)."""

import json
import time
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from factories import auth_headers
from sijill.api import create_app
from sijill.core.areas import load_areas
from sijill.core.db import make_engine
from sijill.core.files import UnreadableFile
from sijill.core.settings import Settings
from sijill.linkage import model as linkage_model
from sijill.linkage.features import match_frame
from sijill.linkage.models import LinkageModel, LinkageRun, MatchPair
from sijill.linkage.scoring import score
from sijill.registry.bulk.service import import_path
from sijill.registry.models import Person
from sijill.registry.reviews.models import POSSIBLE_DUPLICATE, ReviewFlag
from sijill.security.audit.models import AuditRecord
from sijill.synth.service import generate

ENDED = ("succeeded", "failed", "cancelled", "interrupted")


def _person(**fields) -> dict:
    return {"unique_id": 1, "household_id": 10, **fields}


def test_the_matching_frame_keys_names_dates_and_household_context():
    frame = match_frame(
        pl.DataFrame(
            [
                _person(
                    unique_id=1,
                    given_name_ar="محمد",
                    family_name_lat="Ben Salah",
                    birth_date=date(1990, 1, 1),
                    birth_date_precision="day",
                    sex="M",
                ),
                _person(
                    unique_id=2,
                    given_name_lat="Mohamed",
                    family_name_ar="بن صالح",
                    birth_date=date(1990, 5, 1),
                    birth_date_precision="month",
                    sex="M",
                ),
                _person(
                    unique_id=3,
                    household_id=10,
                    given_name_ar="فاطمة",
                    birth_date=date(1984, 3, 7),
                    birth_date_precision="day",
                    sex="F",
                ),
            ]
        )
    )
    first, second, third = frame.iter_rows(named=True)
    # The skeleton comes from whichever script a record has, so Arabic meets Latin.
    assert first["given_sk"] == second["given_sk"] and first["given_sk"] is not None
    assert first["family_sk"] == second["family_sk"]
    assert first["family_particles"] == second["family_particles"] == "bin"
    # 1 January is "born that year"; a month-precise date has no day.
    assert (first["birth_y"], first["birth_m"], first["birth_d"]) == (1990, None, None)
    assert (second["birth_y"], second["birth_m"], second["birth_d"]) == (1990, 5, None)
    assert (third["birth_m"], third["birth_d"]) == (3, 7)
    # The other members' given names, not one's own.
    assert third["others"] == [first["given_sk"]]
    assert first["national_id_index"] is None


def test_a_frame_with_a_column_of_the_wrong_kind_is_refused():
    with pytest.raises(ValueError, match="birth_date"):
        match_frame(pl.DataFrame([_person(birth_date="yesterday")]))


def test_a_saved_model_is_checked_when_read(tmp_path):
    model = linkage_model.artifact({"comparisons": [], "link_type": "dedupe_only"}, records=5)
    path = tmp_path / "model.json"
    linkage_model.save(model, path)
    assert linkage_model.load(path) == model
    edited = json.loads(path.read_text())
    edited["splink"]["probability_two_random_records_match"] = 0.5
    path.write_text(json.dumps(edited))
    with pytest.raises(UnreadableFile, match="changed after saving"):
        linkage_model.load(path)
    path.write_text('{"format": "something else"}')
    with pytest.raises(UnreadableFile, match="not a Sijill linkage model"):
        linkage_model.load(path)


@pytest.fixture(scope="module")
def country(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("linkage") / "synth"
    generate(700, 11, out)
    return out


@pytest.fixture
def registry(database_url, country, tmp_path):
    """The small country imported; an app with an administrator and a district registrar."""
    settings = Settings(database_url=database_url, work_dir=tmp_path / "work")
    engine = make_engine(database_url)
    with Session(engine) as session, session.begin():
        load_areas(session, country / "areas.csv")
    import_path(engine, settings, country, source="synth")
    app = create_app(settings)
    with TestClient(app) as client:
        sessions = app.state.sessions
        client.admin = auth_headers(sessions, settings)
        client.district = auth_headers(sessions, settings, "registrar", "SJ0101")
        client.engine = engine
        yield client
    engine.dispose()


def test_a_list_with_only_given_and_family_names_trains_and_links(country):
    """An agency's list without fathers' and grandfathers' names (and with given and family
    names swapped on some records) is linked too: no rule may need a name it lacks."""
    persons = pl.read_parquet(country / "persons.parquet").join(
        pl.read_parquet(country / "truth_persons.parquet"), on="person_key"
    )
    persons = persons.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("unique_id"))
    swap = (pl.col("unique_id") % 5 == 0) & pl.col("duplicate_of").is_not_null()
    born, length = pl.col("birth_date"), pl.col("birth_date").str.len_chars()
    frame = persons.select(
        "unique_id",
        *(
            pl.when(swap)
            .then(pl.col(f"{other}_name_{script}"))
            .otherwise(pl.col(f"{part}_name_{script}"))
            .alias(f"{part}_name_{script}")
            for part, other in (("given", "family"), ("family", "given"))
            for script in ("ar", "lat")
        ),
        "sex",
        # The exchange format's partial dates: "1964", "1958-12".
        pl.when(length == 4)
        .then(born + "-01-01")
        .when(length == 7)
        .then(born + "-01")
        .otherwise(born)
        .str.to_date()
        .alias("birth_date"),
        pl.when(length == 4)
        .then(pl.lit("year"))
        .when(length == 7)
        .then(pl.lit("month"))
        .otherwise(pl.lit("day"))
        .alias("birth_date_precision"),
        pl.col("national_id").alias("national_id_index"),
    )
    scored = score([match_frame(frame)], threshold=0.95, u_pairs=Settings().linkage_u_pairs)
    entity = dict(persons.select("unique_id", "entity_id").iter_rows())
    proposed = set(scored.pairs.select("person_a_id", "person_b_id").iter_rows())
    by_entity = persons.group_by("entity_id").agg("unique_id")["unique_id"].to_list()
    truth = {(a, b) for ids in by_entity for a in ids for b in ids if a < b}
    found = proposed & truth
    assert all(entity[a] == entity[b] for a, b in found)
    precision, recall = len(found) / len(proposed), len(found) / len(truth)
    # Less to go on than the registry (no fathers' names, area or household): a mistyped
    # national ID or another script outweighs what is left on a few pairs.
    assert precision >= 0.9 and recall >= 0.8, (precision, recall, len(truth))
    swapped = set(persons.filter(swap)["unique_id"].to_list())
    swapped_pairs = {(a, b) for a, b in truth if a in swapped or b in swapped}
    assert len(found & swapped_pairs) >= 0.9 * len(swapped_pairs) > 0


def _run(client, headers=None, **body) -> dict:
    started = client.post("/linkage/dedup", json=body, headers=headers or client.admin)
    assert started.status_code == 202, started.text
    give_up = time.monotonic() + 300
    while True:
        job = client.get(started.headers["Location"], headers=headers or client.admin).json()
        if job["state"] in ENDED:
            return job
        assert time.monotonic() < give_up, job
        time.sleep(0.1)


def _true_pairs(country: Path, engine) -> set[tuple[int, int]]:
    truth = pl.read_parquet(country / "truth_persons.parquet")
    with Session(engine) as session:
        ids = dict(session.execute(select(Person.source_key, Person.id)).all())
    keyed = truth.with_columns(
        pl.col("person_key").map_elements(lambda k: ids[f"synth:{k}"], return_dtype=pl.Int64)
    )
    pairs = keyed.join(keyed, on="entity_id", suffix="_b").filter(
        pl.col("person_key") < pl.col("person_key_b")
    )
    return {(min(a, b), max(a, b)) for a, b in pairs.select("person_key", "person_key_b").rows()}


def _flagged(engine) -> dict[tuple[int, int], ReviewFlag]:
    with Session(engine) as session:
        flags = session.scalars(select(ReviewFlag).where(ReviewFlag.kind == POSSIBLE_DUPLICATE))
        return {(f.person_a_id, f.person_b_id): f for f in flags}


def test_dedup_proposes_the_duplicates_once_and_remembers_not_the_same(registry, country):
    job = _run(registry)
    assert job["state"] == "succeeded", job
    outcome = job["outcome"]
    truth = _true_pairs(country, registry.engine)
    flagged = _flagged(registry.engine)
    assert outcome["flags_raised"] == len(flagged) > 0
    found = truth & set(flagged)
    precision, recall = len(found) / len(flagged), len(found) / len(truth)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall, len(truth))

    with Session(registry.engine) as session:
        run = session.get(LinkageRun, outcome["run_id"])
        stored = session.get(LinkageModel, run.model_version)
        pairs = session.scalars(select(MatchPair).where(MatchPair.run_id == run.id)).all()
        audit = session.scalars(
            select(AuditRecord.record_id).where(AuditRecord.action == "linkage.dedup")
        ).all()
    assert stored.body["version"] == run.model_version == outcome["model_version"]
    assert len(pairs) == outcome["pairs_proposed"] and all(
        p.match_probability >= 0.95 and p.review_flag_id for p in pairs
    )
    # Every comparison's level and weight: what a reviewer decides from.
    assert {"given_name", "birth_date", "national_id_index"} <= set(pairs[0].levels)
    assert audit == [str(run.id)]
    served = registry.get(f"/linkage/models/{run.model_version}", headers=registry.admin)
    assert served.status_code == 200 and served.json()["version"] == run.model_version

    # Side by side: both records, what differs, and what the model proposed the pair from.
    some = next(iter(flagged.values()))
    shown = registry.get(f"/linkage/review-flags/{some.id}", headers=registry.admin)
    assert shown.status_code == 200, shown.text
    view = shown.json()
    first, second = view["records"]
    assert {first["person_id"], second["person_id"]} == {
        str(some.person_a_id),
        str(some.person_b_id),
    }
    assert view["differing"] == sorted(
        k
        for k in set(first) | set(second)
        if first.get(k) != second.get(k)
        and k not in ("person_id", "version", "valid_from", "membership_start", "membership_end")
    )
    assert view["evidence"]["model_version"] == run.model_version
    assert view["evidence"]["match_probability"] >= 0.95
    assert (
        registry.get(f"/linkage/review-flags/{some.id}", headers=registry.district).status_code
        == 403
    )
    assert registry.get("/linkage/review-flags/999999", headers=registry.admin).status_code == 404

    # A reviewer says one pair is not the same person; a second run with the same model
    # proposes nothing new, and not that pair again.
    refused = next(iter(flagged.values()))
    decided = registry.post(
        f"/review-flags/{refused.id}/decision",
        json={"decision": "different_persons"},
        headers=registry.admin,
    )
    assert decided.status_code == 200, decided.text
    again = _run(registry, model_version=run.model_version)["outcome"]
    assert again["flags_raised"] == 0
    assert again["decided_before"] == 1
    assert again["already_open"] == outcome["flags_raised"] - 1


def test_dedup_of_the_whole_registry_needs_national_scope(registry):
    # Refused at once, before any job: the whole registry, or an area outside the scope.
    refused = registry.post("/linkage/dedup", json={}, headers=registry.district)
    assert refused.status_code == 403 and "whole country" in refused.json()["detail"]
    outside = registry.post("/linkage/dedup", json={"area_code": "SJ02"}, headers=registry.district)
    assert outside.status_code == 404
    assert outside.json()["detail"] == "There is no area SJ02 in your scope"
    # Inside it, a job; an area this small has too few records to train a model.
    inside = _run(registry, registry.district, area_code="SJ0101")
    assert inside["state"] == "failed" and "too few to train" in inside["error"]


def test_dedup_from_the_command_line(registry, database_url, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from factories import make_user
    from sijill.cli import _register_commands
    from sijill.cli import app as cli_app
    from sijill.core.settings import get_settings

    if not cli_app.registered_commands:
        _register_commands()
    key = make_user(registry.app.state.sessions, "dedup-cli", "administrator", None, service=True)
    monkeypatch.setenv("SIJILL_DATABASE_URL", database_url)
    monkeypatch.setenv("SIJILL_SERVICE_KEY", f"dedup-cli:{key}")
    monkeypatch.setenv("SIJILL_WORK_DIR", str(tmp_path / "work"))
    get_settings.cache_clear()
    saved = tmp_path / "model.json"
    first = CliRunner().invoke(cli_app, ["dedup", "--save-model", str(saved), "-o", "json"])
    assert first.exit_code == 0, first.output
    figures = json.loads(first.stdout)
    assert (
        figures["flags_raised"] > 0
        and linkage_model.load(saved)["version"] == figures["model_version"]
    )
    with Session(registry.engine) as session:
        flag_id = session.scalar(
            select(ReviewFlag.id).where(ReviewFlag.kind == POSSIBLE_DUPLICATE).limit(1)
        )
    pair = CliRunner().invoke(cli_app, ["review-pair", str(flag_id), "-o", "json"])
    assert pair.exit_code == 0, pair.output
    shown = json.loads(pair.stdout)
    assert len(shown["records"]) == 2 and shown["evidence"]["model_version"]
    table = CliRunner().invoke(cli_app, ["review-pair", str(flag_id)])
    assert table.exit_code == 0 and "match probability" in table.output
    again = CliRunner().invoke(cli_app, ["dedup", "--model", str(saved)])
    assert again.exit_code == 0, again.output
    assert "0 new review flags" in again.output and figures["model_version"] in again.output

    saved.write_text("{not json")
    broken = CliRunner().invoke(cli_app, ["dedup", "--model", str(saved)])
    assert broken.exit_code != 0 and "model.json: is not valid JSON" in broken.output
    get_settings.cache_clear()


def test_automatic_merges_above_the_accept_threshold(registry, database_url, tmp_path):
    from sijill.registry.merges.models import PersonMerge

    settings = Settings(
        database_url=database_url,
        work_dir=tmp_path / "auto",
        linkage_auto_merge=True,
        linkage_accept_threshold=0.999,
    )
    with TestClient(create_app(settings)) as client:
        client.admin = registry.admin
        job = _run(client)
    assert job["state"] == "succeeded", job
    merged = job["outcome"]["merged"]
    with Session(registry.engine) as session:
        merges = session.scalars(select(PersonMerge)).all()
        decided = {
            f.id: f.decision
            for f in session.scalars(select(ReviewFlag).where(ReviewFlag.state == "decided"))
        }
        lost = {m.lost_person_id: session.get(Person, m.lost_person_id) for m in merges}
    assert merged == len(merges) > 0
    for merge in merges:
        assert merge.match_probability >= 0.999 and merge.model_version
        assert decided[merge.review_flag_id] == "same_person"
        assert lost[merge.lost_person_id].merged_into_id == merge.kept_person_id
    # A lost record is no longer compared: the next run proposes none of the merged pairs.
    again = _run(registry, model_version=merges[0].model_version)["outcome"]
    assert again["records"] == job["outcome"]["records"] - merged
