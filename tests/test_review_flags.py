"""The same national ID twice, across areas: accepted, answered as any fresh ID, and flagged at
once for a reviewer who can see both records (a national registrar)."""

import json
import re
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from factories import (
    LOCALITY,
    OTHER_LOCALITY,
    as_update,
    auth_headers,
    household,
    make_areas,
    make_user,
    member_update,
    national_id,
    person,
    spouse,
)
from sijill.api import create_app
from sijill.cli import _register_commands
from sijill.cli import app as cli_app
from sijill.core import clock
from sijill.core.db import transaction
from sijill.core.errors import Forbidden
from sijill.core.settings import get_settings
from sijill.registry.bulk.service import import_path
from sijill.registry.models import Membership, Person
from sijill.registry.reviews.flags import flag_shared_national_ids, index_holders, pair_holders
from sijill.registry.reviews.models import ReviewFlag
from sijill.security.audit.models import AuditRecord
from test_import import household as import_household
from test_import import make_folder, valid_national_id
from test_import import person as import_person

DISTRICT = "SJ0101"  # holds LOCALITY, not OTHER_LOCALITY


def _document(number: str) -> dict:
    return {"type": "national_id", "number": number}


@pytest.fixture
def world(settings, sessions):
    make_areas(sessions)
    app = create_app(settings)
    with (
        TestClient(app, headers=auth_headers(sessions, settings)) as admin,
        TestClient(app, headers=auth_headers(sessions, settings, "registrar")) as national,
        TestClient(app, headers=auth_headers(sessions, settings, "registrar", DISTRICT)) as local,
    ):
        yield admin, national, local


def _flags(sessions) -> list[ReviewFlag]:
    with sessions() as session:
        return list(session.scalars(select(ReviewFlag).order_by(ReviewFlag.id)))


def _shape(response) -> tuple:
    """A response with what differs between any two registrations blanked: registry IDs,
    times, the numbers themselves."""

    def blank(value, key=None):
        if isinstance(value, dict):
            return {k: blank(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [blank(v) for v in value]
        if key in {"household_id", "person_id", "valid_from", "number", "recorded_by"}:
            return "<blank>"
        return value

    headers = sorted(k for k in response.headers if k not in {"content-length"})
    return response.status_code, headers, blank(response.json())


def test_a_national_id_held_out_of_scope_is_accepted_as_a_fresh_one_and_flagged(
    world, sessions, settings
):
    admin, national, local = world
    number = national_id()
    held = admin.post(
        "/households",
        json=household(area_code=OTHER_LOCALITY, members=[person(national_id=_document(number))]),
    )
    assert held.status_code == 201, held.text

    fresh = local.post("/households", json=household(members=[person()]))
    again = local.post(
        "/households", json=household(members=[person(national_id=_document(number))])
    )
    assert again.status_code == 201, again.text
    assert _shape(again) == _shape(fresh)

    flags = _flags(sessions)
    assert len(flags) == 1
    flag = flags[0]
    pair = {
        (int(held.json()["members"][0]["person_id"]), int(held.json()["household_id"])),
        (int(again.json()["members"][0]["person_id"]), int(again.json()["household_id"])),
    }
    assert {(flag.person_a_id, flag.household_a_id), (flag.person_b_id, flag.household_b_id)} == (
        pair
    )
    assert (flag.kind, flag.state, flag.source, flag.reason) == (
        "duplicate_national_id",
        "open",
        "api",
        "national_id_held_by_another_person",
    )
    assert flag.raised_by == "registrar-sj0101"

    listed = national.get("/review-flags")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["count"] == 1
    records = {(r["person_id"], r["household_id"]) for r in body["data"][0]["records"]}
    assert records == {(str(p), str(h)) for p, h in pair}

    # A district registrar sees neither flags nor a way to decide them.
    assert local.get("/review-flags").status_code == 403
    decided = local.post(f"/review-flags/{flag.id}/decision", json={"decision": "dismissed"})
    assert decided.status_code == 403
    assert decided.headers["content-type"] == "application/problem+json"

    # The flag's audit record names it by its ID; no audit record holds the number or a name.
    with sessions() as session:
        records = session.scalars(select(AuditRecord)).all()
    raised = [r for r in records if r.action == "review_flag.raise"]
    assert [(r.record_type, r.record_id, r.outcome) for r in raised] == [
        ("review_flag", str(flag.id), "ok")
    ]
    text = repr([(r.record_id, r.action, r.actor) for r in records])
    assert number not in text and "Ahmad" not in text


def test_a_national_id_held_in_scope_is_still_refused_and_not_flagged(world, sessions):
    admin, national, local = world
    number = national_id()
    held = local.post(
        "/households", json=household(members=[person(national_id=_document(number))])
    )
    assert held.status_code == 201
    again = local.post(
        "/households", json=household(members=[person(national_id=_document(number))])
    )
    assert again.status_code == 422
    assert "already registered" in again.json()["errors"][0]["message"]
    assert _flags(sessions) == []


def test_an_update_that_gives_a_number_held_out_of_scope_is_flagged_once(world, sessions):
    admin, national, local = world
    number = national_id()
    admin.post(
        "/households",
        json=household(area_code=OTHER_LOCALITY, members=[person(national_id=_document(number))]),
    ).raise_for_status()
    mine = local.post("/households", json=household(members=[person(), spouse()])).json()
    update = as_update(mine)
    update["members"][1] = member_update(mine["members"][1], national_id=_document(number))
    changed = local.put(f"/households/{mine['household_id']}", json=update)
    assert changed.status_code == 200, changed.text
    assert len(_flags(sessions)) == 1

    # Decided, the pair is not raised again by later changes that leave the number as it is.
    flag_id = _flags(sessions)[0].id
    national.post(f"/review-flags/{flag_id}/decision", json={"decision": "different_persons"})
    later = as_update(changed.json(), address="13 Olive Street")
    assert local.put(f"/households/{mine['household_id']}", json=later).status_code == 200
    assert [f.state for f in _flags(sessions)] == ["decided"]


def test_deciding_closes_the_flag_once_and_is_audited(world, sessions):
    admin, national, local = world
    number = national_id()
    for area in (OTHER_LOCALITY, LOCALITY):
        client = admin if area == OTHER_LOCALITY else local
        client.post(
            "/households",
            json=household(area_code=area, members=[person(national_id=_document(number))]),
        ).raise_for_status()
    flag_id = _flags(sessions)[0].id

    decided = national.post(f"/review-flags/{flag_id}/decision", json={"decision": "same_person"})
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert (body["state"], body["decision"], body["decided_by"]) == (
        "decided",
        "same_person",
        "registrar-national",
    )
    assert national.get("/review-flags").json()["count"] == 0
    assert national.get("/review-flags", params={"state": "decided"}).json()["count"] == 1

    twice = national.post(f"/review-flags/{flag_id}/decision", json={"decision": "dismissed"})
    assert twice.status_code == 409
    assert (
        national.post("/review-flags/999999/decision", json={"decision": "dismissed"}).status_code
        == 404
    )
    wrong = national.post(f"/review-flags/{flag_id}/decision", json={"decision": "maybe"})
    assert wrong.status_code == 422

    with sessions() as session:
        audited = session.execute(
            select(AuditRecord.actor, AuditRecord.outcome).where(
                AuditRecord.action == "review_flag.decide",
                AuditRecord.record_id == str(flag_id),
            )
        ).all()
    assert sorted(audited) == [("registrar-national", "conflict"), ("registrar-national", "ok")]


def test_the_same_open_pair_is_flagged_once(world, sessions):
    admin, national, local = world
    number = national_id()
    ids = []
    for area, client in ((OTHER_LOCALITY, admin), (LOCALITY, local)):
        created = client.post(
            "/households",
            json=household(area_code=area, members=[person(national_id=_document(number))]),
        ).json()
        ids.append(int(created["members"][0]["person_id"]))
    assert len(_flags(sessions)) == 1
    with transaction(sessions) as session:
        again = flag_shared_national_ids(
            session, ids, source="linkage", actor="system:test", now=clock.utcnow()
        )
    assert again == []
    assert len(_flags(sessions)) == 1


def _duplicate_rows(held: list[str]) -> list[list]:
    """Two rows holding numbers given, and two rows sharing a number nobody held before."""
    shared = valid_national_id(77)
    return [
        import_person("P1", "H1", national_id=held[0]),
        import_person("P2", "H2", national_id=held[1]),
        import_person("P3", "H3", national_id=shared),
        import_person("P4", "H3", "spouse", national_id=shared),
    ]


def _duplicate_folder(tmp_path: Path, held: list[str]) -> Path:
    """One batch of three households with those rows."""
    households = [import_household(key) for key in ("H1", "H2", "H3")]
    return make_folder(tmp_path / "list", households, _duplicate_rows(held))


def test_an_import_flags_every_duplicate_of_a_batch(world, engine, settings, sessions, tmp_path):
    admin, national, local = world
    held, holders = [national_id(), national_id()], []
    for number in held:
        created = admin.post(
            "/households",
            json=household(
                area_code=OTHER_LOCALITY, members=[person(national_id=_document(number))]
            ),
        )
        holders.append(int(created.json()["members"][0]["person_id"]))
    folder = _duplicate_folder(tmp_path, held)
    report = import_path(engine, settings, folder, source="agency")
    assert report.counts.persons_added == 4 and report.flags_raised == 3

    flags = _flags(sessions)
    assert {f.source for f in flags} == {"import"} and len(flags) == 3
    with sessions() as session:
        by_key = dict(session.execute(select(Person.source_key, Person.id)).all())
    assert {frozenset((f.person_a_id, f.person_b_id)) for f in flags} == {
        frozenset((by_key["agency:P1"], holders[0])),
        frozenset((by_key["agency:P2"], holders[1])),
        frozenset((by_key["agency:P3"], by_key["agency:P4"])),
    }
    assert all(f.household_a_id and f.household_b_id for f in flags)

    # Importing the same file again adds nobody, and so flags nothing new.
    again = import_path(engine, settings, folder, source="agency")
    assert again.counts.persons_added == 0 and again.flags_raised == 0
    assert len(_flags(sessions)) == 3
    listed = national.get("/review-flags", params={"kind": "duplicate_national_id"}).json()
    assert listed["count"] == 3

    # A later list with one more member (the batch path that finds rows already imported):
    # the newcomer's number is held by one registered person and one imported one.
    grown = make_folder(
        tmp_path / "grown",
        [import_household(key) for key in ("H1", "H2", "H3")],
        [
            *_duplicate_rows(held),
            import_person("P5", "H3", "child", birth="2010-01-01", national_id=held[0]),
        ],
    )
    more = import_path(engine, settings, grown, source="agency")
    assert more.counts.persons_added == 1 and more.flags_raised == 2
    with sessions() as session:
        newcomer = session.scalar(select(Person.id).where(Person.source_key == "agency:P5"))
    assert {frozenset((f.person_a_id, f.person_b_id)) for f in _flags(sessions)[3:]} == {
        frozenset((newcomer, holders[0])),
        frozenset((newcomer, by_key["agency:P1"])),
    }

    # Audited with the batches that raised them ("+2f"), or by one record for the flags of
    # an initial load ("3 flags 1-3"): never a record per flag, nor a name or a number.
    with Session(engine) as session:
        records = session.scalars(
            select(AuditRecord.record_id).where(
                AuditRecord.action.in_(("household.import.batch", "review_flag.raise"))
            )
        ).all()
    counted = [
        int(n) for r in records for n in re.findall(r"\+(\d+)f\b|^(\d+) flags", r) for n in n if n
    ]
    assert sum(counted) == len(_flags(sessions)) == 5


def test_an_import_into_an_empty_registry_flags_too(engine, settings, sessions, tmp_path):
    # On PostgreSQL this is the initial load, which flags once its indexes are built.
    folder = _duplicate_folder(tmp_path, [valid_national_id(1), valid_national_id(1)])
    report = import_path(engine, settings, folder, source="first")
    assert report.counts.persons_added == 4
    flags = _flags(sessions)
    with sessions() as session:
        by_key = dict(session.execute(select(Person.source_key, Person.id)).all())
        homes = dict(session.execute(select(Membership.person_id, Membership.household_id)).all())
    assert report.flags_raised == 2 and {
        (f.person_a_id, f.person_b_id, f.household_a_id, f.household_b_id) for f in flags
    } == {
        (*sorted(pair), *(homes[p] for p in sorted(pair)))
        for pair in (
            (by_key["first:P1"], by_key["first:P2"]),
            (by_key["first:P3"], by_key["first:P4"]),
        )
    }


def test_pairing_an_initial_loads_holders_is_exact_and_complete():
    # Three holders of one number make three pairs; numbers equal in one half only make none.
    def holders(*rows):
        return pl.DataFrame(
            {
                "national_id_index": [r[0] for r in rows],
                "national_id_type": "national_id",
                "id": [r[1] for r in rows],
            }
        )

    same, high_only, low_only = "ab" * 16, "ab" * 8 + "cd" * 8, "cd" * 8 + "ab" * 8
    persons = holders((same, 30), (high_only, 11), (same, 20), (low_only, 12), (same, 10))
    persons = pl.concat(
        [
            persons,
            pl.DataFrame({"national_id_index": [same], "national_id_type": "passport", "id": [40]}),
        ]
    )
    memberships = pl.DataFrame({"person_id": [10, 20, 30, 11], "household_id": [1, 2, 3, 4]})
    pairs = pair_holders(index_holders(persons, memberships))
    assert pairs.rows() == [(10, 20, 1, 2), (10, 30, 1, 3), (20, 30, 2, 3)]


@pytest.fixture
def cli(database_url, sessions, tmp_path, monkeypatch):
    if not cli_app.registered_commands:
        _register_commands()
    make_areas(sessions)
    keys: dict[str, str] = {}

    def run(user: str, role: str, area: str | None, *args: str):
        if user not in keys:
            keys[user] = make_user(sessions, user, role, area, service=True)
        monkeypatch.setenv("SIJILL_DATABASE_URL", database_url)
        monkeypatch.setenv("SIJILL_SERVICE_KEY", f"{user}:{keys[user]}")
        monkeypatch.setenv("SIJILL_SESSION_FILE", str(tmp_path / "session.json"))
        get_settings.cache_clear()
        return CliRunner().invoke(cli_app, list(args))

    yield run
    get_settings.cache_clear()


def test_review_flags_from_the_command_line(cli, settings, sessions):
    app = create_app(settings)
    number = national_id()
    admin_headers = auth_headers(sessions, settings)
    local_headers = auth_headers(sessions, settings, "registrar", DISTRICT)
    for area, headers in ((OTHER_LOCALITY, admin_headers), (LOCALITY, local_headers)):
        with TestClient(app, headers=headers) as client:
            client.post(
                "/households",
                json=household(area_code=area, members=[person(national_id=_document(number))]),
            ).raise_for_status()
    flag_id = _flags(sessions)[0].id

    listed = cli("ana", "registrar", None, "review-flags", "list", "--output", "json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [row["flag_id"] for row in rows] == [flag_id]
    assert number not in listed.stdout

    # `sijill` turns the error into one line (sijill.cli.main); here it is the error itself.
    refused = cli("bob", "registrar", DISTRICT, "review-flags", "list")
    assert isinstance(refused.exception, Forbidden)
    assert "whole country" in refused.exception.detail

    decided = cli(
        "ana", "registrar", None, "review-flags", "decide", str(flag_id), "dismissed", "-o", "json"
    )
    assert decided.exit_code == 0, decided.output
    assert json.loads(decided.stdout)["decision"] == "dismissed"
    assert _flags(sessions)[0].state == "decided"
