"""The field catalogue is the one list of a household's and a person's fields: the tables, the
API, the exchange format, the bulk checks and the documentation all follow it."""

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from sijill.identity.national_id import Scheme
from sijill.registry import fields_doc
from sijill.registry.bulk import writer
from sijill.registry.bulk.validate import Context, check_households, check_persons
from sijill.registry.fields import HOUSEHOLD, PERSON, Export, Kind
from sijill.registry.models import Household, HouseholdVersion, Person, PersonVersion
from sijill.registry.schemas import (
    HouseholdFields,
    HouseholdStatePublic,
    PersonCreate,
    PersonPublic,
)

FORMAT_DOC = Path(__file__).parents[1] / "docs" / "data-format.md"
# Columns of the state tables that hold no field: keys, the area, bookkeeping, derived forms.
NOT_FIELDS = {"id", "source_key", "area_id", "search_name", "version", "valid_from"}
NOT_FIELDS |= {"recorded_by", "valid_to", "household_id", "person_id"}
NOT_FIELDS |= {"merged_into_id"}  # where a merged record points (registry.merges)


def test_data_format_doc_is_generated_from_the_catalogue():
    text = FORMAT_DOC.read_text(encoding="utf-8")
    assert fields_doc.render(text) == text, (
        "docs/data-format.md's field tables differ from registry/fields.py: run "
        "python -m sijill.registry.fields_doc docs/data-format.md"
    )


def test_doc_generator_refuses_a_document_without_its_markers():
    with pytest.raises(ValueError, match="no place marked"):
        fields_doc.render("# a document without generated parts\n")


@pytest.mark.parametrize(
    ("catalogue", "tables"),
    [(HOUSEHOLD, (Household, HouseholdVersion)), (PERSON, (Person, PersonVersion))],
)
def test_tables_hold_exactly_the_catalogues_columns(catalogue, tables):
    declared = {column.name for column in catalogue.columns()}
    for table in tables:
        assert set(table.__table__.columns.keys()) - NOT_FIELDS == declared, table.__tablename__


def test_api_models_list_the_catalogues_fields():
    def api_names(catalogue, output=False):
        return {
            field.group or field.name
            for field in catalogue
            if field.api and not (output and field.membership)
        }

    assert set(HouseholdFields.model_fields) == api_names(HOUSEHOLD)
    assert set(PersonCreate.model_fields) == api_names(PERSON)
    shown = set(HouseholdStatePublic.model_fields) - {"household_id", "version", "valid_from"}
    assert shown - {"valid_to", "recorded_by"} == api_names(HOUSEHOLD, output=True)
    shown = set(PersonPublic.model_fields) - {"person_id", "version", "valid_from"}
    assert shown == api_names(PERSON, output=True)


def test_writer_writes_every_exchange_fields_columns():
    for catalogue, columns in (
        (HOUSEHOLD, writer.HOUSEHOLD_COLUMNS),
        (PERSON, writer.PERSON_COLUMNS),
    ):
        assert {column.name for column in catalogue.columns(exchange=True)} <= set(columns)


def test_personal_fields_never_leave_in_the_export():
    for catalogue in (HOUSEHOLD, PERSON):
        for field in catalogue:
            if field.personal:
                assert field.export in (Export.DROP, Export.PSEUDONYMISE, Export.YEAR), field.name
            if field.encrypted:
                assert field.personal and field.identifier and field.export is Export.DROP


def test_code_lists_are_the_registrys():
    for catalogue in (HOUSEHOLD, PERSON):
        for field in catalogue.of_kind(Kind.CODE, Kind.CODES, Kind.COUNTS):
            assert field.codes, field.name
            if field.column_length:
                assert max(map(len, field.codes)) <= field.column_length, field.name


def _context() -> Context:
    return Context(
        areas={"SJ010101": 1},
        scheme=Scheme("tr.tckimlik"),
        date_order="dmy",
        today=dt.date(2026, 1, 1),
    )


def test_bounds_are_the_same_for_the_api_and_the_bulk_path():
    rooms = HOUSEHOLD["dwelling_rooms"]
    schema = HouseholdFields.model_json_schema()["properties"]["dwelling_rooms"]
    assert schema["anyOf"][0]["maximum"] == rooms.maximum
    highest = int(rooms.maximum)
    frame = pl.DataFrame(
        {
            "_row": [2, 3],
            "household_key": ["H1", "H2"],
            "area_code": ["SJ010101", "SJ010101"],
            "dwelling_rooms": [str(highest), str(highest + 1)],
            "livestock": [f"sheep:{int(HOUSEHOLD['livestock'].maximum)}", "sheep:1000001"],
        }
    )
    clean, rejects = check_households(frame, _context())
    assert clean["household_key"].to_list() == ["H1"]
    assert set(rejects["field"]) == {"dwelling_rooms", "livestock"}
    assert set(rejects["record_key"]) == {"H2"}


def test_bulk_path_refuses_what_the_api_refuses_for_identifiers():
    # Persian digits and direction marks are read alike; a name longer than its column is
    # refused as the API refuses it.
    frame = pl.DataFrame(
        {
            "_row": [2, 3, 4],
            "person_key": ["P1", "P2", "P3"],
            "household_key": ["H1", "H1", "H1"],
            "relationship": ["head", "spouse", "child"],
            "given_name_lat": ["Ali", "Mona", "x" * 101],
            "phone": ["\u200f+۹۶۲ ۷۹ ۱۲۳-۴۵۶۷", "+962 (79) 1234567", None],
            "national_id_type": ["passport", "unhcr", None],
            "national_id": ["ab 123456", "123-45C67890", None],
        }
    )
    clean, rejects = check_persons(frame, _context())
    assert clean["person_key"].to_list() == ["P1"]
    assert clean["phone"].to_list() == ["+962791234567"]
    assert clean["national_id"].to_list() == ["AB123456"]
    assert sorted(zip(rejects["record_key"], rejects["field"], strict=True)) == [
        ("P2", "phone"),
        ("P3", "given_name_lat"),
    ]


def test_person_facts_are_checked_alike_by_the_api_and_the_bulk_path():
    # (cells of the exchange format, the field refused, a phrase of the import's message and
    # of the API's); None: accepted. The rule across fields is one message on both paths.
    only_enrolled = "school_grade is given only when enrolled is true"
    cases = [
        ({"enrolled": "yes", "school_grade": "7"}, None, None, None),
        ({"enrolled": "no", "school_grade": "7"}, "school_grade", only_enrolled, only_enrolled),
        ({"school_grade": "3"}, "school_grade", only_enrolled, only_enrolled),
        (
            {"enrolled": "yes", "school_grade": "13"},
            "school_grade",
            "between 1 and 12",
            "or equal to 12",
        ),
        ({"monthly_income": "5000000000", "contributory_pension": "yes"}, None, None, None),
        ({"monthly_income": "-1"}, "monthly_income", "between 0 and", "or equal to 0"),
        ({"orphanhood": "paternal"}, None, None, None),
        ({"orphanhood": "father"}, "orphanhood", "not a valid orphanhood", "'paternal'"),
    ]
    cells = [
        {"_row": row, "person_key": f"P{row}"} | given for row, (given, *_) in enumerate(cases)
    ]
    frame = pl.DataFrame(
        [
            {
                name: cell.get(name)
                for name in ("_row", "person_key", *{k for c in cells for k in c} - {"_row"})
            }
            | {"household_key": "H1", "relationship": "child", "given_name_lat": "Ali"}
            for cell in cells
        ],
        schema_overrides={"_row": pl.Int64},
    )
    clean, rejects = check_persons(frame, _context())
    refused = {
        key: (field, message)
        for key, field, message in rejects.select("record_key", "field", "message").iter_rows()
    }
    for row, (given, field, phrase, api_phrase) in enumerate(cases):
        key = f"P{row}"
        api_values = {
            name: {"yes": True, "no": False}.get(value, value) for name, value in given.items()
        }
        api_error = _api_error(api_values)
        if field is None:
            assert key not in refused and api_error is None, given
        else:
            assert refused[key][0] == field and phrase in refused[key][1], given
            assert api_error is not None and api_phrase in api_error, given
    assert clean.schema["monthly_income"] == pl.Int64
    assert 5_000_000_000 in clean["monthly_income"].to_list()


def _api_error(values: dict) -> str | None:
    """The API's refusal of a member with these values, if any."""
    try:
        PersonCreate(relationship="child", given_name_lat="Ali", **values)
    except ValidationError as error:
        return "; ".join(f"{problem['msg']} {problem.get('ctx', '')}" for problem in error.errors())
    return None
