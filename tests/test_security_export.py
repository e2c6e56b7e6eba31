"""Pseudonymised exports: nothing that names a person leaves, only consenting households of
the analyst's areas do, small cells are hidden, and pseudonyms hold still between exports."""

import datetime as dt
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from factories import OTHER_LOCALITY, child, household, make_areas, make_user, person, spouse
from sijill.analytics.export import FILES, export_pseudonymised
from sijill.core.db import transaction
from sijill.core.errors import Conflict, Forbidden
from sijill.registry.schemas import HouseholdCreate
from sijill.registry.service import register_household
from sijill.security.audit.models import AuditRecord
from sijill.security.keys.keyring import current_keyring, install_keyring
from sijill.security.principal import Grant, Principal
from sijill.security.roles import Permission

AL_AIN, PALMS = "SJ010101", "SJ010102"  # the analyst's governorate, SJ01
RESEARCH = ["eligibility_assessment", "research"]


@dataclass
class Registry:
    area_ids: dict[str, int]
    # household ID -> (locality, consents to research)
    households: dict[int, tuple[str, bool]] = field(default_factory=dict)
    persons: dict[int, int] = field(default_factory=dict)  # person ID -> household ID
    # Every value that identifies someone and must not appear in an export.
    secrets: set[str] = field(default_factory=set)

    def exported(self) -> set[int]:
        """Households the SJ01 analyst should get: in SJ01, consenting to research."""
        return {
            h
            for h, (area, research) in self.households.items()
            if research and area.startswith("SJ01")
        }


_serial = iter(range(1, 10_000))


def _members(n: int) -> list[dict]:
    """A household's members, each with names, a national ID and a phone of their own."""
    i = next(_serial)
    tag = "".join("abcdefghij"[int(d)] for d in str(i))  # names hold letters, not digits
    members = [
        person(
            given_name_ar="سليم " + "".join("ابتثجحخدذر"[int(d)] for d in str(i)),
            grandfather_name_ar="عبدالقادر",
            given_name_lat=f"Salimx{tag}",
            father_name_lat=f"Qasimx{tag}",
            grandfather_name_lat="Abdelkaderx",
            family_name_lat=f"Haddadx{tag}",
            birth_date=f"1980-05-{10 + i % 18:02d}",
            phone=f"+96279{1000000 + i:07d}",
        ),
        spouse(given_name_lat=f"Layla{tag}", birth_date="1984-02-29", phone=f"+96278{2000000 + i}"),
        child(given_name_lat=f"Omar{tag}", birth_date="2015-03-07"),
    ]
    return members[:n]


def _register(sessions, settings, registry: Registry, area: str, research: bool, n: int = 3):
    payload = household(
        _members(n),
        area_code=area,
        address=f"{next(_serial)} Jasmine Lane, Flat {next(_serial)}",
        latitude=31.9512,
        longitude=35.9321,
        enumerator="ENUM-7731",
        registration_date="2026-01-15",
        consent={
            "given": True,
            "date": "2026-01-15",
            "purposes": RESEARCH if research else ["eligibility_assessment", "payment"],
        },
    )
    with transaction(sessions) as session:
        created = register_household(
            session, Principal.system("test"), HouseholdCreate(**payload), settings=settings
        )
    household_id = int(created.household_id)
    registry.households[household_id] = (area, research)
    registry.secrets |= {payload["address"], payload["enumerator"], str(household_id)}
    for member in created.members:
        registry.persons[int(member.person_id)] = household_id
        registry.secrets.add(member.person_id)
    for member in payload["members"]:
        registry.secrets |= {
            value
            for key, value in member.items()
            if key.endswith(("_ar", "_lat")) or key in ("phone", "birth_date")
        }
        if member.get("national_id"):
            registry.secrets.add(member["national_id"]["number"])
    registry.secrets.discard(None)


@pytest.fixture
def registry(sessions, settings) -> Registry:
    install_keyring(settings)
    registry = Registry(make_areas(sessions))
    for _ in range(3):
        _register(sessions, settings, registry, AL_AIN, research=True)
    _register(sessions, settings, registry, PALMS, research=True, n=2)
    _register(sessions, settings, registry, AL_AIN, research=False)
    _register(sessions, settings, registry, OTHER_LOCALITY, research=True)
    return registry


def analyst(registry: Registry, area: str = "SJ01") -> Principal:
    return Principal("analyst-sj01", (Grant("analyst", registry.area_ids[area], area),))


def export(engine, principal, out_dir: Path, min_cell: int = 3, **kwargs):
    return export_pseudonymised(engine, principal, out_dir, min_cell=min_cell, **kwargs)


def rows(out_dir: Path, name: str) -> list[dict]:
    return pq.read_table(out_dir / name).to_pylist()


def leaves(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from leaves(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from leaves(inner)
    else:
        yield value


def test_no_name_identifier_phone_address_or_birth_date_leaves(engine, registry, tmp_path):
    out = tmp_path / "export"
    export(engine, analyst(registry), out, min_cell=1)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    secrets = {s for s in registry.secrets if s}
    assert any("Salimx" in s for s in secrets) and any(s.startswith("+9627") for s in secrets)
    found = []
    for name in FILES:
        table = pq.read_table(out / name)
        for column in table.column_names:
            assert not column.startswith(("given_", "father_", "grandfather_", "family_"))
            assert column not in {
                "search_name",
                "national_id",
                "national_id_type",
                "phone",
                "address",
                "latitude",
                "longitude",
                "enumerator",
                "birth_date",
                "death_date",
                "registration_date",
                "id",
                "household_id",
                "person_id",
            }
            assert not str(table.schema.field(column).type).startswith(("date", "timestamp"))
        for value in leaves(table.to_pylist()):
            if isinstance(value, dt.date | float):
                found.append((name, value))
            text = str(value)
            found += [(name, text) for secret in secrets if secret in text]
    assert found == []


def test_contents_pseudonyms_and_consent(engine, registry, tmp_path):
    principal = analyst(registry)
    first = export(engine, principal, tmp_path / "a", min_cell=1)
    second = export(engine, principal, tmp_path / "b", min_cell=1)
    pseudonym = current_keyring().pseudonym
    exported = registry.exported()
    expected = {pseudonym("household", str(h)): h for h in exported}

    households = rows(tmp_path / "a", "households.parquet")
    assert {row["household_pid"] for row in households} == set(expected)
    assert rows(tmp_path / "b", "households.parquet") == households
    assert rows(tmp_path / "b", "persons.parquet") == rows(tmp_path / "a", "persons.parquet")
    assert first.households == second.households == len(exported) == 4
    assert first.left_out_no_consent == 1  # SJ02's household is outside, not left out
    assert all(str(h) not in expected for h in registry.households)

    by_pid = {row["household_pid"]: row for row in households}
    for pid, household_id in expected.items():
        row = by_pid[pid]
        locality, _ = registry.households[household_id]
        assert row["locality_code"] == locality
        assert (row["district_code"], row["governorate_code"]) == ("SJ0101", "SJ01")
        assert row["registration_year"] == 2026
        assert row["members"] == (2 if locality == PALMS else 3)
        assert "research" in row["consent_purposes"]
        assert row["assets"] == ["fridge", "mobile_phone", "tv"]
        assert row["livestock_poultry"] == 6 and row["livestock_cattle"] == 0

    persons = rows(tmp_path / "a", "persons.parquet")
    people = {pseudonym("person", str(p)): h for p, h in registry.persons.items()}
    assert len(persons) == first.persons == 11
    for row in persons:
        assert row["person_pid"] in people
        assert expected[row["household_pid"]] == people[row["person_pid"]]
    heads = [row for row in persons if row["relationship"] == "head"]
    assert {(row["birth_year"], row["birth_date_precision"]) for row in heads} == {(1980, "day")}
    children = [row for row in persons if row["relationship"] == "child"]
    assert {(row["birth_year"], row["enrolled"]) for row in children} == {(2015, True)}


def test_small_cells_suppressed_in_summary_and_microdata(engine, registry, sessions, tmp_path):
    out = tmp_path / "export"
    report = export(engine, analyst(registry), out, min_cell=3)
    summary = {row["area_code"]: row for row in rows(out, "summary.parquet")}
    assert set(summary) == {"SJ01", AL_AIN, PALMS}
    # Palms holds one household: suppressed. Al Ain (three) would then be SJ01's total minus
    # Palms, so it is suppressed too.
    assert summary[PALMS] == {
        "level": "locality",
        "area_code": PALMS,
        "governorate_code": "SJ01",
        "households": None,
        "persons": None,
        "suppressed": True,
    }
    assert summary[AL_AIN]["suppressed"] and summary[AL_AIN]["households"] is None
    assert summary["SJ01"]["households"] == 4 and summary["SJ01"]["persons"] == 11
    assert not summary["SJ01"]["suppressed"]
    assert report.cells_suppressed == 2
    # The microdata must not give the counts back.
    households = rows(out, "households.parquet")
    assert {row["locality_code"] for row in households} == {None}
    assert {row["district_code"] for row in households} == {"SJ0101"}
    # An analyst of the whole country sees the same cells hidden while an analyst of SJ01
    # exists: with SJ01's row count, Al Ain shown to one would give Palms back to the other.
    make_user(sessions, "analyst-of-sj01", "analyst", "SJ01", service=True)
    national = export(engine, Principal("analyst", (Grant("analyst", None),)), tmp_path / "n")
    assert national.households == 5
    national_summary = rows(tmp_path / "n", "summary.parquet")
    assert {r["area_code"]: r["households"] for r in national_summary} == {
        "SJ01": 4,
        "SJ02": None,
        AL_AIN: None,
        PALMS: None,
        OTHER_LOCALITY: None,
    }

    report = export(engine, analyst(registry), tmp_path / "k5", min_cell=5)
    summary = rows(tmp_path / "k5", "summary.parquet")
    assert report.cells_suppressed == 3 and all(row["suppressed"] for row in summary)
    households = rows(tmp_path / "k5", "households.parquet")
    assert {(row["governorate_code"], row["district_code"]) for row in households} == {(None, None)}


def test_only_the_analysts_areas(engine, registry, tmp_path):
    south = analyst(registry, "SJ02")
    report = export(engine, south, tmp_path / "south", min_cell=1)
    assert report.households == 1 and report.persons == 3 and report.left_out_no_consent == 0
    (row,) = rows(tmp_path / "south", "households.parquet")
    (other,) = [h for h, (area, _) in registry.households.items() if area == OTHER_LOCALITY]
    assert row["household_pid"] == current_keyring().pseudonym("household", str(other))
    assert {r["area_code"] for r in rows(tmp_path / "south", "summary.parquet")} == {
        "SJ02",
        OTHER_LOCALITY,
    }

    national = Principal("analyst", (Grant("analyst", None),))
    assert export(engine, national, tmp_path / "all", min_cell=1).households == 5


def test_refused_without_the_permission(engine, registry, tmp_path):
    registrar = Principal("registrar", (Grant("registrar", None),))
    with pytest.raises(Forbidden, match="export.pseudonymised"):
        export(engine, registrar, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (entry,) = registrar.take_audit()
    assert (entry.action, entry.outcome) == (Permission.EXPORT_PSEUDONYMISED.value, "denied")


def test_audited(engine, registry, tmp_path):
    principal = analyst(registry)
    export(engine, principal, tmp_path / "export-2026-06")
    (entry,) = principal.take_audit()
    assert (entry.action, entry.outcome, entry.record_type, entry.record_id) == (
        "export.pseudonymised",
        "ok",
        "export",
        "export-2026-06",
    )
    assert (entry.role, entry.purpose) == ("analyst", "research")


def test_never_overwrites_unless_forced_and_never_half_written(engine, registry, tmp_path):
    out = tmp_path / "export"
    out.mkdir()  # empty: fine
    export(engine, analyst(registry), out)
    with pytest.raises(Conflict, match="not empty"):
        export(engine, analyst(registry), out)
    before = (out / "households.parquet").stat().st_mtime_ns
    export(engine, analyst(registry), out, force=True, min_cell=1)
    assert (out / "households.parquet").stat().st_mtime_ns != before
    assert not any(row["suppressed"] for row in rows(out, "summary.parquet"))

    kept = tmp_path / "notes"
    kept.mkdir()
    (kept / "thesis.docx").write_text("mine")
    with pytest.raises(Conflict, match="thesis.docx"):
        export(engine, analyst(registry), kept, force=True)
    assert [p.name for p in kept.iterdir()] == ["thesis.docx"]

    def interrupt(done, total):
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export(engine, analyst(registry), tmp_path / "late", progress=interrupt)
    with pytest.raises(KeyboardInterrupt):
        export(engine, analyst(registry), out, force=True, progress=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "notes"]
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)


def test_progress_counts_every_row(engine, registry, tmp_path):
    seen = []
    report = export(engine, analyst(registry), tmp_path / "out", progress=lambda *a: seen.append(a))
    total = report.households + report.persons
    assert seen[0] == (0, total) and seen[-1] == (total, total)


def run_cli(args, env):
    return subprocess.run(
        [sys.executable, "-m", "sijill", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_cli_end_to_end(sessions, registry, database_url, tmp_path):
    key = make_user(sessions, "analyst1", "analyst", "SJ01", service=True)
    env = {
        "SIJILL_DATABASE_URL": database_url,
        "SIJILL_SERVICE_KEY": f"analyst1:{key}",
        "SIJILL_MIN_CELL_SIZE": "2",
    }
    out = tmp_path / "research"

    refused = run_cli(["export", str(out)], env)
    assert refused.returncode == 2
    assert "Only pseudonymised exports exist for now" in refused.stderr
    assert not out.exists()

    done = run_cli(["export", str(out), "--pseudonymise"], env)
    assert done.returncode == 0, done.stderr
    assert "4 households" in done.stdout and "11 persons" in done.stdout
    assert "2 suppressed (fewer than 2 households)" in done.stdout
    assert "left out, without consent to research: 1" in done.stdout
    pseudonym = current_keyring().pseudonym
    assert {row["household_pid"] for row in rows(out, "households.parquet")} == {
        pseudonym("household", str(h)) for h in registry.exported()
    }

    again = run_cli(["export", str(out), "--pseudonymise"], env)
    assert again.returncode == 2 and "not empty" in again.stderr

    with sessions() as session:
        audited = session.execute(
            select(AuditRecord.actor, AuditRecord.outcome, AuditRecord.record_id).where(
                AuditRecord.action == "export.pseudonymised"
            )
        ).all()
    assert audited == [("analyst1", "ok", "research")]
