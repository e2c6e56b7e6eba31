"""Bulk import: every bad row is a reject with a reason, good rows land whole, re-imports add
nothing twice, and a failure mid-import leaves no half-written batch."""

import csv
from pathlib import Path

import polars as pl
import pytest
import yaml
from openpyxl import Workbook
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from stdnum.tr import tckimlik

from sijill.core.areas import load_areas
from sijill.core.errors import InvalidInput
from sijill.registry import identifiers
from sijill.registry.bulk import writer as writer_module
from sijill.registry.bulk.service import import_path
from sijill.registry.identifiers import Identifiers
from sijill.registry.models import Household, Membership, Person
from sijill.security.keys.keyring import current_keyring
from sijill.security.keys.usage import key_ids_in_use

AREAS = [
    ["code", "parent_code", "level", "name_ar", "name_en", "urban"],
    ["SJ", "", "country", "سجل", "Sijilland", ""],
    ["SJ01", "SJ", "governorate", "الشمال", "North", ""],
    ["SJ0101", "SJ01", "district", "المركز", "Centre", ""],
    ["SJ010101", "SJ0101", "locality", "القرية", "Village", "false"],
]
HOUSEHOLD_HEADER = [
    "household_key",
    "area_code",
    "address",
    "dwelling_walls",
    "dwelling_rooms",
    "assets",
    "livestock",
    "registration_date",
    "consent_given",
    "consent_purposes",
]
PERSON_HEADER = [
    "person_key",
    "household_key",
    "relationship",
    "given_name_ar",
    "given_name_lat",
    "family_name_lat",
    "sex",
    "birth_date",
    "national_id_type",
    "national_id",
    "phone",
    "wg_walking",
]


def valid_national_id(seed: int) -> str:
    payload = str(100000000 + seed)
    return payload + tckimlik.calc_check_digits(payload)


def write_csv(path: Path, rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def make_folder(folder: Path, households: list[list], persons: list[list]) -> Path:
    folder.mkdir(exist_ok=True)
    write_csv(folder / "areas.csv", AREAS)
    write_csv(folder / "households.csv", [HOUSEHOLD_HEADER, *households])
    write_csv(folder / "persons.csv", [PERSON_HEADER, *persons])
    return folder


def household(key, walls="concrete", area="SJ010101", rooms="3", date="2025-01-10"):
    return [
        key,
        area,
        f"Street {key}",
        walls,
        rooms,
        "tv;fridge",
        "sheep:4",
        date,
        "true",
        "eligibility_assessment;payment",
    ]


def person(key, household_key, relationship="head", birth="1980-05-03", national_id=None):
    return [
        key,
        household_key,
        relationship,
        "أحمد",
        "Ahmed",
        "Saleh",
        "M",
        birth,
        "national_id" if national_id else "",
        national_id or "",
        "+962791234567",
        "1",
    ]


def counts(engine) -> tuple[int, int, int]:
    with Session(engine) as session:
        return (
            session.scalar(select(func.count()).select_from(Household)),
            session.scalar(select(func.count()).select_from(Person)),
            session.scalar(select(func.count()).select_from(Membership)),
        )


def read_rejects(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def test_import_folder_commits_good_rows_and_rejects_bad_ones(engine, settings, tmp_path):
    folder = make_folder(
        tmp_path / "src",
        [
            household("H1"),
            household("H2", walls="plastic"),
            household("H3", area="XX"),
            household("H4"),
        ],
        [
            person("P1", "H1", national_id=valid_national_id(1)),
            person("P2", "H1", "child", birth="٠٣/٠٥/٢٠١٠"),
            person("P3", "H2"),
            person("P4", "H3"),
            person("P5", "H4", birth="31/02/1970"),
        ],
    )
    report = import_path(engine, settings, folder)
    assert report.counts.households_added == 1
    assert report.counts.persons_added == 2
    assert counts(engine) == (1, 2, 2)
    rejects = read_rejects(report.rejects_path)
    by_key = {(r["record_key"], r["field"]): r for r in rejects}
    assert "dwelling walls" in by_key[("H2", "dwelling_walls")]["message"]
    assert by_key[("H2", "dwelling_walls")]["row"] == "3"
    assert by_key[("H3", "area_code")]["message"] == "is not an area of the registry"
    assert "does not exist in the calendar" in by_key[("P5", "birth_date")]["message"]
    assert "no head" in by_key[("H4", "relationship")]["message"]
    assert by_key[("P3", "household_key")]["message"].startswith("its household was rejected")
    with Session(engine) as session:
        child = session.scalar(select(Person).where(Person.source_key == "src:P2"))
        assert str(child.birth_date) == "2010-05-03"
        assert child.search_name == "احمد ahmed saleh"


def test_import_stores_identifiers_encrypted_with_a_blind_index(engine, settings, tmp_path):
    number = valid_national_id(3)
    rows = [person("P1", "H1", national_id=number), person("P2", "H1", "child")]
    import_path(engine, settings, make_folder(tmp_path / "src", [household("H1")], rows))
    with engine.connect() as connection:
        stored = connection.execute(
            text("SELECT source_key, national_id, phone, national_id_index FROM person")
        ).all()
    assert number not in repr(stored) and "+962791234567" not in repr(stored)
    with Session(engine) as session:
        found = identifiers.find_by_national_id(session, number)
        assert [p.source_key for p in found] == ["src:P1"]
        assert identifiers.read(found[0]) == Identifiers("national_id", number, "+962791234567")
        child = session.scalar(select(Person).where(Person.source_key == "src:P2"))
        assert identifiers.read(child) == Identifiers(None, None, "+962791234567")
        assert child.national_id_index is None
    # The key they are under is noted in the batch's transaction: what servers check at start.
    with engine.connect() as connection:
        assert key_ids_in_use(connection) == [current_keyring().active]


def test_reimport_adds_nothing_twice_and_picks_up_fixed_rows(engine, settings, tmp_path):
    rows = [person("P1", "H1"), person("P2", "H1", "child", birth="2010-13-01")]
    folder = make_folder(tmp_path / "src", [household("H1")], rows)
    first = import_path(engine, settings, folder)
    assert (first.counts.households_added, first.counts.persons_added) == (1, 1)
    again = import_path(engine, settings, folder)
    assert again.counts.households_added == 0 and again.counts.persons_added == 0
    assert again.counts.households_present == 1
    assert counts(engine) == (1, 1, 1)
    rows[1] = person("P2", "H1", "child", birth="2010-12-01")
    make_folder(folder, [household("H1")], rows)
    fixed = import_path(engine, settings, folder)
    assert fixed.counts.persons_added == 1 and fixed.rejects_path is None
    assert counts(engine) == (1, 2, 2)
    with Session(engine) as session:
        household_ids = set(session.scalars(select(Membership.household_id)))
        assert len(household_ids) == 1, "the fixed member joins the household already imported"


def test_invalid_national_id_is_rejected_with_its_reason(engine, settings, tmp_path):
    good = valid_national_id(7)
    typo = good[:-1] + str((int(good[-1]) + 1) % 10)
    folder = make_folder(
        tmp_path / "src",
        [household("H1")],
        [person("P1", "H1", national_id=good), person("P2", "H1", "spouse", national_id=typo)],
    )
    report = import_path(engine, settings, folder)
    (reject,) = read_rejects(report.rejects_path)
    assert (reject["record_key"], reject["field"]) == ("P2", "national_id")
    assert "check digits" in reject["message"]
    assert counts(engine) == (1, 1, 1)


def test_agency_xlsx_with_arabic_headers_and_mapping(engine, settings, tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "المستفيدون"
    sheet.append(
        [
            "رقم الأسرة",
            "رقم الفرد",
            "صلة القرابة",
            "الاسم",
            "الجنس",
            "تاريخ الميلاد",
            "المنطقة",
            "عدد الغرف",
            "ملاحظات",
        ]
    )
    sheet.append(["١٠١", "١٠١-١", "رب الأسرة", "محمد", "ذكر", "٠٥/٠٣/١٩٧٩", "SJ010101", "٤", "x"])
    sheet.append(["١٠١", "١٠١-٢", "زوجة", "فاطمة", "أنثى", "١٩٨٢", "SJ010101", "٤", ""])
    sheet.append(["١٠٢", "١٠٢-١", "رب الأسرة", "علي", "ذكر", "05/03/79", "SJ010101", "2", ""])
    sheet.append(["١٠٣", "١٠٣-١", "رب الأسرة", "سعيد", "ذكر", "30/02/1970", "SJ010101", "2", ""])
    path = tmp_path / "moh-list.xlsx"
    workbook.save(path)
    mapping = tmp_path / "moh.yaml"
    mapping.write_text(
        yaml.safe_dump(
            {
                "source": "moh",
                "sheet": "المستفيدون",
                "date_order": "dmy",
                "columns": {
                    "رقم الأسرة": "household_key",
                    "رقم الفرد": "person_key",
                    "صلة القرابة": "relationship",
                    "الاسم": "given_name_ar",
                    "الجنس": "sex",
                    "تاريخ الميلاد": "birth_date",
                    "المنطقة": "area_code",
                    "عدد الغرف": "dwelling_rooms",
                },
                "values": {
                    "relationship": {"رب الأسرة": "head", "زوجة": "spouse"},
                    "sex": {"ذكر": "M", "أنثى": "F"},
                },
                "defaults": {"registration_source": "agency_import"},
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    with Session(engine) as session, session.begin():
        load_areas(session, write_csv(tmp_path / "areas.csv", AREAS))
    report = import_path(engine, settings, path, mapping_path=mapping)
    assert report.ignored_columns == ["ملاحظات"]
    assert (report.counts.households_added, report.counts.persons_added) == (1, 2)
    rejects = {r["record_key"]: r for r in read_rejects(report.rejects_path)}
    assert "two-digit year" in rejects["102-1"]["message"]
    assert rejects["102-1"]["row"] == "4"
    assert "does not exist" in rejects["103-1"]["message"]
    with Session(engine) as session:
        head = session.scalar(select(Person).where(Person.source_key == "moh:101-1"))
        assert (str(head.birth_date), head.birth_date_precision, head.sex) == (
            "1979-03-05",
            "day",
            "M",
        )
        spouse = session.scalar(select(Person).where(Person.source_key == "moh:101-2"))
        assert (str(spouse.birth_date), spouse.birth_date_precision) == ("1982-01-01", "year")
        home = session.scalar(select(Household).where(Household.source_key == "moh:101"))
        assert home.dwelling_rooms == 4 and home.registration_source == "agency_import"


def test_ambiguous_dates_are_rejected_when_the_order_is_not_declared(engine, settings, tmp_path):
    folder = make_folder(
        tmp_path / "src",
        [household("H1"), household("H2")],
        [person("P1", "H1", birth="03/05/1980"), person("P2", "H2", birth="25/05/1980")],
    )
    mapping = tmp_path / "auto.yaml"
    mapping.write_text("date_order: auto\n")
    report = import_path(engine, settings, folder, mapping_path=mapping)
    rejects = {r["record_key"]: r["message"] for r in read_rejects(report.rejects_path)}
    assert "ambiguous" in rejects["P1"]
    assert "no head" in rejects["H1"]
    assert set(rejects) == {"P1", "H1"}
    assert report.counts.households_added == 1


def test_missing_key_column_fails_before_writing_anything(engine, settings, tmp_path):
    path = write_csv(tmp_path / "list.csv", [["name", "area_code"], ["x", "SJ010101"]])
    with pytest.raises(InvalidInput, match="no column for household_key"):
        import_path(engine, settings, path)
    assert counts(engine) == (0, 0, 0)


def test_bad_mapping_file_names_the_problem(engine, settings, tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("columns:\n  A: not_a_field\ndate_order: ymd\n")
    path = write_csv(tmp_path / "list.csv", [["A"], ["x"]])
    with pytest.raises(InvalidInput, match="not_a_field.*not a registry field.*date_order"):
        import_path(engine, settings, path, mapping_path=mapping)


def test_failure_mid_import_leaves_only_whole_batches(engine, settings, tmp_path, monkeypatch):
    households = [household(f"H{i}") for i in range(250)]
    persons = []
    for i in range(250):
        persons += [person(f"P{i}a", f"H{i}"), person(f"P{i}b", f"H{i}", "child", "2012")]
    folder = make_folder(tmp_path / "src", households, persons)
    settings.import_batch_size = 100
    settings.import_initial_load = False  # the batch path (see test_import_initial_load.py)
    original = writer_module.BatchWriter._load
    calls = {"membership": 0}

    def failing_load(self, cursor, table, frame, columns):
        original(self, cursor, table, frame, columns)
        if table == "membership":
            calls["membership"] += 1
            if calls["membership"] == 2:
                raise RuntimeError("simulated crash after the second batch's rows")

    monkeypatch.setattr(writer_module.BatchWriter, "_load", failing_load)
    with pytest.raises(RuntimeError, match="simulated crash"):
        import_path(engine, settings, folder)
    assert counts(engine) == (100, 200, 200)
    monkeypatch.setattr(writer_module.BatchWriter, "_load", original)
    report = import_path(engine, settings, folder)
    assert report.counts.households_added == 150 and report.counts.households_present == 100
    assert counts(engine) == (250, 500, 500)
    with engine.connect() as connection:
        lonely = connection.execute(
            text(
                "SELECT count(*) FROM household h WHERE NOT EXISTS "
                "(SELECT 1 FROM membership m WHERE m.household_id = h.id)"
            )
        ).scalar()
    assert lonely == 0


def test_a_registry_id_collision_is_drawn_again(engine, settings, tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "one", [household("H1")], [person("P1", "H1")])
    import_path(engine, settings, folder)
    with Session(engine) as session:
        taken_household = session.scalar(select(Household.id))
        taken_person = session.scalar(select(Person.id))
    real_new_ids = writer_module.new_ids
    forced = {"household": [taken_household], "person": [taken_person]}

    def colliding_new_ids(kind, count):
        ids = real_new_ids(kind, count)
        if forced[kind]:
            ids[0] = forced[kind].pop()
        return ids

    monkeypatch.setattr(writer_module, "new_ids", colliding_new_ids)
    second = make_folder(
        tmp_path / "two", [household("H2")], [person("P2", "H2"), person("P3", "H2", "child")]
    )
    report = import_path(engine, settings, second, source="two")
    assert (report.counts.households_added, report.counts.persons_added) == (1, 2)
    assert counts(engine) == (2, 3, 3)
    with Session(engine) as session:
        home = session.scalar(select(Household).where(Household.source_key == "two:H2"))
        assert home.id != taken_household
        members = session.scalars(
            select(Membership.person_id).where(Membership.household_id == home.id)
        ).all()
        assert len(members) == 2 and taken_person not in members


def test_text_is_cleaned_only_where_it_needs_it():
    from sijill.registry.bulk.mapping import Mapping, apply_mapping

    frame = pl.DataFrame(
        {
            "_row": [2, 3, 4, 5],
            "household_key": ["H1", " H2 ", "H3", "H4"],
            "dwelling_rooms": ["٣", "3", "", "   "],
            "address": ["شارع ٥", "", None, "\tStreet 7 "],
            "dwelling_walls": ["concrete", "mud", "stone", "concrete"],
            "sanitation": ["private", "1", "x", "y"],
        }
    )
    mapping = Mapping(values={"sanitation": {"1": "shared"}})
    cleaned = apply_mapping(frame, mapping)
    assert cleaned["household_key"].to_list() == ["H1", "H2", "H3", "H4"]
    assert cleaned["dwelling_rooms"].to_list() == ["3", "3", None, None]
    # Free text keeps its own digits; blanks become missing.
    assert cleaned["address"].to_list() == ["شارع ٥", None, None, "Street 7"]
    assert cleaned["dwelling_walls"].to_list() == ["concrete", "mud", "stone", "concrete"]
    assert cleaned["sanitation"].to_list() == ["private", "shared", "x", "y"]


def test_typed_parquet_columns_are_read_as_the_text_a_csv_would_hold(tmp_path):
    import datetime as dt

    from sijill.core.files import read_table

    path = tmp_path / "typed.parquet"
    pl.DataFrame(
        {
            "rooms": pl.Series([3, None, 12], dtype=pl.Int8),
            "latitude": [31.95, None, -0.5],
            "enrolled": [True, False, None],
            "born": [dt.date(1980, 5, 3), None, dt.date(2012, 1, 31)],
            "registered": [dt.datetime(2025, 1, 10, 9, 30), None, None],
            "assets": [["tv", "fridge"], [], None],
            "name": ["أحمد", None, " x "],
        }
    ).write_parquet(path)
    batches = [batch.rows for batch in read_table(path, 2)]
    assert [b.height for b in batches] == [2, 1]
    frame = pl.concat(batches)
    assert frame["_row"].to_list() == [1, 2, 3]
    assert frame.drop("_row").rows() == [
        ("3", "31.95", "true", "1980-05-03", "2025-01-10", "tv;fridge", "أحمد"),
        (None, None, "false", None, None, "", None),
        ("12", "-0.5", None, "2012-01-31", None, None, " x "),
    ]


def _malformed_folder(tmp_path: Path) -> Path:
    """Three households; the persons file has a line with a field missing (a name in it) and
    a line with a NUL byte, both for H2's members."""
    folder = make_folder(
        tmp_path / "src",
        [household("H1"), household("H2"), household("H3")],
        [person("P1", "H1"), person("P2", "H2"), person("P4", "H3")],
    )
    persons = (folder / "persons.csv").read_bytes().splitlines(keepends=True)
    short = ",".join(person("P3", "H2", "child")[:5]).replace("Ahmed", "Zubaida")
    nul = ",".join(person("P5", "H2", "child")).replace("Ahmed", "Qamar\x00iyya")
    # Lines 1-3: header, P1, P2; line 4: the short line; 5: the NUL line; 6: P4.
    lines = [*persons[:3], short.encode() + b"\r\n", nul.encode() + b"\r\n", *persons[3:]]
    (folder / "persons.csv").write_bytes(b"".join(lines))
    return folder


def test_malformed_lines_are_rejects_and_the_rest_imports(engine, settings, tmp_path, capfd):
    folder = _malformed_folder(tmp_path)
    report = import_path(engine, settings, folder)
    assert (report.counts.households_added, report.counts.persons_added) == (3, 3)
    rejects = read_rejects(report.rejects_path)
    assert [(r["file"], r["row"], r["value"]) for r in rejects] == [
        ("persons.csv", "4", ""),
        ("persons.csv", "5", ""),
    ]
    assert "fields where the header has 12" in rejects[0]["message"]
    assert "NUL" in rejects[1]["message"]
    assert report.rejected_rows == 2
    said = capfd.readouterr()
    for name in ("Zubaida", "Qamar"):
        assert name not in said.out + said.err
        assert name not in report.rejects_path.read_text(encoding="utf-8-sig")


def test_the_command_prints_no_row_and_one_line_for_an_unreadable_file(
    database_url, sessions, tmp_path
):
    import os
    import subprocess
    import sys

    from factories import make_user

    key = make_user(sessions, "importer", "administrator", service=True)
    env = {
        **os.environ,
        "SIJILL_DATABASE_URL": database_url,
        "SIJILL_SERVICE_KEY": f"importer:{key}",
    }

    def sijill_import(path: Path) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "sijill", "import", str(path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)

    done = sijill_import(_malformed_folder(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "3 households and 3 persons added" in done.stderr
    assert "2 rows rejected" in done.stderr
    for name in ("Zubaida", "Qamar"):
        assert name not in done.stdout + done.stderr
    unreadable = tmp_path / "list.csv"
    unreadable.write_bytes("household_key,area_code\n".encode("utf-16"))
    failed = sijill_import(unreadable)
    assert failed.returncode != 0
    said = failed.stdout + failed.stderr
    assert "list.csv: is not UTF-8 text" in said and "Traceback" not in said
    assert len(said.strip().splitlines()) == 1, said


def test_rejected_rows_are_counted_once_whatever_their_reject_lines(engine, settings, tmp_path):
    """A flat list: the head's row fails two checks and takes its household (and so its
    child's row) with it: two rows rejected, three reject lines."""
    with Session(engine) as session, session.begin():
        load_areas(session, write_csv(tmp_path / "areas.csv", AREAS))
    header = [*HOUSEHOLD_HEADER, *[c for c in PERSON_HEADER if c != "household_key"]]
    head = [*household("H1", walls="plastic"), *person("P1", "H1", birth="31/02/1970")[0:1]]
    head += person("P1", "H1", birth="31/02/1970")[2:]
    child = [*household("H1"), *person("P2", "H1", "child")[0:1], *person("P2", "H1", "child")[2:]]
    path = write_csv(tmp_path / "list.csv", [header, head, child])
    report = import_path(engine, settings, path)
    assert report.rejected_rows == 2
    assert len(read_rejects(report.rejects_path)) == 3


def test_an_unknown_code_maps_to_a_missing_value(engine, settings, tmp_path):
    """`UNK: null` in the mapping: the agency's 'unknown' is a missing value, for a country
    code as for any coded field."""
    with Session(engine) as session, session.begin():
        load_areas(session, write_csv(tmp_path / "areas.csv", AREAS))
    header = ["household_key", "area_code", "person_key", "relationship", "given_name_ar"]
    header += ["sex", "nationality"]
    rows = [
        ["H1", "SJ010101", "P1", "head", "أحمد", "?", "UNK"],
        ["H2", "SJ010101", "P2", "head", "علي", "M", "jor"],
    ]
    path = write_csv(tmp_path / "list.csv", [header, *rows])
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("values:\n  nationality: {UNK: null}\n  sex: {'?': ~}\n", "utf-8")
    report = import_path(engine, settings, path, mapping)
    assert report.rejected_rows == 0, read_rejects(report.rejects_path)
    with Session(engine) as session:
        found = session.execute(select(Person.sex, Person.nationality).order_by(Person.source_key))
        assert found.all() == [(None, None), ("M", "JOR")]


def test_malformed_lines_after_the_last_row_are_still_rejects(engine, settings, tmp_path):
    folder = _malformed_folder(tmp_path)
    with (folder / "persons.csv").open("ab") as handle:
        handle.write(b"P9,H3\r\n")
    with (folder / "households.csv").open("ab") as handle:
        handle.write(b"H9\r\n")
    report = import_path(engine, settings, folder)
    assert (report.counts.households_added, report.counts.persons_added) == (3, 3)
    rejects = {(r["file"], r["row"]) for r in read_rejects(report.rejects_path)}
    assert rejects == {
        ("persons.csv", "4"),
        ("persons.csv", "5"),
        ("persons.csv", "7"),
        ("households.csv", "5"),
    }
    assert report.rejected_rows == 4


def test_person_facts_are_imported_and_checked(engine, settings, tmp_path):
    facts = ["enrolled", "school_grade", "contributory_pension", "orphanhood", "monthly_income"]
    rows = [
        [*person("P1", "H1"), "", "", "yes", "", "4500000000"],
        [*person("P2", "H1", "child", birth="2015-02-01"), "yes", "4", "", "paternal", ""],
        [*person("P3", "H1", "child", birth="2016-02-01"), "no", "3", "", "", ""],
        [*person("P4", "H1", "child", birth="2017-02-01"), "", "", "", "grandfather", "-5"],
    ]
    folder = make_folder(tmp_path / "src", [household("H1")], [])
    write_csv(folder / "persons.csv", [PERSON_HEADER + facts, *rows])
    report = import_path(engine, settings, folder)
    assert report.counts.persons_added == 2
    refused = {
        (r["record_key"], r["field"]): r["message"] for r in read_rejects(report.rejects_path)
    }
    assert refused == {
        ("P3", "school_grade"): "school_grade is given only when enrolled is true",
        ("P4", "orphanhood"): refused[("P4", "orphanhood")],
        ("P4", "monthly_income"): refused[("P4", "monthly_income")],
    }
    assert "not a valid orphanhood" in refused[("P4", "orphanhood")]
    assert "between 0 and" in refused[("P4", "monthly_income")]
    with engine.connect() as connection:
        stored = connection.execute(
            text(
                "SELECT source_key, enrolled, school_grade, contributory_pension, orphanhood, "
                "monthly_income FROM person ORDER BY source_key"
            )
        ).all()
    assert [tuple(row) for row in stored] == [
        ("src:P1", None, None, True, None, 4_500_000_000),
        ("src:P2", True, 4, None, "paternal", None),
    ]
