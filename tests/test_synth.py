"""`sijill synth`: the files follow docs/data-format.md and the synthetic country is realistic.

One country of 20,000 households is generated once for the module; the checks read its files
the way an importer or an analyst would, not the generator's internals.
"""

import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import typer
from stdnum.tr import tckimlik
from typer.testing import CliRunner

from sijill.core.errors import InvalidInput
from sijill.identity.national_id import Scheme
from sijill.identity.phones import normalise_phone, phone_column
from sijill.registry.bulk.validate import Context, check_persons
from sijill.synth import chunk, national_ids, registration, survey, tables
from sijill.synth.cli import synth
from sijill.synth.codes import permute
from sijill.synth.registration import Keys
from sijill.synth.service import MAX_HOUSEHOLDS, check_arguments, generate

FORMAT_DOC = Path(__file__).parents[1] / "docs" / "data-format.md"
N = 20_000
SEED = 11
WG = ["wg_seeing", "wg_hearing", "wg_walking", "wg_cognition", "wg_selfcare", "wg_communication"]
NAMES = [
    f"{part}_name_{script}"
    for script in ("ar", "lat")
    for part in ("given", "father", "grandfather", "family")
]


@pytest.fixture(scope="module")
def country(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "country"
    generate(N, SEED, out)
    return out


@pytest.fixture(scope="module")
def manifest(country) -> dict:
    return json.loads((country / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def persons(country, manifest) -> pl.DataFrame:
    """Persons with their truth, age at the reference date and disability flag."""
    ref = date.fromisoformat(manifest["reference_date"])
    p = pl.read_parquet(country / "persons.parquet").with_row_index("row")
    truth = pl.read_parquet(country / "truth_persons.parquet")
    return (
        p.join(truth, on="person_key", how="left")
        .sort("row")
        .with_columns(
            age=ref.year - pl.col("birth_date").str.slice(0, 4).cast(pl.Int32),
            disabled=pl.max_horizontal(WG) >= 3,
        )
    )


@pytest.fixture(scope="module")
def households(country, persons) -> pl.DataFrame:
    """Original households (not re-registrations) with their truth and size."""
    re_registered = (
        persons.group_by("household_key")
        .agg(
            again=(pl.col("duplicate_kind").fill_null("") != "moved_household").all()
            & pl.col("duplicate_kind").is_not_null().all()
        )
        .filter("again")["household_key"]
    )
    size = persons.filter(pl.col("duplicate_kind").is_null()).group_by("household_key").len()
    return (
        pl.read_parquet(country / "households.parquet")
        .filter(~pl.col("household_key").is_in(re_registered.implode()))
        .join(pl.read_parquet(country / "truth_households.parquet"), on="household_key")
        .join(size.rename({"len": "size"}), on="household_key")
    )


# --- The format ------------------------------------------------------------------------------


def _doc_sections() -> dict[str, str]:
    text = FORMAT_DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.M)
    return {part.split("\n", 1)[0]: part for part in parts[1:]}


def _doc_table(section: str) -> dict[str, list[str]]:
    """Column -> documented values, from the markdown table of a section."""
    columns: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        # Backticked words are the code list, except examples ("e.g. ...").
        values = re.findall(r"`([^`]+)`", re.sub(r"\(?e\.g\..*?(\)|$)", "", cells[1]))
        for name in re.findall(r"`([^`]+)`", cells[0]):
            columns[name] = values
    return columns


def _doc_truth_columns(file: str) -> list[str]:
    text = FORMAT_DOC.read_text(encoding="utf-8")
    # The bullet that describes the file, with its indented continuation lines.
    bullet = re.search(rf"^- `{re.escape(file)}`:(.*(?:\n {{2}}.*)*)", text, flags=re.M)
    described = bullet.group(1)
    return re.findall(r"`([^`]+)`", re.sub(r"\([^)]*\)", "", described))


def _doc(name: str) -> dict[str, list[str]]:
    return _doc_table(next(v for k, v in _doc_sections().items() if f"`{name}" in k))


def test_files_are_all_written(country, manifest):
    for table in ("areas", "households", "persons"):
        assert (country / f"{table}.parquet").exists() and (country / f"{table}.csv").exists()
    for name in ("truth_households", "truth_persons", "survey"):
        assert (country / f"{name}.parquet").exists()
    assert (country / "areas.geojson").exists()
    listed = {f["name"] for f in manifest["files"]}
    assert listed == {p.name for p in country.iterdir()} - {"manifest.json"}


@pytest.mark.parametrize("table", ["areas", "households", "persons"])
def test_columns_are_the_documented_ones_in_order(country, table):
    documented = list(_doc(f"{table}.csv" if table == "areas" else f"{table}.parquet"))
    assert pq.read_schema(country / f"{table}.parquet").names == documented
    with open(country / f"{table}.csv", encoding="utf-8") as f:
        assert f.readline().strip().replace('"', "").split(",") == documented


@pytest.mark.parametrize(
    ("file", "table"),
    [
        ("truth_households.parquet", "truth_households"),
        ("truth_persons.parquet", "truth_persons"),
        ("survey.parquet", "survey"),
    ],
)
def test_truth_columns_are_the_documented_ones(country, file, table):
    assert pq.read_schema(country / file).names == _doc_truth_columns(file)


@pytest.mark.parametrize("table", ["areas", "households", "persons"])
def test_coded_values_are_documented(country, table):
    documented = _doc(f"{table}.csv" if table == "areas" else f"{table}.parquet")
    df = pl.read_parquet(country / f"{table}.parquet")
    lists = {"assets", "income_sources", "consent_purposes", "livestock"}
    checked = 0
    for column, values in documented.items():
        if column in WG or len(values) < 2 or column in lists:
            continue
        if column in ("birth_date", "registration_date", "consent_date"):
            continue  # formats, not code lists
        used = set(df[column].drop_nulls().cast(pl.String).unique().to_list())
        assert used <= set(values), (column, used - set(values))
        checked += 1
    assert checked >= (2 if table == "areas" else 9)


def test_list_fields_hold_documented_items(country):
    documented = _doc("households.parquet")
    hh = pl.read_parquet(country / "households.parquet")
    for column in ("assets", "income_sources"):
        items = set(hh[column].drop_nulls().str.split(";").explode().unique().to_list())
        assert items and items <= set(documented[column]), column
    kinds = set(documented["livestock"]) - {"kind:count"}
    herds = hh["livestock"].drop_nulls().str.split(";").explode()
    assert herds.str.contains(r"^[a-z]+:[1-9][0-9]*$").all()
    assert set(herds.str.split(":").list.first().unique().to_list()) <= kinds
    purposes = set(hh["consent_purposes"].drop_nulls().str.split(";").explode().to_list())
    assert {"eligibility_assessment", "payment", "research", "data_sharing:MOH"} == purposes


def test_code_lists_agree_with_the_registry():
    from sijill.registry import codes
    from sijill.synth import dwelling, population, welfare

    assert set(codes.HOUSEHOLD_CODES["dwelling_walls"]) == set(dwelling.WALLS)
    assert set(codes.HOUSEHOLD_LISTS["assets"]) == set(dwelling.ASSETS)
    assert set(codes.HOUSEHOLD_LISTS["income_sources"]) == set(dwelling.INCOME)
    assert set(codes.PERSON_CODES["relationship"]) == set(population.RELATIONSHIPS)
    assert set(codes.PERSON_CODES["employment_status"]) == set(welfare.EMPLOYMENT)
    assert set(codes.PERSON_CODES["education_level"]) == set(welfare.EDUCATION)


def test_csv_holds_the_same_values_as_parquet(country):
    for table in ("households", "persons"):
        parquet = pq.read_table(country / f"{table}.parquet")
        options = pacsv.ConvertOptions(column_types=parquet.schema, strings_can_be_null=True)
        csv = pacsv.read_csv(country / f"{table}.csv", convert_options=options)
        assert csv.equals(parquet), table


def test_formats_of_dates_phones_and_keys(persons, country):
    dates = persons["birth_date"]
    assert dates.str.contains(r"^\d{4}(-\d{2}(-\d{2})?)?$").all()
    assert persons["phone"].drop_nulls().str.contains(r"^\+9997\d{8}$").all()
    assert persons["person_key"].n_unique() == persons.height
    hh = pl.read_parquet(country / "households.parquet")
    assert hh["household_key"].n_unique() == hh.height
    assert hh["registration_source"].unique().to_list() == ["synthetic"]
    areas = pl.read_csv(country / "areas.csv")
    assert set(hh["area_code"]) <= set(areas.filter(pl.col("level") == "locality")["code"])
    geo = json.loads((country / "areas.geojson").read_text(encoding="utf-8"))
    assert {f["properties"]["code"] for f in geo["features"]} == set(areas["code"])


def test_areas_nest_and_localities_are_urban_or_rural(country):
    areas = pl.read_csv(country / "areas.csv", schema_overrides={"urban": pl.Boolean})
    levels = areas["level"].value_counts()
    counts = dict(zip(levels["level"], levels["count"], strict=True))
    assert counts["country"] == 1 and 5 <= counts["governorate"] <= 8
    assert 4 * counts["governorate"] <= counts["district"] <= 6 * counts["governorate"]
    codes = set(areas["code"])
    for code, parent in areas.select("code", "parent_code").drop_nulls().iter_rows():
        assert parent in codes and code.startswith(parent) and len(code) == len(parent) + 2
    localities = areas.filter(pl.col("level") == "locality")
    assert localities["urban"].is_not_null().all() and localities["urban"].any()
    assert areas.filter(pl.col("level") != "locality")["urban"].is_null().all()


# --- Same seed, same bytes ---------------------------------------------------------------------


def test_same_seed_gives_identical_files(tmp_path):
    generate(1_500, 5, tmp_path / "a")
    generate(1_500, 5, tmp_path / "b")
    generate(1_500, 6, tmp_path / "c")
    for name in (
        "households.parquet",
        "persons.parquet",
        "truth_persons.parquet",
        "survey.parquet",
        "persons.csv",
        "manifest.json",
        "areas.geojson",
    ):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    truth = pl.read_parquet(tmp_path / "a" / "truth_persons.parquet")
    assert (truth["duplicate_kind"] == "other_script").sum() >= 5
    assert (tmp_path / "a" / "persons.parquet").read_bytes() != (
        tmp_path / "c" / "persons.parquet"
    ).read_bytes()


# --- Households and rosters --------------------------------------------------------------------


def test_every_household_has_one_head_and_contiguous_members(country, persons):
    heads = persons.group_by("household_key").agg((pl.col("relationship") == "head").sum())
    assert (heads["relationship"] == 1).all()
    order = pl.read_parquet(country / "households.parquet", columns=["household_key"])
    runs = persons["household_key"].rle()
    assert runs.struct.field("value").to_list() == order["household_key"].to_list()


def test_household_sizes_are_realistic(households):
    assert 4.2 <= households["size"].mean() <= 4.9
    assert households["size"].max() >= 12
    assert 0.04 <= (households["size"] == 1).mean() <= 0.12


def test_children_are_younger_than_parents(persons):
    heads = persons.filter(pl.col("relationship") == "head").select(
        "household_key", head_year=pl.col("age")
    )
    p = persons.join(heads, on="household_key")
    children = p.filter(pl.col("relationship") == "child")
    assert (children["head_year"] - children["age"]).min() >= 13
    grandchildren = p.filter(pl.col("relationship") == "grandchild")
    assert (grandchildren["head_year"] - grandchildren["age"]).min() >= 30
    parents = p.filter(pl.col("relationship") == "parent")
    assert (parents["age"] - parents["head_year"]).min() >= 15
    spouses = persons.filter(pl.col("relationship") == "spouse").select(
        "household_key", spouse_age=pl.col("age")
    )
    with_spouse = children.join(spouses, on="household_key")
    assert (with_spouse["spouse_age"] - with_spouse["age"]).min() >= 13


def test_marital_status_follows_relationships(persons):
    spouses = persons.filter(pl.col("relationship").is_in(["spouse"]))
    assert (spouses["marital_status"] == "married").all()
    heads = persons.filter(pl.col("relationship") == "head")
    has_spouse = persons.filter(pl.col("relationship") == "spouse")["household_key"]
    married_heads = heads.filter(pl.col("household_key").is_in(has_spouse.implode()))
    assert (married_heads["marital_status"] == "married").all()
    assert (persons.filter(pl.col("age") < 15)["marital_status"] == "never_married").all()


def test_children_carry_the_fathers_names(persons):
    # (A record written in one script, half of an `other_script` pair, is left out: it is
    # another agency's list, spelled its own way.)
    originals = persons.filter(
        pl.col("duplicate_kind").is_null()
        & pl.col("given_name_ar").is_not_null()
        & pl.col("given_name_lat").is_not_null()
    )
    heads = originals.filter((pl.col("relationship") == "head") & (pl.col("sex") == "M")).select(
        "household_key",
        hg=pl.col("given_name_ar"),
        hf=pl.col("father_name_ar"),
        hfam=pl.col("family_name_ar"),
        hgl=pl.col("given_name_lat"),
    )
    children = originals.filter(pl.col("relationship") == "child").join(heads, on="household_key")
    assert children.height > 1000
    assert (children["father_name_ar"] == children["hg"]).all()
    assert (children["father_name_lat"] == children["hgl"]).all()
    assert (children["grandfather_name_ar"] == children["hf"]).all()
    assert (children["family_name_ar"] == children["hfam"]).all()


def test_name_tables_are_rich_and_spellings_vary():
    from sijill.synth import names

    assert len(names.MALE) >= 80 and len(names.FEMALE) >= 80 and len(names.FAMILY) >= 100
    spellings = dict((ar, lat) for ar, lat, _ in names.MALE + names.FEMALE)
    assert {"Mohamed", "Mohammed", "Muhammad"} <= set(spellings["محمد"])
    assert {"Abdelrahman", "Abdul Rahman"} <= set(spellings["عبد الرحمن"])
    assert {"Hussein", "Hussain"} <= set(spellings["حسين"])
    assert {"Fatima", "Fatma"} <= set(spellings["فاطمة"])


def test_originals_use_one_spelling_per_name(persons):
    originals = persons.filter(
        pl.col("duplicate_kind").is_null()
        & pl.col("given_name_ar").is_not_null()
        & pl.col("given_name_lat").is_not_null()
    )
    spellings = originals.group_by("given_name_ar").agg(pl.col("given_name_lat").n_unique())
    assert (spellings.drop_nulls("given_name_ar")["given_name_lat"] == 1).all()


# --- Identity documents ------------------------------------------------------------------------


def test_national_ids_pass_the_stdnum_check(persons):
    ids = persons.filter(pl.col("national_id_type") == "national_id")["national_id"]
    sample = ids.sample(3_000, seed=1).to_list()
    assert all(tckimlik.is_valid(number) for number in sample)
    originals = persons.filter(
        (pl.col("national_id_type") == "national_id") & pl.col("duplicate_kind").is_null()
    )
    assert originals["national_id"].n_unique() == originals.height


def test_who_holds_which_document(persons):
    citizens = persons.filter(pl.col("residency_status") == "citizen")
    adults = citizens.filter(pl.col("age") >= 17)
    assert (adults["national_id_type"] == "national_id").mean() >= 0.93
    assert 0.3 <= (citizens.filter(pl.col("age") < 16)["national_id"].is_not_null()).mean() < 0.9
    refugees = persons.filter(pl.col("residency_status").is_in(["refugee", "asylum_seeker"]))
    numbers = refugees.filter(pl.col("national_id_type") == "unhcr")["national_id"]
    assert numbers.str.contains(r"^\d{3}-\d{2}C\d{5}$").all()
    assert (refugees["nationality"] != "XSJ").all()
    stateless = persons.filter(pl.col("residency_status") == "stateless")
    assert stateless.height and stateless["nationality"].is_null().all()
    assert stateless["national_id"].is_null().all()
    migrants = persons.filter(pl.col("residency_status") == "migrant")
    assert set(migrants["national_id_type"].drop_nulls()) == {"passport", "residence_permit"}


# --- Duplicates and their truth ----------------------------------------------------------------


def test_duplicates_share_and_kinds(persons):
    duplicates = persons.filter(pl.col("duplicate_kind").is_not_null())
    assert 0.025 <= duplicates.height / persons.height <= 0.035
    kinds = duplicates["duplicate_kind"].value_counts()
    assert set(kinds["duplicate_kind"]) == {
        "typo",
        "transliteration",
        "national_id_missing",
        "national_id_mistyped",
        "day_month_swapped",
        "other_script",
        "moved_household",
    }
    assert kinds["count"].min() >= 20
    again = duplicates.filter(pl.col("duplicate_kind") != "moved_household")
    assert 0.11 <= (again["duplicate_kind"] == "other_script").mean() <= 0.19


def test_duplicate_truth_is_consistent(persons):
    originals = persons.filter(pl.col("duplicate_of").is_null())
    assert originals["duplicate_kind"].is_null().all()
    assert originals["entity_id"].n_unique() == originals.height
    duplicates = persons.filter(pl.col("duplicate_of").is_not_null())
    pairs = duplicates.join(
        originals, left_on="duplicate_of", right_on="person_key", suffix="_o", how="left"
    )
    assert pairs["row_o"].is_not_null().all()  # every duplicate points at an original
    assert (pairs["entity_id"] == pairs["entity_id_o"]).all()
    assert (pairs["sex"] == pairs["sex_o"]).all()


def _pairs(persons: pl.DataFrame, kind: str) -> pl.DataFrame:
    return persons.filter(pl.col("duplicate_kind") == kind).join(
        persons, left_on="duplicate_of", right_on="person_key", suffix="_o"
    )


def _differs(pairs: pl.DataFrame, columns) -> np.ndarray:
    return np.column_stack(
        [(pairs[c].fill_null("") != pairs[f"{c}_o"].fill_null("")).to_numpy() for c in columns]
    )


def test_each_duplicate_kind_differs_as_described(persons):
    typo = _pairs(persons, "typo")
    assert (_differs(typo, NAMES).sum(axis=1) == 1).all()
    translit = _pairs(persons, "transliteration")
    assert (_differs(translit, NAMES[4:]).sum(axis=1) == 1).all()
    assert (_differs(translit, NAMES[:4]).sum(axis=1) == 0).all()  # Arabic unchanged
    missing = _pairs(persons, "national_id_missing")
    assert missing["national_id"].is_null().all() and missing["national_id_o"].is_not_null().all()
    mistyped = _pairs(persons, "national_id_mistyped")
    assert (mistyped["national_id"] != mistyped["national_id_o"]).all()
    citizens = mistyped.filter(pl.col("national_id_type") == "national_id")
    assert citizens.height and all(tckimlik.is_valid(n) for n in citizens["national_id"])
    swapped = _pairs(persons, "day_month_swapped")
    assert (
        swapped["birth_date"]
        == swapped["birth_date_o"].str.replace(r"^(\d{4})-(\d{2})-(\d{2})$", "$1-$3-$2")
    ).all()
    assert (swapped["birth_date"] != swapped["birth_date_o"]).all()
    moved = _pairs(persons, "moved_household")
    assert (moved["household_key"] != moved["household_key_o"]).all()
    assert (_differs(moved, NAMES + ["birth_date", "national_id"]).sum(axis=1) == 0).all()
    assert (moved["relationship"] != "head").all()


def _script(frame: pl.DataFrame, suffix: str = "") -> pl.Series:
    """Which scripts each record's names are written in: "ar", "lat" or "both"."""
    arabic = pl.any_horizontal(pl.col(f"{c}{suffix}").is_not_null() for c in NAMES[:4])
    latin = pl.any_horizontal(pl.col(f"{c}{suffix}").is_not_null() for c in NAMES[4:])
    return frame.select(
        pl.when(arabic & latin)
        .then(pl.lit("both"))
        .when(arabic)
        .then(pl.lit("ar"))
        .otherwise(pl.lit("lat"))
    ).to_series()


def test_other_script_pairs_are_written_in_one_script_each(persons):
    pairs = _pairs(persons, "other_script")
    scripts = pl.DataFrame({"copy": _script(pairs), "original": _script(pairs, "_o")})
    assert set(scripts.iter_rows()) == {("ar", "lat"), ("lat", "ar")}  # both directions
    assert (pairs["given_name_ar"].is_not_null() | pairs["given_name_ar_o"].is_not_null()).all()
    assert (pairs["given_name_lat"].is_not_null() | pairs["given_name_lat_o"].is_not_null()).all()
    # Nothing but the script differs.
    assert (_differs(pairs, ["birth_date", "national_id", "sex", "phone"]).sum(axis=1) == 0).all()
    # The Latin record is romanised its own way, not with the spelling the registry's
    # two-script records use for that Arabic name (a table a linkage could learn).
    canonical = dict(
        persons.filter((_script(persons) == "both") & pl.col("duplicate_kind").is_null())
        .select("given_name_ar", "given_name_lat")
        .unique()
        .iter_rows()
    )
    latin = pl.concat(
        [
            pairs.select(ar=pl.col("given_name_ar_o"), lat=pl.col("given_name_lat")),
            pairs.select(ar=pl.col("given_name_ar"), lat=pl.col("given_name_lat_o")),
        ]
    ).drop_nulls()
    assert 0.1 <= np.mean([canonical.get(ar) != lat for ar, lat in latin.iter_rows()]) <= 0.7
    # Only the pairs are one-script: every other record of a person with Arabic names has both.
    alone = persons.filter(
        ~pl.col("person_key").is_in(pairs["person_key"].implode())
        & ~pl.col("person_key").is_in(pairs["duplicate_of"].implode())
        & ~pl.col("duplicate_of").is_in(pairs["duplicate_of"].implode()).fill_null(False)
    )
    assert set(_script(alone)) == {"both", "lat"}  # Latin alone: domestic workers
    assert alone.filter(_script(alone) == "lat")["father_name_lat"].is_null().all()


def test_registry_import_accepts_every_row(country, manifest):
    persons = pl.read_csv(country / "persons.csv", infer_schema=False).with_row_index("_row")
    context = Context(
        areas={},
        scheme=Scheme("tr.tckimlik"),
        date_order="dmy",
        today=date.fromisoformat(manifest["reference_date"]),
    )
    clean, rejects = check_persons(persons, context)
    assert rejects.height == 0, rejects.group_by("field", "message").len().rows()
    assert clean.height == persons.height


def test_re_registered_households_keep_one_head(persons, country):
    re_registered = (
        persons.filter(
            pl.col("duplicate_kind").is_not_null() & (pl.col("duplicate_kind") != "moved_household")
        )
        .group_by("household_key")
        .agg(pl.col("relationship"))
    )
    assert re_registered.height > 100
    assert all(rels.to_list().count("head") == 1 for rels in re_registered["relationship"])


# --- Welfare: a PMT that works, but not too well -------------------------------------------------


EDUCATION = ["none", "primary", "lower_secondary", "upper_secondary", "post_secondary", "tertiary"]


def _pmt_design(households: pl.DataFrame, persons: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """What a registry observes about each household, as a regression design matrix."""
    members = (
        persons.filter(pl.col("duplicate_kind").is_null())
        .group_by("household_key")
        .agg(
            dependants=((pl.col("age") < 15) | (pl.col("age") >= 65)).sum(),
            formal=(pl.col("employment_sector") == "formal").sum(),
            informal=(pl.col("employment_sector") == "informal").sum(),
            head_education=pl.col("education_level")
            .filter(pl.col("relationship") == "head")
            .first(),
            head_female=(pl.col("sex").filter(pl.col("relationship") == "head").first() == "F"),
            refugee=pl.col("residency_status").is_in(["refugee", "asylum_seeker"]).any(),
            disabled=pl.col("disabled").any(),
        )
    )
    df = households.join(members, on="household_key")
    size = df["size"].to_numpy().astype(float)
    columns = [
        np.ones(df.height),
        np.log(size),
        df["dependants"].to_numpy() / size,
        df["formal"].to_numpy() / size,
        df["informal"].to_numpy() / size,
        df["dwelling_rooms"].to_numpy() / size,
    ]
    columns += [df[c].to_numpy().astype(float) for c in ("head_female", "refugee", "disabled")]
    for c in (
        "region_code",
        "urban",
        "head_education",
        "dwelling_tenure",
        "dwelling_walls",
        "dwelling_roof",
        "dwelling_floor",
        "water_source",
        "sanitation",
        "cooking_fuel",
        "electricity",
    ):
        values = df[c].cast(pl.String).fill_null("").to_numpy()
        columns += [(values == v).astype(float) for v in sorted(set(values))[1:]]
    for c in ("assets", "income_sources"):
        items = df[c].fill_null("").str.split(";")
        for item in sorted(set(items.explode().to_list()) - {""}):
            columns.append(items.list.contains(item).to_numpy().astype(float))
    for kind in ("cattle", "sheep", "goats", "camels", "poultry"):
        count = df["livestock"].fill_null("").str.extract(kind + r":(\d+)").cast(pl.Float64)
        columns.append(np.log1p(count.fill_null(0).to_numpy()))
    return np.column_stack(columns), df["log_consumption_pc"].to_numpy()


def test_pmt_explains_about_half_of_consumption(households, persons):
    x, y = _pmt_design(households, persons)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    r2 = 1 - np.var(y - x @ beta) / np.var(y)
    assert 0.4 <= r2 <= 0.6, r2


def test_poverty_rates(households, manifest):
    weight = households["size"].to_numpy()
    poor = np.average(households["poor"].to_numpy(), weights=weight)
    extreme = np.average(households["extreme_poor"].to_numpy(), weights=weight)
    assert 0.18 <= poor <= 0.27 and 0.04 <= extreme <= 0.09
    assert manifest["poverty_lines"]["poverty"] > manifest["poverty_lines"]["extreme_poverty"]
    consumption = households["consumption_pc"].to_numpy()
    line = manifest["poverty_lines"]["poverty"]
    assert (households["poor"].to_numpy() == (consumption < line)).all()
    rates = manifest["poverty_rates"]
    assert (rates["persons_poor"], rates["persons_extreme_poor"]) == (
        round(poor, 4),
        round(extreme, 4),
    )


def test_poverty_differs_by_region_and_is_higher_in_rural_areas(households):
    def rate(df: pl.DataFrame) -> float:
        return float(np.average(df["poor"].to_numpy(), weights=df["size"].to_numpy()))

    by_region = [rate(g) for _, g in households.group_by("region_code")]
    assert min(by_region) <= 0.12 and max(by_region) >= 0.33
    urban = households.filter(pl.col("urban"))
    rural = households.filter(~pl.col("urban"))
    assert rate(rural) > rate(urban) + 0.1


def test_refugees_camps_and_migrants(persons, households):
    refugees = persons["residency_status"].is_in(["refugee", "asylum_seeker"]).mean()
    assert 0.03 <= refugees <= 0.05
    assert 0.005 <= (persons["residency_status"] == "migrant").mean() <= 0.04
    camps = households.filter(pl.col("dwelling_tenure") == "camp")
    assert camps.height > 100 and camps["dwelling_walls"].is_in(["tent", "tin"]).all()
    assert camps["area_code"].n_unique() <= 3


def test_disability_is_rarer_in_the_young_and_absent_under_five(persons):
    over5 = persons.filter(pl.col("age") >= 5)
    assert 0.025 <= over5["disabled"].mean() <= 0.05
    assert (
        over5.filter(pl.col("age") >= 60)["disabled"].mean()
        > 3 * over5.filter(pl.col("age") < 40)["disabled"].mean()
    )
    young = persons.filter(pl.col("age") <= 3)
    assert young.select(pl.all_horizontal(pl.col(WG).is_null())).to_series().all()
    assert (over5[WG].min_horizontal() >= 1).all()


def test_work_and_school(persons, households):
    children = persons.filter(pl.col("age") < 14)
    assert (children["employment_status"] == "not_applicable").all()
    employed = persons.filter(pl.col("employment_status") == "employed")
    assert employed["employment_sector"].is_not_null().all()
    assert (
        persons.filter(pl.col("employment_status") != "employed")["employment_sector"]
        .is_null()
        .all()
    )
    poor = households.filter(pl.col("poor"))["household_key"]
    poor_workers = employed.filter(pl.col("household_key").is_in(poor.implode()))
    assert (poor_workers["employment_sector"] == "informal").mean() > 0.6
    pupils = persons.filter((pl.col("age") >= 8) & (pl.col("age") <= 15)).join(
        households.select("household_key", "poor"), on="household_key"
    )
    by_poverty = dict(pupils.group_by("poor").agg(pl.col("enrolled").mean()).iter_rows())
    assert by_poverty[True] < by_poverty[False] - 0.05 and by_poverty[False] > 0.85


def _originals_with_poverty(persons, households) -> pl.DataFrame:
    return persons.filter(pl.col("duplicate_kind").is_null()).join(
        households.select("household_key", "poor"), on="household_key"
    )


def test_school_grades_follow_age_with_more_repetition_in_poor_households(persons, households):
    people = _originals_with_poverty(persons, households)
    graded = people.filter(pl.col("school_grade").is_not_null())
    assert graded["enrolled"].all() and graded["age"].is_between(6, 18).all()
    # Age here is by year of birth: one more than the age in years for part of the year.
    pupils = people.filter(pl.col("enrolled") & pl.col("age").is_between(7, 17))
    behind = pupils["age"] - 5 - pupils["school_grade"]
    assert pupils["school_grade"].null_count() == 0 and behind.is_between(0, 3).all()
    over_age = pupils.with_columns(over=behind >= 2).group_by("poor").agg(pl.col("over").mean())
    rate = dict(over_age.iter_rows())
    assert 0.1 <= pupils.select((behind >= 2).mean()).item() <= 0.3
    assert rate[True] > rate[False] + 0.05
    level = pl.when(pl.col("school_grade") <= 6).then(pl.lit("primary"))
    level = level.when(pl.col("school_grade") <= 9).then(pl.lit("lower_secondary"))
    level = level.otherwise(pl.lit("upper_secondary"))
    assert (pupils["education_level"] == pupils.select(level).to_series()).all()


def test_contributory_pensions_go_to_a_third_of_the_elderly_mostly_the_better_off(
    persons, households
):
    people = _originals_with_poverty(persons, households)
    assert not people.filter(pl.col("age") < 60)["contributory_pension"].any()
    elderly = people.filter(pl.col("age") >= 61)
    assert 0.28 <= elderly["contributory_pension"].mean() <= 0.42
    by_poverty = dict(elderly.group_by("poor").agg(pl.col("contributory_pension").mean()).rows())
    assert by_poverty[False] > 1.5 * by_poverty[True]
    retired = elderly.filter(pl.col("employment_status") == "retired")
    assert retired["contributory_pension"].mean() > 0.7


def test_orphans_are_a_few_percent_of_children_and_agree_with_the_roster(persons, households):
    people = _originals_with_poverty(persons, households)
    assert people.filter(pl.col("age") >= 19)["orphanhood"].is_null().all()
    children = people.filter(pl.col("age") <= 16)
    assert children["orphanhood"].null_count() == 0
    orphan = pl.col("orphanhood") != "none"
    assert 0.03 <= children.select(orphan.mean()).item() <= 0.09
    kinds = dict(children["orphanhood"].value_counts().rows())
    assert kinds["paternal"] > kinds["maternal"] > kinds["double"] > 0
    by_poverty = dict(children.group_by("poor").agg(orphan.mean()).rows())
    assert by_poverty[True] > by_poverty[False]
    refugee = pl.col("residency_status").is_in(["refugee", "asylum_seeker"])
    by_status = dict(children.group_by(refugee).agg(orphan.mean()).rows())
    assert by_status[True] > by_status[False]
    # A child of the head is an orphan only of the parent who is not there: a widowed head's
    # other parent; the head's children by a couple are never orphans.
    heads = people.filter(pl.col("relationship") == "head").select(
        "household_key", head_sex="sex", head_status="marital_status"
    )
    own = children.filter(pl.col("relationship") == "child").join(heads, on="household_key")
    expected = (
        pl.when(pl.col("head_status") != "widowed")
        .then(pl.lit("none"))
        .when(pl.col("head_sex") == "F")
        .then(pl.lit("paternal"))
        .otherwise(pl.lit("maternal"))
    )
    assert (own["orphanhood"] == own.select(expected).to_series()).all()


def test_monthly_incomes_follow_consumption_and_informal_ones_are_under_declared(
    persons, households
):
    people = _originals_with_poverty(persons, households)
    known = people.filter(pl.col("monthly_income").is_not_null())
    assert (known["monthly_income"] >= 0).all()
    assert people.filter(pl.col("age") >= 16)["true_monthly_income"].null_count() == 0
    workers = people.filter(pl.col("employment_status") == "employed")
    formal = workers.filter(pl.col("employment_sector") == "formal")
    assert (formal["monthly_income"] == formal["true_monthly_income"]).all()
    informal = workers.filter(pl.col("employment_sector") == "informal")
    assert 0.10 <= informal["monthly_income"].is_null().mean() <= 0.20
    declared = informal.drop_nulls("monthly_income")
    under = (declared["monthly_income"] < declared["true_monthly_income"]).mean()
    assert 0.6 <= under <= 0.85
    # Pensioners get at least the minimum pension (the monthly poverty line, in cents).
    pensioners = people.filter(pl.col("contributory_pension"))
    assert (pensioners["true_monthly_income"] >= 100 * 1_800 // 12).all()
    # The household's income goes with its consumption, and poor workers earn less.
    per_household = (
        people.group_by("household_key")
        .agg(income=pl.col("true_monthly_income").sum(), size=pl.len())
        .join(households.select("household_key", "log_consumption_pc"), on="household_key")
        .filter(pl.col("income") > 0)
    )
    correlation = per_household.select(
        pl.corr((pl.col("income") / pl.col("size")).log(), "log_consumption_pc")
    ).item()
    assert correlation > 0.6
    by_poverty = dict(workers.group_by("poor").agg(pl.col("true_monthly_income").median()).rows())
    assert by_poverty[True] < 0.6 * by_poverty[False]


def test_birth_dates_are_sometimes_known_only_to_the_year(persons):
    older = persons.filter((pl.col("age") > 52) & pl.col("duplicate_kind").is_null())
    year_only = older["birth_date"].str.len_chars() == 4
    assert 0.06 <= year_only.mean() <= 0.2
    children = persons.filter(pl.col("age") < 15)
    assert (children["birth_date"].str.len_chars() == 10).all()
    assert (persons["birth_date"].str.len_chars() == 7).any()


def test_phones_and_consent(persons, households):
    adults = persons.filter(pl.col("age") >= 20)
    assert 0.7 <= adults["phone"].is_not_null().mean() <= 0.95
    assert households["consent_given"].mean() >= 0.97
    consented = households.filter(pl.col("consent_given"))
    assert consented["consent_purposes"].str.starts_with("eligibility_assessment;payment").all()
    assert (consented["consent_date"] == consented["registration_date"]).all()
    assert households["registration_date"].max() - households["registration_date"].min() > (
        date(2023, 1, 1) - date(2021, 1, 1)
    )


def test_survey_is_a_weighted_one_percent_sample(country, households, manifest):
    survey = pl.read_parquet(country / "survey.parquet")
    originals = manifest["sizes"]["original_households"]
    assert survey["weight"].sum() == pytest.approx(originals, rel=0.005)
    assert 0.008 * originals <= survey.height <= 0.014 * originals
    assert survey["stratum"].n_unique() == 12
    assert set(survey["household_key"]) <= set(households["household_key"])
    truth = survey.join(households, on="household_key", suffix="_true")
    ratio = truth["consumption_pc"] / truth["consumption_pc_true"]
    assert 0.85 < ratio.median() < 1.05 and ratio.std() > 0.05  # measured, with error


def test_survey_takes_the_lowest_draws_of_each_stratum_in_order():
    """Stratum by stratum, the same rows in the same order as one sort of the whole country."""
    rng = np.random.default_rng(4)
    stratum = rng.choice([0, 1, 4, 5, 9], 200_000, p=[0.4, 0.3, 0.2, 0.09, 0.01]).astype(np.int8)
    consumption = rng.lognormal(8, 1, len(stratum))
    chosen, weight, _ = survey.sample(np.random.default_rng([SEED, 2]), stratum, consumption)
    order = np.lexsort((np.random.default_rng([SEED, 2]).random(len(stratum)), stratum))
    counts = np.bincount(stratum)
    wanted = np.where(counts, np.maximum(np.round(0.01 * counts), 2), 0).astype(np.int64)
    rank = np.arange(len(order)) - np.searchsorted(stratum[order], stratum[order])
    assert np.array_equal(chosen, order[rank < wanted[stratum[order]]])
    assert weight.sum() == pytest.approx(len(stratum))


# --- Arguments and the command line ------------------------------------------------------------


def test_bad_arguments_are_refused_before_writing(tmp_path):
    with pytest.raises(InvalidInput, match="at least 1"):
        generate(0, 1, tmp_path / "x")
    with pytest.raises(InvalidInput, match="zero or positive"):
        generate(10, -1, tmp_path / "x")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(InvalidInput, match="not empty"):
        generate(10, 1, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert not (tmp_path / "x").exists()


def test_twenty_million_households_are_accepted_and_more_refused(tmp_path):
    check_arguments(10_000_000, 1, tmp_path / "x")
    check_arguments(MAX_HOUSEHOLDS, 1, tmp_path / "x")
    assert MAX_HOUSEHOLDS == 20_000_000
    with pytest.raises(InvalidInput) as refused:
        generate(MAX_HOUSEHOLDS + 1, 1, tmp_path / "x")
    assert refused.value.detail == "--households must be at most 20,000,000 (got 20,000,001)"
    assert not (tmp_path / "x").exists()


def test_the_cap_fits_every_keyed_space(manifest):
    """Counters of the largest country allowed stay inside every number space they index."""
    sizes = manifest["sizes"]
    per_household = sizes["original_persons"] / sizes["original_households"]
    persons = MAX_HOUSEHOLDS * per_household * 1.1  # a margin far beyond chance at that size
    assert persons < registration.PHONE_CAPACITY
    assert persons < national_ids.PAYLOAD_SPAN and persons < registration.DOCUMENT_SPAN
    # Originals' household counters, then re-registrations' (fewer than the originals) from
    # the base; the summary keeps originals' counters as int32.
    assert MAX_HOUSEHOLDS <= chunk.DUPLICATE_HOUSEHOLD_BASE <= np.iinfo(np.int32).max
    assert chunk.DUPLICATE_HOUSEHOLD_BASE + MAX_HOUSEHOLDS <= tables.HOUSEHOLD_KEY_SPAN


def test_phone_numbers_stay_distinct_and_valid_beyond_thirty_million_persons():
    key = Keys.from_seed(SEED).phone
    block = registration.PHONE_BLOCK
    around = (50_000, block, 2 * block, 3 * block, registration.PHONE_CAPACITY - 50_000)
    counter = np.concatenate([np.arange(c - 50_000, c + 50_000) for c in around])
    numbers = registration.phone_numbers(counter, key)
    assert len(np.unique(numbers)) == len(counter)
    # The first 30 million persons keep the numbers of the single-operator country.
    first = counter < block
    expected = 7 * 10**8 + 70_000_000 + permute(counter[first], block, key)
    assert np.array_equal(numbers[first], expected)
    assert set(numbers // 10**8) == set(registration.PHONE_OPERATORS)
    assert (numbers % 10**8 >= registration.PHONE_FIRST_SUBSCRIBER).all()
    # Counters 30 million apart get unrelated subscriber digits.
    low = registration.phone_numbers(np.arange(1_000), key) % 10**8
    high = registration.phone_numbers(np.arange(1_000) + block, key) % 10**8
    assert (low != high).mean() > 0.99
    written = pl.Series(tables.written_phones(numbers))
    assert written.str.contains(r"^\+999[4-7]\d{8}$").all()
    accepted = pl.DataFrame({"phone": written}).select(phone_column(pl.col("phone")))["phone"]
    assert accepted.to_list() == written.to_list()  # the registry's rule, as the import applies it
    assert [normalise_phone(text) for text in written[::997]] == written[::997].to_list()
    with pytest.raises(ValueError, match="more persons than"):
        registration.phone_numbers(np.array([registration.PHONE_CAPACITY]), key)


def test_an_earlier_output_is_replaced(tmp_path):
    generate(50, 1, tmp_path / "out")
    manifest = generate(80, 2, tmp_path / "out")
    assert manifest["seed"] == 2
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["households"] == 80
    assert not list(tmp_path.glob(".*partial*"))


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("synth")(synth)
    app.command("other")(lambda: None)  # two commands, so `synth` is a subcommand as in sijill
    return app


def test_cli_writes_and_summarises(tmp_path):
    result = CliRunner().invoke(
        _cli(), ["synth", "--households", "200", "--out", str(tmp_path / "c")]
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"Wrote 2\d\d households, [\d,]+ persons", result.output)
    assert (tmp_path / "c" / "persons.csv").exists()


def test_cli_bad_argument_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(
        _cli(), ["synth", "--households", "0", "--out", str(tmp_path / "c")]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if line.strip()] == [
        "Error: --households must be at least 1 (got 0)"
    ]
