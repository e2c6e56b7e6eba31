"""The household feature view: hand-computed values from registered households, the state as
of a past date, consent, scope, and every statement transpiled to Spark (the scale-out path)."""

from datetime import date, timedelta

import polars as pl
import pytest
import sqlglot
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlglot.errors import ErrorLevel

from factories import (
    OTHER_LOCALITY,
    as_update,
    auth_headers,
    child,
    household,
    make_areas,
    person,
    spouse,
)
from sijill.api import create_app
from sijill.core import clock
from sijill.core.errors import Forbidden, InvalidInput, NotFound
from sijill.registry.models import Household, HouseholdVersion, Membership, Person
from sijill.security.principal import Grant, Principal
from sijill.targeting import features
from sijill.targeting.exchange import from_exchange
from sijill.targeting.inputs import flat_areas
from sijill.targeting.service import load_snapshot, take_snapshot

TODAY = clock.utcnow().date()


def _years_ago(years: int, days: int = 0) -> str:
    return (TODAY.replace(year=TODAY.year - years) - timedelta(days=days)).isoformat()


@pytest.fixture
def registry(settings, sessions):
    make_areas(sessions)
    app = create_app(settings)
    with TestClient(app, headers=auth_headers(sessions, settings)) as client:
        yield client


def _register(client, payload) -> str:
    response = client.post("/households", json=payload)
    assert response.status_code == 201, response.text
    return response.json()["household_id"]


def test_features_of_a_registered_household_are_the_hand_computed_ones(
    registry, engine, settings, sessions
):
    family = household(
        members=[
            person(sex="F", birth_date=_years_ago(40), education_level="primary",
                   employment_status="employed", employment_sector="formal"),
            spouse(sex="M", birth_date=_years_ago(70), wg_walking=4, employment_status="retired"),
            child(birth_date=_years_ago(3), education_level=None, enrolled=None,
                  employment_status=None),
            # Turns 10 tomorrow: still 9, so not counted among the 10+ for schooling.
            child(birth_date=_years_ago(10, days=-1), enrolled=False, residency_status="refugee",
                  education_level="none"),
        ],
        dwelling_rooms=2,
        dwelling_floor="earth",
        water_source="tanker",
        cooking_fuel="wood",
        electricity="none",
        assets=["tv", "mobile_phone"],
        livestock={"sheep": 10, "poultry": 20},
        income_sources=["wages_formal", "remittances"],
    )  # fmt: skip
    household_id = _register(registry, family)
    snapshot = take_snapshot(engine, settings, principal=Principal.system("test"))
    row = snapshot.view.filter(pl.col("household_id") == household_id).row(0, named=True)
    assert row["hh_size"] == 4
    assert (row["n_children_0_4"], row["n_children_5_17"], row["n_children_0_17"]) == (1, 1, 2)
    assert (row["n_adults_18_64"], row["n_elderly_65"], row["n_female"]) == (1, 1, 1)
    # Dependents 0-14 and 65+: the two children and the spouse of 70; one member is 15-64.
    assert row["dependency_ratio"] == pytest.approx(3.0)
    assert row["female_head"] is True and row["head_age"] == 40
    assert row["head_schooling_years"] == 6 and row["head_formal"] is True
    assert (row["n_disability"], row["n_severe_disability"]) == (1, 1)
    assert row["has_severe_disability"] is True
    assert (row["n_refugees"], row["has_refugee"], row["has_stateless"]) == (1, True, False)
    # The head (primary, 6 years) and the spouse count; the 9-year-old does not.
    assert row["max_schooling_years_10plus"] == 12  # the spouse's upper secondary
    assert row["n_children_out_of_school"] == 1
    assert row["persons_per_room"] == pytest.approx(2.0)
    assert row["improved_water"] is False and row["clean_cooking_fuel"] is False
    assert row["has_electricity"] is False and row["adequate_floor"] is False
    assert (row["has_tv"], row["has_fridge"], row["n_assets"]) == (True, False, 2)
    assert row["livestock_tlu"] == pytest.approx(10 * 0.1 + 20 * 0.01)
    assert (row["has_formal_wages"], row["has_remittances"], row["has_pension"]) == (
        True,
        True,
        False,
    )
    assert (row["area_code"], row["district_code"], row["governorate_code"]) == (
        "SJ010101",
        "SJ0101",
        "SJ01",
    )
    assert row["urban"] is True
    assert snapshot.record.households == snapshot.view.height
    assert set(snapshot.view.columns) == {"household_id", *(f.name for f in features.FEATURES)}


def test_school_pension_orphan_and_income_features_are_the_hand_computed_ones(
    registry, engine, settings, sessions
):
    def pupil(age: int, grade: int, **extra):
        return child(birth_date=_years_ago(age), school_grade=grade, **extra)

    family = household(
        members=[
            person(birth_date=_years_ago(45), monthly_income=90_000),
            spouse(birth_date=_years_ago(40)),  # her income is not known
            person("parent", sex="F", birth_date=_years_ago(70), national_id=None,
                   employment_status="inactive", employment_sector=None,
                   contributory_pension=False, monthly_income=0),
            # Beyond a 32-bit integer in minor units: the sum must not overflow.
            person("parent", birth_date=_years_ago(66), national_id=None,
                   employment_status="retired", employment_sector=None,
                   contributory_pension=True, monthly_income=4_000_000_000),
            pupil(8, 3),
            pupil(12, 5),  # a repeater: still in primary
            pupil(13, 7, orphanhood="none"),
            pupil(16, 10),
            child(relationship="grandchild", birth_date=_years_ago(5), enrolled=False,
                  orphanhood="paternal"),
            # Orphaned, but an adult: not among the orphans.
            child(relationship="other_relative", birth_date=_years_ago(19), enrolled=False,
                  orphanhood="double"),
        ]
    )  # fmt: skip
    unknown = household(members=[person(), spouse(birth_date=_years_ago(67))])
    family_id, unknown_id = _register(registry, family), _register(registry, unknown)
    snapshot = take_snapshot(engine, settings, principal=Principal.system("test"))
    rows = {row["household_id"]: row for row in snapshot.view.iter_rows(named=True)}
    row = rows[family_id]
    assert (
        row["n_children_primary"],
        row["n_children_lower_secondary"],
        row["n_children_upper_secondary"],
    ) == (2, 1, 1)
    assert (row["n_pensioners"], row["n_elderly_65_without_pension"]) == (1, 1)
    assert (row["n_orphans"], row["has_orphan"]) == (1, True)
    assert row["household_income_monthly"] == 90_000 + 0 + 4_000_000_000
    assert row["income_per_capita_monthly"] == pytest.approx(4_000_090_000 / 10)
    row = rows[unknown_id]
    assert row["household_income_monthly"] is None and row["income_per_capita_monthly"] is None
    # A spouse of 67 whose pension is not known counts as without one.
    assert (row["n_pensioners"], row["n_elderly_65_without_pension"]) == (0, 1)
    assert (row["n_orphans"], row["has_orphan"], row["n_children_primary"]) == (0, False, 0)
    assert snapshot.view.schema["household_income_monthly"] == pl.Int64


def test_exchange_files_carry_the_person_facts(tmp_path):
    persons = (
        "person_key,household_key,relationship,sex,birth_date,enrolled,school_grade,"
        "contributory_pension,orphanhood,monthly_income\n"
        "P1,H1,head,F,1950-01-01,false,,true,,250000\n"
        "P2,H1,child,M,2012-01-01,true,6,false,maternal,\n"
    )
    inputs = _exchange(tmp_path, _HOUSEHOLDS.format(rooms=2, livestock=""), persons)
    row = features.compute(inputs, date(2024, 6, 30)).row(0, named=True)
    assert (row["n_children_primary"], row["n_orphans"], row["n_pensioners"]) == (1, 1, 1)
    assert row["n_elderly_65_without_pension"] == 0
    assert row["household_income_monthly"] == 250_000
    assert row["income_per_capita_monthly"] == pytest.approx(125_000)


def test_households_without_consent_are_not_assessed_and_are_counted(
    registry, engine, settings, sessions
):
    consenting = _register(registry, household())
    refusing = _register(
        registry,
        household(consent={"given": True, "date": "2026-01-15", "purposes": ["payment"]}),
    )
    snapshot = take_snapshot(engine, settings, principal=Principal.system("test"))
    ids = set(snapshot.view["household_id"])
    assert consenting in ids and refusing not in ids
    assert snapshot.record.households_without_consent == 1
    # The stored snapshot reads back, checked against its digest.
    with sessions() as session:
        again = load_snapshot(session, settings, Principal.system("test"), snapshot.record.id)
    assert again.view.equals(snapshot.view)


def test_a_snapshot_is_sorted_by_household_in_row_groups(registry, engine, settings, monkeypatch):
    """One household's row is read by skipping the row groups whose range cannot hold it."""
    import pyarrow.parquet as pq

    from sijill.targeting import service

    for _ in range(5):
        _register(registry, household())
    monkeypatch.setattr(service, "SNAPSHOT_ROW_GROUP", 2)
    snapshot = take_snapshot(engine, settings, principal=Principal.system("test"))
    metadata = pq.ParquetFile(snapshot.path).metadata
    assert metadata.num_row_groups == 3 and metadata.num_rows == 5
    ids = snapshot.view["household_id"].to_list()
    assert ids == sorted(ids)


def test_a_snapshot_as_of_a_past_date_shows_the_household_as_it_was(
    registry, engine, settings, sessions
):
    household_id = _register(registry, household(dwelling_rooms=1))
    public = registry.get(f"/households/{household_id}").json()
    response = registry.put(f"/households/{household_id}", json=as_update(public, dwelling_rooms=5))
    assert response.status_code == 200, response.text
    # As if registered 400 days ago and changed 10 days ago.
    now = clock.utcnow()
    registered, changed = now - timedelta(days=400), now - timedelta(days=10)
    with engine.begin() as connection:
        connection.execute(update(HouseholdVersion).values(valid_from=registered, valid_to=changed))
        connection.execute(update(Household).values(valid_from=changed))
        connection.execute(update(Person).values(valid_from=registered))
        connection.execute(update(Membership).values(start_date=registered.date()))
    principal = Principal.system("test")
    past = take_snapshot(engine, settings, principal=principal, as_of=TODAY - timedelta(days=30))
    current = take_snapshot(engine, settings, principal=principal)
    before = past.view.filter(pl.col("household_id") == household_id).row(0, named=True)
    after = current.view.filter(pl.col("household_id") == household_id).row(0, named=True)
    assert (before["dwelling_rooms"], before["hh_size"]) == (1, 3)
    assert (after["dwelling_rooms"], after["hh_size"]) == (5, 3)
    # Before it was registered, the household is not in the view at all.
    earlier = take_snapshot(
        engine, settings, principal=principal, as_of=TODAY - timedelta(days=500)
    )
    assert household_id not in set(earlier.view["household_id"])


@pytest.mark.parametrize("streams", [1, 3])
def test_merged_records_and_ended_memberships_are_not_members(registry, engine, settings, streams):
    """Read side by side in parts (the persons in three) or in one, the members are the same:
    neither a record merged into another person nor a member who left counts."""
    from sqlalchemy import select

    household_id = _register(registry, household())
    other_id = _register(registry, household())
    with engine.begin() as connection:
        members = connection.scalars(
            select(Membership.person_id).where(Membership.household_id == int(household_id))
        ).all()
        kept = connection.scalars(
            select(Membership.person_id).where(Membership.household_id == int(other_id))
        ).first()
        assert len(members) == 3
        connection.execute(
            update(Person).where(Person.id == members[1]).values(merged_into_id=kept)
        )
        connection.execute(
            update(Membership)
            .where(Membership.person_id == members[2])
            .values(end_date=TODAY - timedelta(days=1))
        )
    read_in_parts = settings.model_copy(update={"bulk_read_streams": streams})
    snapshot = take_snapshot(engine, read_in_parts, principal=Principal.system("test"))
    sizes = dict(snapshot.view.select("household_id", "hh_size").iter_rows())
    assert (sizes[household_id], sizes[other_id]) == (1, 3)


def test_a_scoped_officer_reads_only_their_area(registry, engine, settings, sessions):
    ids = make_areas_ids(sessions)
    inside = _register(registry, household())
    outside = _register(registry, household(area_code=OTHER_LOCALITY))
    officer = Principal("officer", (Grant("program_officer", ids["SJ01"]),))
    with pytest.raises(Forbidden):
        take_snapshot(engine, settings, principal=officer)
    with pytest.raises(NotFound):
        take_snapshot(engine, settings, principal=officer, area_code="SJ02")
    snapshot = take_snapshot(engine, settings, principal=officer, area_code="SJ01")
    assert inside in set(snapshot.view["household_id"])
    assert outside not in set(snapshot.view["household_id"])
    analyst = Principal("analyst", (Grant("analyst", None),))
    with pytest.raises(Forbidden):
        take_snapshot(engine, settings, principal=analyst)


def make_areas_ids(sessions) -> dict[str, int]:
    from sqlalchemy import select

    from sijill.core.areas import Area

    with sessions() as session:
        return dict(session.execute(select(Area.code, Area.id)).all())


def test_a_date_in_the_future_is_refused(registry, engine, settings):
    with pytest.raises(InvalidInput, match="in the future"):
        take_snapshot(
            engine, settings, principal=Principal.system("test"), as_of=TODAY + timedelta(days=2)
        )


@pytest.mark.parametrize("dialect", ["spark", "postgres"])
def test_the_feature_statement_transpiles_to_spark_and_postgresql(dialect):
    statement = features.statement(date(2024, 6, 30))
    (translated,) = sqlglot.transpile(
        statement, read="duckdb", write=dialect, unsupported_level=ErrorLevel.RAISE
    )
    assert "household_id" in translated
    # Every feature survives the translation, each named once in the outer select.
    for feature in features.FEATURES:
        assert f"AS {feature.name}" in translated


def test_every_feature_has_labels_in_three_languages_and_a_definition():
    names = [f.name for f in features.CATALOGUE]
    assert len(names) == len(set(names))
    for feature in features.CATALOGUE:
        assert feature.labels.ar and feature.labels.fr and feature.labels.en
        assert feature.definition and feature.type in features.SQL_TYPES


def _exchange(tmp_path, households: str, persons: str):
    (tmp_path / "households.csv").write_text(households)
    (tmp_path / "persons.csv").write_text(persons)
    areas = flat_areas(
        pl.DataFrame(
            {
                "code": ["SJ", "SJ01", "SJ0101", "SJ010101"],
                "parent_code": [None, "SJ", "SJ01", "SJ0101"],
                "level": ["country", "governorate", "district", "locality"],
                "urban": [None, None, None, False],
            }
        )
    )
    return from_exchange(tmp_path / "households.csv", tmp_path / "persons.csv", areas)


_HOUSEHOLDS = (
    "household_key,area_code,dwelling_rooms,assets,livestock\n"
    "H1,SJ010101,{rooms},tv;car,{livestock}\n"
)
_PERSONS = (
    "person_key,household_key,relationship,sex,birth_date,wg_seeing,enrolled\n"
    "P1,H1,head,F,{birth},1,false\n"
    "P2,H1,child,M,2015,4,true\n"
)


def test_exchange_files_give_the_same_features(tmp_path):
    inputs = _exchange(
        tmp_path,
        _HOUSEHOLDS.format(rooms=2, livestock="camels:2;poultry:10"),
        _PERSONS.format(birth="1980-02-29"),
    )
    view = features.compute(inputs, date(2024, 6, 30))
    row = view.row(0, named=True)
    assert (row["household_id"], row["hh_size"], row["head_age"]) == ("H1", 2, 44)
    assert row["female_head"] is True and row["has_car"] is True and row["n_assets"] == 2
    assert row["n_severe_disability"] == 1 and row["n_children_5_17"] == 1
    assert row["livestock_tlu"] == pytest.approx(2.1)
    assert row["governorate_code"] == "SJ01" and row["urban"] is False


@pytest.mark.parametrize(
    ("households", "persons", "message"),
    [
        (
            _HOUSEHOLDS.format(rooms="two", livestock=""),
            _PERSONS.format(birth="1980-01-01"),
            "households.csv: line 2: column 'dwelling_rooms' is not a whole number",
        ),
        (
            _HOUSEHOLDS.format(rooms=2, livestock="sheep12"),
            _PERSONS.format(birth="1980-01-01"),
            "households.csv: line 2: column 'livestock' is not a list of kind:count",
        ),
        (
            _HOUSEHOLDS.format(rooms=2, livestock=""),
            _PERSONS.format(birth="31/12/1980"),
            "persons.csv: line 2: column 'birth_date' is not a date",
        ),
        (
            "household_key,dwelling_rooms\nH1,2\n",
            _PERSONS.format(birth="1980-01-01"),
            "households.csv: the column 'area_code' is missing",
        ),
    ],
)
def test_a_bad_exchange_file_is_refused_with_file_line_and_column(
    tmp_path, households, persons, message
):
    with pytest.raises(InvalidInput, match=message):
        _exchange(tmp_path, households, persons)
