"""`sijill link`: an outside list matched to the persons of a small synthetic country imported
into the registry (SQLite and PostgreSQL): deaths flowing to deceased persons, dated facts
added once, unmatched and unreadable lines reported with their line and reason."""

import csv
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import make_user
from sijill.core.areas import Area, load_areas
from sijill.core.db import make_engine
from sijill.core.errors import Forbidden
from sijill.core.files import UnreadableFile
from sijill.core.settings import Settings
from sijill.linkage.link import run_link
from sijill.linkage.models import LinkageModel, LinkageRun, ListMatch, PersonFact
from sijill.registry.bulk.service import import_path
from sijill.registry.models import Membership, Person, PersonVersion
from sijill.registry.reviews.models import DEATH_REPORTED, ReviewFlag
from sijill.security.audit.models import AuditRecord
from sijill.security.principal import Grant, Principal
from sijill.synth.service import generate

# A model trained once on the registry, reused by the runs after the first (training is the
# slow part, and what is tested here is what a model's matches do).
_MODEL: dict = {}
NAMES = [
    f"{p}_name_{s}" for p in ("given", "father", "grandfather", "family") for s in ("ar", "lat")
]


@pytest.fixture(scope="module")
def country(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("link") / "synth"
    generate(700, 11, out)
    return out


@pytest.fixture
def registry(database_url, country, tmp_path):
    settings = Settings(database_url=database_url, work_dir=tmp_path / "work")
    engine = make_engine(database_url)
    with Session(engine) as session, session.begin():
        load_areas(session, country / "areas.csv")
    import_path(engine, settings, country, source="synth")
    yield engine, settings
    engine.dispose()


def _admin() -> Principal:
    return Principal.system("link-test")


def _link(registry, path: Path, kind: str, **options):
    engine, settings = registry
    report = run_link(
        engine, settings, principal=_admin(), path=path, kind=kind, model=_MODEL.get("m"), **options
    )
    if "m" not in _MODEL:
        with Session(engine) as session:
            _MODEL["m"] = session.get(LinkageModel, report.model_version).body
    return report


def _singles(country: Path, engine) -> pl.DataFrame:
    """Persons of the country registered once (no injected duplicate), with their registry
    ID and household, and how many members their household has."""
    persons = pl.read_parquet(country / "persons.parquet")
    truth = pl.read_parquet(country / "truth_persons.parquet")
    once = truth.filter(pl.len().over("entity_id") == 1).select("person_key")
    with Session(engine) as session:
        ids = pl.DataFrame(
            session.execute(select(Person.source_key, Person.id)).all(),
            schema={"source_key": pl.String, "person_id": pl.Int64},
            orient="row",
        )
    return (
        persons.join(once, on="person_key")
        .with_columns(("synth:" + pl.col("person_key")).alias("source_key"))
        .join(ids, on="source_key")
        .with_columns(pl.len().over("household_key").alias("size"))
        .filter(pl.col("birth_date").is_not_null())
        .sort("person_key")
    )


def _line(person: dict, *, script: str = "both", with_id: bool = True, **extra) -> dict:
    line = {name: person[name] for name in NAMES}
    if script == "lat":
        line.update({n: None for n in NAMES if n.endswith("_ar")})
    elif script == "ar":
        line.update({n: None for n in NAMES if n.endswith("_lat")})
    birth = person["birth_date"]
    line.update(
        sex=person["sex"],
        birth_date=birth if isinstance(birth, str) else birth.isoformat(),
        national_id_type=person["national_id_type"] if with_id else None,
        national_id=person["national_id"] if with_id else None,
    )
    return {**line, **extra}


STRANGERS = [
    {
        "given_name_lat": "Quentin",
        "family_name_lat": "Vandermolen",
        "sex": "M",
        "birth_date": "1931-07-19",
    },
    {
        "given_name_lat": "Ingrid",
        "family_name_lat": "Thorvaldsdottir",
        "sex": "F",
        "birth_date": "1944-11-02",
    },
    {
        "given_name_lat": "Bartholomew",
        "family_name_lat": "Okonkwo-Smythe",
        "sex": "M",
        "birth_date": "1958-03-27",
    },
]


def _write(path: Path, lines: list[dict]) -> Path:
    header = sorted({key for line in lines for key in line})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(lines)
    return path


def _report(path: Path) -> dict[int, str]:
    with path.open(encoding="utf-8-sig") as handle:
        return {int(row["row"]): row["reason"] for row in csv.DictReader(handle)}


def test_deaths_in_a_civil_list_flow_to_deceased_persons(registry, country, tmp_path):
    engine, _ = registry
    singles = _singles(country, engine)
    with_id = singles.filter(pl.col("national_id_type") == "national_id")
    head = with_id.filter((pl.col("relationship") == "head") & (pl.col("size") >= 3)).row(
        0, named=True
    )
    child = with_id.filter(
        (pl.col("relationship") == "child") & (pl.col("household_key") != head["household_key"])
    ).row(0, named=True)
    latin = singles.filter(
        (pl.col("relationship") == "spouse") & pl.col("given_name_lat").is_not_null()
    ).row(3, named=True)
    mistyped = with_id.filter(
        (pl.col("relationship") == "head")
        & (pl.col("household_key") != head["household_key"])
        & (pl.col("birth_date").str.len_chars() == 10)
    ).row(5, named=True)
    born = date.fromisoformat(mistyped["birth_date"])
    wrong_day = born.replace(day=born.day % 28 + 1).isoformat()
    lines = [
        _line(head, script="ar", death_date="03/10/2026"),  # line 2
        _line(child, death_date="2026-09-14"),  # 3
        _line(latin, script="lat", with_id=False, death_date="01/08/2026"),  # 4
        _line(mistyped, with_id=False, birth_date=wrong_day, death_date="15/07/2026"),  # 5
        *({**s, "death_date": "01/06/2026"} for s in STRANGERS),  # 6, 7, 8
        _line(child, birth_date="31/02/1970", death_date="02/02/2026"),  # 9: no such day
        {"sex": "F", "birth_date": "1950", "death_date": "02/02/2026"},  # 10: no names
        _line(head, death_date="03/10/2026"),  # 11: the same death, again
    ]
    path = _write(tmp_path / "deaths.csv", lines)
    report = _link(registry, path, "civil")

    assert report.lines == 10 and report.rejected == 2
    assert (report.matched, report.unmatched) == (5, 3), _report(tmp_path / "deaths.unmatched.csv")
    assert (report.deaths_recorded, report.deaths_already_recorded) == (4, 1)
    unmatched = _report(tmp_path / "deaths.unmatched.csv")
    assert set(unmatched) == {6, 7, 8, 9, 10}
    assert all(unmatched[n] == "no match at or above 0.95" for n in (6, 7, 8))
    assert unmatched[9].startswith("birth_date: does not exist in the calendar")
    assert unmatched[10] == "given_name_ar: no given name in Arabic or Latin script"

    deceased = {
        head["person_id"]: (date(2026, 10, 3), 2),
        child["person_id"]: (date(2026, 9, 14), 3),
        latin["person_id"]: (date(2026, 8, 1), 4),
        mistyped["person_id"]: (date(2026, 7, 15), 5),
    }
    with Session(engine) as session:
        for person_id, (died, line) in deceased.items():
            person = session.get(Person, person_id)
            assert person.death_date == died and person.version == 2
            assert person.recorded_by == f"linkage:civil:deaths.csv:{line}"
            before = session.get(PersonVersion, (person_id, 1))
            assert before.death_date is None and before.given_name_ar == person.given_name_ar
            ended = session.scalars(
                select(Membership).where(Membership.person_id == person_id)
            ).one()
            assert (ended.end_date, ended.end_reason) == (died, "death")
        matches = session.scalars(select(ListMatch).order_by(ListMatch.list_line)).all()
        assert [(m.list_line, m.person_id) for m in matches] == [
            (line, pid) for pid, (_, line) in sorted(deceased.items(), key=lambda d: d[1][1])
        ] + [(11, head["person_id"])]
        assert {m.event for m in matches} == {"death_recorded", "death_already_recorded"}
        assert all(m.match_probability >= 0.95 and m.model_version for m in matches)
        flags = session.scalars(select(ReviewFlag).where(ReviewFlag.kind == DEATH_REPORTED)).all()
        members = dict(
            session.execute(
                select(Membership.person_id, Membership.household_id).where(
                    Membership.household_id.in_({f.household_a_id for f in flags})
                )
            ).all()
        )
        run = session.scalars(select(LinkageRun).where(LinkageRun.kind == "link")).one()
        audited = session.scalars(
            select(AuditRecord.record_id).where(AuditRecord.action == "linkage.death")
        ).all()
    assert run.id == report.run_id and run.records == 10
    assert sorted(audited) == sorted(str(p) for p in deceased)
    # The head's death pairs them with every other member; a child's with their head.
    head_flags = {
        (f.person_a_id, f.person_b_id)
        for f in flags
        if head["person_id"] in (f.person_a_id, f.person_b_id)
    }
    others = {p for p, h in members.items() if h == members[head["person_id"]]} - {
        head["person_id"]
    }
    assert head_flags == {tuple(sorted((head["person_id"], o))) for o in others}
    assert len(others) == head["size"] - 1
    child_head = singles.filter(
        (pl.col("household_key") == child["household_key"]) & (pl.col("relationship") == "head")
    )
    if child_head.height:
        assert tuple(sorted((child["person_id"], child_head["person_id"][0]))) in {
            (f.person_a_id, f.person_b_id) for f in flags
        }
    assert report.flags_raised == len(flags)

    # The same list again: every death is known; nothing changes, no flag is raised twice.
    again = _link(registry, path, "civil")
    assert (again.deaths_recorded, again.deaths_already_recorded, again.flags_raised) == (0, 5, 0)
    with Session(engine) as session:
        assert session.get(Person, head["person_id"]).version == 2
        assert session.scalar(select(func.count()).select_from(ReviewFlag)) >= len(flags)
        assert session.scalar(
            select(func.count()).select_from(ReviewFlag).where(ReviewFlag.kind == DEATH_REPORTED)
        ) == len(flags)


def test_payroll_facts_are_added_once(registry, country, tmp_path):
    engine, _ = registry
    singles = _singles(country, engine).filter(pl.col("national_id_type") == "national_id")
    workers = [singles.row(i, named=True) for i in (10, 40, 70)]
    mapping = tmp_path / "payroll.yaml"
    mapping.write_text(
        "columns:\n  جهة العمل: employer\n  الراتب: monthly_salary\n"
        "defaults:\n  national_id_type: national_id\n",
        encoding="utf-8",
    )
    lines = [
        {
            **{k: v for k, v in _line(w).items() if k != "national_id_type"},
            "جهة العمل": employer,
            "الراتب": salary,
        }
        for w, employer, salary in zip(
            workers,
            ["وزارة التربية", "Office national des postes", "بلدية إربد"],
            ["1234.567", "٨٥٠", "990.5"],
            strict=True,
        )
    ]
    lines.append({**STRANGERS[0], "جهة العمل": "Nowhere", "الراتب": "1000"})
    lines.append({**_line(workers[0]), "جهة العمل": "X", "الراتب": "1,000.00"})  # bad amount
    path = _write(tmp_path / "payroll.csv", lines)
    first = _link(registry, path, "payroll", mapping=mapping, as_of=date(2026, 10, 1))
    assert (first.matched, first.facts_added, first.facts_present) == (3, 3, 0)
    assert (first.unmatched, first.rejected) == (1, 1)
    assert _report(tmp_path / "payroll.unmatched.csv")[6].startswith(
        "monthly_salary: is not an amount"
    )
    again = _link(registry, path, "payroll", mapping=mapping, as_of=date(2026, 10, 1))
    assert (again.facts_added, again.facts_present) == (0, 3)
    with Session(engine) as session:
        facts = session.scalars(select(PersonFact).order_by(PersonFact.source_line)).all()
    assert [
        (f.person_id, f.kind, f.text_value, f.amount, f.valid_from, f.source_line) for f in facts
    ] == [
        (
            workers[0]["person_id"],
            "formal_employment",
            "وزارة التربية",
            Decimal("1234.567"),
            date(2026, 10, 1),
            2,
        ),
        (
            workers[1]["person_id"],
            "formal_employment",
            "Office national des postes",
            Decimal("850"),
            date(2026, 10, 1),
            3,
        ),
        (
            workers[2]["person_id"],
            "formal_employment",
            "بلدية إربد",
            Decimal("990.5"),
            date(2026, 10, 1),
            4,
        ),
    ]
    assert all(f.source_list == "payroll.csv" for f in facts)
    # A list none of whose lines finds a candidate pair: every line reported, nothing matched.
    nobody = _link(registry, _write(tmp_path / "nobody.csv", [{**STRANGERS[2]}]), "payroll")
    assert (nobody.matched, nobody.unmatched, nobody.facts_added) == (0, 1, 0)
    assert _report(tmp_path / "nobody.unmatched.csv") == {2: "no match at or above 0.95"}


def test_a_file_that_cannot_be_read_is_one_line_and_writes_nothing(registry, tmp_path):
    engine, _ = registry
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(UnreadableFile, match=r"^empty.csv: the file is empty$"):
        _link(registry, empty, "civil")
    no_death = _write(tmp_path / "nodeath.csv", [{**STRANGERS[0]}])
    with pytest.raises(UnreadableFile, match=r"^nodeath.csv: no column for death_date"):
        _link(registry, no_death, "civil")
    garbage = tmp_path / "list.parquet"
    garbage.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(UnreadableFile, match=r"^list.parquet: cannot be read as Parquet$"):
        _link(registry, garbage, "tax")
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(LinkageRun)) == 0
    assert not list(tmp_path.glob("*.unmatched.csv*")) and not list(tmp_path.glob(".*part"))


def test_linking_needs_a_national_scope(registry, tmp_path):
    engine, settings = registry
    with Session(engine) as session:
        area_id = session.scalar(select(Area.id).where(Area.code == "SJ0101"))
    district = Principal("registrar-sj0101", (Grant("registrar", area_id, "SJ0101"),))
    path = _write(tmp_path / "deaths.csv", [{**STRANGERS[0], "death_date": "01/01/2026"}])
    with pytest.raises(Forbidden, match="whole country"):
        run_link(engine, settings, principal=district, path=path, kind="civil")


def test_link_from_the_command_line(registry, country, database_url, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sijill.cli import _register_commands
    from sijill.cli import app as cli_app
    from sijill.core.db import session_factory
    from sijill.core.settings import get_settings

    engine, _ = registry
    if not cli_app.registered_commands:
        _register_commands()
    key = make_user(session_factory(engine), "link-cli", "administrator", None, service=True)
    monkeypatch.setenv("SIJILL_DATABASE_URL", database_url)
    monkeypatch.setenv("SIJILL_SERVICE_KEY", f"link-cli:{key}")
    monkeypatch.setenv("SIJILL_WORK_DIR", str(tmp_path / "work"))
    get_settings.cache_clear()
    model = tmp_path / "model.json"
    if "m" not in _MODEL:
        _link(
            registry,
            _write(tmp_path / "warm.csv", [{**STRANGERS[0], "program": "x"}]),
            "beneficiaries",
        )
    model.write_text(json.dumps(_MODEL["m"]), encoding="utf-8")
    person = _singles(country, engine).row(20, named=True)
    path = _write(
        tmp_path / "programs.csv",
        [
            {**_line(person), "program": "WFP cash", "amount": "75.250"},
            {**STRANGERS[1], "program": "WFP cash"},
        ],
    )
    args = ["link", "--against", str(path), "--kind", "beneficiaries", "--model", str(model)]
    done = CliRunner().invoke(cli_app, [*args, "--as-of", "2026-09-01", "-o", "json"])
    assert done.exit_code == 0, done.output
    figures = json.loads(done.stdout)
    assert (figures["matched"], figures["facts_added"], figures["unmatched"]) == (1, 1, 1)
    assert figures["report_path"] == str(tmp_path / "programs.unmatched.csv")
    with Session(engine) as session:
        fact = session.scalars(select(PersonFact)).one()
    assert (fact.person_id, fact.kind, fact.amount, fact.valid_from) == (
        person["person_id"],
        "other_program",
        Decimal("75.250"),
        date(2026, 9, 1),
    )
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip")
    failed = CliRunner().invoke(
        cli_app, ["link", "--against", str(broken), "--kind", "tax", "--model", str(model)]
    )
    assert failed.exit_code != 0
    # `sijill` (cli.main) prints a SijillError's detail as its one line.
    assert isinstance(failed.exception, UnreadableFile)
    assert failed.exception.detail == "broken.xlsx: is not an XLSX file (not a ZIP archive)"
    get_settings.cache_clear()


def test_link_through_the_api(registry, country, tmp_path):
    import time

    from fastapi.testclient import TestClient

    from factories import auth_headers
    from sijill.api import create_app

    engine, settings = registry
    if "m" not in _MODEL:
        _link(
            registry,
            _write(
                tmp_path / "warm.csv", [{**STRANGERS[0], "tax_year": "2025", "taxable_income": "1"}]
            ),
            "tax",
        )
    with Session(engine) as session, session.begin():
        if session.get(LinkageModel, _MODEL["m"]["version"]) is None:
            from datetime import datetime

            session.add(
                LinkageModel(
                    version=_MODEL["m"]["version"],
                    trained_at=datetime.fromisoformat(_MODEL["m"]["trained_at"]),
                    trained_on_records=_MODEL["m"]["trained_on_records"],
                    body=_MODEL["m"],
                )
            )
    person = _singles(country, engine).row(30, named=True)
    path = _write(
        tmp_path / "tax.csv",
        [
            {**_line(person), "tax_year": "2025", "taxable_income": "18250.75"},
            {**STRANGERS[2], "tax_year": "2025", "taxable_income": "1"},
            {**_line(person), "tax_year": "1850", "taxable_income": "5"},
        ],
    )
    app = create_app(settings)
    with TestClient(app) as client:
        admin = auth_headers(app.state.sessions, settings)
        district = auth_headers(app.state.sessions, settings, "registrar", "SJ0101")
        form = {"kind": "tax", "model_version": _MODEL["m"]["version"]}

        def start(headers, name="tax.csv"):
            with path.open("rb") as handle:
                return client.post(
                    "/linkage/link", data=form, files={"file": (name, handle)}, headers=headers
                )

        def ended(started):
            assert started.status_code == 202, started.text
            give_up = time.monotonic() + 300
            while True:
                job = client.get(started.headers["Location"], headers=admin).json()
                if job["state"] in ("succeeded", "failed", "cancelled", "interrupted"):
                    return job
                assert time.monotonic() < give_up, job
                time.sleep(0.1)

        job = ended(start(admin))
        assert job["state"] == "succeeded", job
        outcome = job["outcome"]
        assert (outcome["matched"], outcome["facts_added"], outcome["unmatched"]) == (1, 1, 1)
        assert outcome["rejected"] == 1 and outcome["list_file"] == "tax.csv"
        report = client.get(job["rejects"], headers=admin)
        assert report.status_code == 200
        rows = list(csv.DictReader(report.content.decode("utf-8-sig").splitlines()))
        assert [(r["row"], r["reason"][:26]) for r in rows] == [
            ("3", "no match at or above 0.95"),
            ("4", "tax_year: is not a year fr"),
        ]
        refused = client.post(
            "/linkage/link",
            data={"kind": "gossip"},
            files={"file": ("x.csv", b"a\n1\n")},
            headers=admin,
        )
        assert refused.status_code == 422
        wrong_file = start(admin, name="tax.txt")
        assert wrong_file.status_code == 422 and "cannot read '.txt' files" in wrong_file.text
        refused = start(district)
        assert refused.status_code == 403 and "whole country" in refused.text
    with Session(engine) as session:
        fact = session.scalars(select(PersonFact)).one()
    assert (fact.kind, fact.amount, fact.valid_from) == (
        "taxable_income",
        Decimal("18250.75"),
        date(2025, 1, 1),
    )
    # The upload's list is gone with its job; only reports stay in the work folder.
    assert not list(settings.work_dir.glob("*/in/*"))
