"""The proxy means test: reading a survey, fitting, validating, the artifact, its score SQL,
and four-eyes approval."""

import json
import math
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import sqlglot
import statsmodels.api as sm
from sqlglot.errors import ErrorLevel

from sijill.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from sijill.targeting import pmt
from sijill.targeting.inputs import flat_areas
from sijill.targeting.pmt_design import design, predict
from sijill.targeting.pmt_models import approve, load_approved, save_model
from sijill.targeting.pmt_sql import score_sql
from sijill.targeting.survey import read_survey, survey_features

# --- helpers ---------------------------------------------------------------------------------


def _write_survey(
    folder: Path, survey: pl.DataFrame, households: list[str] | None = None, name="survey.csv"
) -> Path:
    """A survey file with the households and persons files beside it (only their keys matter
    to the survey reader)."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = households if households is not None else survey["household_key"].to_list()
    pl.DataFrame({"household_key": keys, "area_code": ["SJ010101"] * len(keys)}).write_csv(
        folder / "households.csv"
    )
    pl.DataFrame(
        {"person_key": [f"p{k}" for k in keys], "household_key": keys, "relationship": "head"}
    ).write_csv(folder / "persons.csv")
    path = folder / name
    if name.endswith(".parquet"):
        survey.write_parquet(path)
    else:
        survey.write_csv(path)
    return path


def _survey_of(frame: pl.DataFrame, y: np.ndarray, w: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "household_key": frame["household_id"],
            "consumption_pc": np.exp(y),
            "weight": w,
            "stratum": ["S1"] * frame.height,
        }
    )


def _random_country(n: int, seed: int, governorates=("SJ01", "SJ02", "SJ03")):
    """Features of `n` households (numbers, booleans and codes, some missing), their log
    consumption and weights: a small world where the true model is known."""
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 10, n)
    age = rng.integers(20, 80, n).astype(float)
    age[rng.random(n) < 0.05] = np.nan
    tv = rng.random(n) < 0.6
    female = rng.random(n) < 0.25
    water = rng.choice(["piped_dwelling", "well", "tanker"], n, p=[0.6, 0.25, 0.15]).astype(object)
    water[rng.random(n) < 0.03] = None
    water[:4] = "surface"  # a rare level: no term of its own
    region = rng.choice(list(governorates), n, p=[0.5, 0.4, 0.1][: len(governorates)])
    y = (
        8.0
        - 0.3 * np.log(size)
        + 0.004 * np.nan_to_num(age, nan=50)
        + 0.25 * tv
        - 0.1 * female
        - 0.3 * (water == "tanker")
        + np.where(region == "SJ02", -0.2, 0.0)
        + rng.normal(0, 0.3, n)
    )
    frame = pl.DataFrame(
        {
            "household_id": [f"h{i:05d}" for i in range(n)],
            "hh_size": pl.Series(size, dtype=pl.Int32),
            "head_age": pl.Series(age, dtype=pl.Float64, nan_to_null=True).cast(pl.Int32),
            "has_tv": pl.Series(tv).set(pl.Series(rng.random(n) < 0.02), None),
            "female_head": pl.Series(female),
            "water_source": pl.Series(water, dtype=pl.String),
            "governorate_code": pl.Series(region, dtype=pl.String),
        }
    )
    return frame, y, rng.uniform(50, 300, n)


def _fitted(tmp_path, n=400, seed=3, **options):
    frame, y, w = _random_country(n, seed)
    survey = read_survey(_write_survey(tmp_path / "survey", _survey_of(frame, y, w)))
    options.setdefault("poverty_line", 2000)
    return frame, survey, pmt.fit(frame, survey, **options)


# --- fitting -----------------------------------------------------------------------------------


def test_weighted_least_squares_matches_the_hand_computed_fit(tmp_path):
    """Six households, one proxy. By hand, with weights w = 1 1 2 2 1 1, x = 1..6 and
    log consumption y = 1 3 2 5 4 6: sum w = 8, weighted means x = 28/8 = 3.5 and y = 3.5,
    sum w dx dy = 6.25 + 0.75 + 1.5 + 1.5 + 0.75 + 6.25 = 17, sum w dx^2 = 18, so the slope is
    17/18 and the intercept 3.5 - 3.5 * 17/18 = 7/36."""
    frame = pl.DataFrame(
        {
            "household_id": [f"h{i}" for i in range(1, 7)],
            "hh_size": pl.Series([1, 2, 1, 3, 2, 1], dtype=pl.Int32),
            "dwelling_rooms": pl.Series([1, 2, 3, 4, 5, 6], dtype=pl.Int32),
        }
    )
    y = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 6.0])
    w = np.array([1.0, 1.0, 2.0, 2.0, 1.0, 1.0])
    survey = read_survey(_write_survey(tmp_path, _survey_of(frame, y, w)))
    artifact = pmt.fit(
        frame, survey, poverty_line=10, candidates=["dwelling_rooms"], p_value=1.0, folds=2
    )
    assert artifact["intercept"] == pytest.approx(7 / 36, abs=1e-12)
    [term] = artifact["terms"]
    assert (term["feature"], term["level"], term["kind"]) == ("dwelling_rooms", None, "number")
    assert term["coefficient"] == pytest.approx(17 / 18, abs=1e-12)
    assert term["std_error"] > 0
    assert term["fill"] == pytest.approx(3.5)  # the weighted mean, for a missing value
    # tau: persons below 10 (log 2.30): households 1 and 3 (1 person each, weights 1 and 2)
    # of sum(w * size) = 1 + 2 + 2 + 6 + 2 + 1 = 14.
    assert artifact["poverty_line"] == {"per_person_per_year": "10", "quantile": 3 / 14}
    assert artifact["data_source"] == {"file": "survey.csv", "households": 6, "sum_of_weights": 8}


def test_a_code_has_its_most_common_level_as_reference_and_rare_levels_count_as_it(tmp_path):
    """With one code proxy, least squares gives each level's weighted mean: the reference's
    (most weight) is the intercept, a level's coefficient its difference to it; a level seen in
    fewer than 10 households has no term and is averaged into the reference."""
    levels = ["gas"] * 15 + ["wood"] * 12 + ["dung"] * 3
    rng = np.random.default_rng(1)
    y, w = rng.normal(8, 0.5, 30), rng.uniform(1, 5, 30)
    frame = pl.DataFrame(
        {
            "household_id": [f"h{i:02d}" for i in range(30)],
            "hh_size": pl.Series([2] * 30, dtype=pl.Int32),
            "cooking_fuel": levels,
        }
    )
    survey = read_survey(_write_survey(tmp_path, _survey_of(frame, y, w)))
    artifact = pmt.fit(
        frame, survey, poverty_line=math.exp(8), candidates=["cooking_fuel"], p_value=1.0
    )
    wood = np.array(levels) == "wood"
    rest_mean = np.average(y[~wood], weights=w[~wood])
    assert artifact["reference_levels"] == {"cooking_fuel": "gas"}
    [term] = artifact["terms"]
    assert (term["level"], term["kind"]) == ("wood", "code")
    assert artifact["intercept"] == pytest.approx(rest_mean, abs=1e-10)
    assert term["coefficient"] == pytest.approx(
        np.average(y[wood], weights=w[wood]) - rest_mean, abs=1e-10
    )


def test_selection_drops_a_proxy_that_predicts_nothing(tmp_path):
    frame, y, w = _random_country(600, 5)
    noise = pl.Series("n_female", np.random.default_rng(9).integers(0, 5, 600), pl.Int32)
    frame = frame.with_columns(noise)
    survey = read_survey(_write_survey(tmp_path, _survey_of(frame, y, w)))
    artifact = pmt.fit(frame, survey, poverty_line=2000)
    kept = {t["feature"] for t in artifact["terms"]}
    assert {"hh_size", "has_tv", "water_source", "governorate_code"} <= kept
    assert "n_female" not in kept
    assert "n_female" in [d["feature"] for d in artifact["selection"]["dropped"]]


def test_validation_is_out_of_sample_and_the_same_on_every_run(tmp_path):
    frame, survey, first = _fitted(tmp_path)
    _, _, again = _fitted(tmp_path / "again")
    other_seed = pmt.fit(frame, survey, poverty_line=2000, seed=11)
    assert again["validation"] == first["validation"]
    assert again["version"] == first["version"]  # the fitting date aside, the same content
    assert other_seed["validation"]["out_of_sample"] != first["validation"]["out_of_sample"]
    figures = first["validation"]["out_of_sample"]
    assert set(figures) == {"wls", "quantile", "gradient_boosting"}
    assert first["validation"]["folds"] == 5
    assert 0 < figures["wls"]["r2"] < first["validation"]["in_sample"]["r2"]
    assert figures["gradient_boosting"]["rank_correlation"] > 0


def test_region_models_for_large_regions_and_the_national_one_for_small(tmp_path):
    frame, _, artifact = _fitted(tmp_path, n=800, regions=True)
    regions = artifact["regions"]
    assert [m["code"] for m in regions["models"]] == ["SJ01", "SJ02"]
    assert regions["national_model_for"] == ["SJ03"]  # about 80 households, under 150
    for model in regions["models"]:
        assert all(t["feature"] != "governorate_code" for t in model["terms"])
    assert "governorate_code" in [f["name"] for f in artifact["features"]]


def test_the_artifact_is_json_and_names_what_it_was_fitted_on(tmp_path):
    _, _, artifact = _fitted(tmp_path, method="quantile")
    assert json.loads(json.dumps(artifact)) == artifact
    assert artifact["method"] == "quantile"
    assert artifact["version"] == pmt.version_of(artifact)
    assert artifact["version"].startswith("pmt-") and len(artifact["version"]) == 20
    by_name = {f["name"]: f for f in artifact["features"]}
    assert by_name["hh_size"]["definition"] == "living members"  # from the catalogue
    assert artifact["catalogue_version"].startswith("f-")
    assert 0 < artifact["poverty_line"]["quantile"] < 1


def test_a_survey_from_synth_fits_with_a_positive_out_of_sample_r2(tmp_path_factory):
    from sijill.synth.service import generate

    folder = tmp_path_factory.mktemp("synth") / "country"
    manifest = generate(25_000, 1, folder)
    survey = read_survey(folder / "survey.parquet")
    areas = flat_areas(pl.read_parquet(folder / "areas.parquet"))
    frame = survey_features(survey, areas, date.fromisoformat(manifest["reference_date"]))
    line = manifest["poverty_lines"]["poverty"]
    artifact = pmt.fit(frame, survey, poverty_line=line)
    figures = artifact["validation"]["out_of_sample"]
    assert figures["wls"]["r2"] > 0.1
    assert figures["gradient_boosting"]["r2"] > 0
    assert figures["quantile"]["rank_correlation"] > 0.3
    assert artifact["data_source"]["households"] == survey.frame.height > 200
    assert "governorate_code" in {t["feature"] for t in artifact["terms"]}


# --- the score as SQL ----------------------------------------------------------------------------


def _duckdb_scores(sql: str, frame: pl.DataFrame) -> np.ndarray:
    connection = duckdb.connect()
    connection.register("features", frame.to_arrow())
    scores = connection.execute(f"SELECT {sql} AS score FROM features ORDER BY household_id")
    return np.array([row[0] for row in scores.fetchall()])


def test_the_score_sql_equals_statsmodels_prediction(tmp_path):
    frame, survey, artifact = _fitted(tmp_path, p_value=1.0)
    # statsmodels, refitted on the survey with the artifact's terms, predicts a new frame
    # with missing values and a code the survey never saw.
    rows = frame.join(survey.frame, on="household_id").sort("household_id")
    x = sm.add_constant(design(rows, artifact["terms"]), has_constant="add")
    result = sm.WLS(np.log(rows["consumption_pc"].to_numpy()), x, weights=rows["weight"]).fit()
    coefficients = [artifact["intercept"]] + [t["coefficient"] for t in artifact["terms"]]
    assert np.allclose(result.params, coefficients, rtol=0, atol=1e-9)
    new, _, _ = _random_country(300, 77)
    new = new.with_columns(
        pl.when(pl.col("household_id") == "h00010")
        .then(pl.lit("river"))
        .otherwise(pl.col("water_source"))
        .alias("water_source"),
        pl.when(pl.col("household_id") == "h00011")
        .then(None)
        .otherwise(pl.col("hh_size"))
        .alias("hh_size"),
    ).sort("household_id")
    assert new["head_age"].null_count() and new["has_tv"].null_count()
    expected = result.predict(sm.add_constant(design(new, artifact["terms"]), has_constant="add"))
    sql = score_sql(artifact)
    assert np.allclose(_duckdb_scores(sql, new), expected, rtol=0, atol=1e-9)
    assert "CASE WHEN water_source = 'tanker'" in sql
    for dialect in ("spark", "postgres"):
        other = score_sql(artifact, dialect)
        assert sqlglot.parse_one(other, read=dialect) is not None
        assert "COALESCE" in other


def test_the_score_sql_of_region_models_equals_their_prediction(tmp_path):
    frame, survey, artifact = _fitted(tmp_path, n=800, regions=True, method="quantile")
    new, _, _ = _random_country(300, 78, governorates=("SJ01", "SJ02", "SJ09"))
    new = new.sort("household_id").with_columns(
        pl.when(pl.col("household_id") == "h00001")
        .then(None)
        .otherwise(pl.col("governorate_code"))
        .alias("governorate_code")
    )
    expected = predict(artifact, new)
    assert np.allclose(_duckdb_scores(score_sql(artifact), new), expected, rtol=0, atol=1e-9)
    # The region model is the quantile fit on the region's households alone.
    sj02 = next(m for m in artifact["regions"]["models"] if m["code"] == "SJ02")
    rows = frame.join(survey.frame, on="household_id").sort("household_id")
    rows = rows.filter(pl.col("governorate_code") == "SJ02")
    scale = rows["weight"].to_numpy() / rows["weight"].mean()
    x = sm.add_constant(design(rows, sj02["terms"]), has_constant="add") * scale[:, None]
    y = np.log(rows["consumption_pc"].to_numpy()) * scale
    quantile = artifact["poverty_line"]["quantile"]
    reference = sm.QuantReg(y, x).fit(q=quantile, max_iter=5000)
    assert np.allclose(reference.params[0], sj02["intercept"], atol=1e-6)


def test_the_score_sql_refuses_a_model_that_is_not_one(tmp_path):
    _, _, artifact = _fitted(tmp_path)
    bad = json.loads(json.dumps(artifact))
    bad["terms"][0]["feature"] = "hh_size; DROP TABLE person"
    with pytest.raises(InvalidInput, match="not a column name"):
        score_sql(bad)
    bad = json.loads(json.dumps(artifact))
    bad["terms"][0]["coefficient"] = "1 OR 1=1"
    with pytest.raises(InvalidInput, match="not a number"):
        score_sql(bad)
    quoted = json.loads(json.dumps(artifact))
    code = next(t for t in quoted["terms"] if t["kind"] == "code")
    code["level"] = "it's"
    assert "'it''s'" in score_sql(quoted)


# --- a bad survey --------------------------------------------------------------------------------


def _good_survey(n=8) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "household_key": [f"K{i}" for i in range(n)],
            "consumption_pc": [str(1000 + 100 * i) for i in range(n)],
            "weight": ["10"] * n,
            "stratum": ["S1"] * n,
        }
    )


def _set(survey: pl.DataFrame, column: str, row: int, value) -> pl.DataFrame:
    return survey.with_columns(survey[column].scatter(row, value))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s: s.drop("weight", "stratum"),
            (
                "survey.csv: no column weight, stratum "
                "(a survey has household_key, consumption_pc, weight, stratum)"
            ),
        ),
        (lambda s: _set(s, "weight", 2, "ten"), "survey.csv: weight is not a number on row 4"),
        (lambda s: _set(s, "weight", 1, "0"), "survey.csv: weight is not above zero on row 3"),
        (lambda s: _set(s, "weight", 1, "-2"), "survey.csv: weight is not above zero on row 3"),
        (lambda s: _set(s, "weight", 5, None), "survey.csv: weight is empty on row 7"),
        (
            lambda s: _set(s, "consumption_pc", 0, "-5"),
            "survey.csv: consumption_pc is negative on row 2",
        ),
        (
            lambda s: _set(s, "consumption_pc", 3, None),
            "survey.csv: consumption_pc is empty on row 5",
        ),
        (
            lambda s: _set(s, "consumption_pc", 3, "inf"),
            "survey.csv: consumption_pc is not a number on row 5",
        ),
        (
            lambda s: _set(s, "consumption_pc", 4, "0"),
            "survey.csv: consumption_pc is zero (a model of its log needs it above zero) on row 6",
        ),
        (lambda s: _set(s, "stratum", 0, None), "survey.csv: stratum is empty on row 2"),
        (
            lambda s: _set(s, "household_key", 6, None),
            "survey.csv: household_key is empty on row 8",
        ),
        (
            lambda s: _set(s, "household_key", 6, "K1"),
            "survey.csv: household_key holds a key another row also holds on rows 3, 8",
        ),
    ],
)
def test_a_bad_survey_is_refused_with_its_file_column_rows_and_reason(tmp_path, change, expected):
    path = _write_survey(tmp_path, change(_good_survey()), households=[f"K{i}" for i in range(8)])
    with pytest.raises(InvalidInput) as raised:
        read_survey(path)
    assert str(raised.value) == expected
    assert "K1" not in str(raised.value)  # a key is never quoted


def test_every_problem_of_a_survey_is_reported_at_once(tmp_path):
    survey = _set(_set(_good_survey(), "weight", 0, "x"), "consumption_pc", 7, "-1")
    with pytest.raises(InvalidInput) as raised:
        read_survey(_write_survey(tmp_path, survey))
    assert [(e.field, e.row) for e in raised.value.errors] == [
        ("consumption_pc", 9),
        ("weight", 2),
    ]


def test_a_survey_key_not_in_the_households_file_is_refused(tmp_path):
    path = _write_survey(
        tmp_path, _good_survey(), households=[f"K{i}" for i in range(8) if i != 4], name="s.parquet"
    )
    with pytest.raises(InvalidInput) as raised:
        read_survey(path)
    assert (
        str(raised.value) == "s.parquet: household_key is not in households.csv on row 5"
    )  # the 5th record
    assert "K4" not in str(raised.value)


def test_a_survey_without_households_beside_it_or_rows_is_refused(tmp_path):
    lonely = tmp_path / "alone" / "survey.csv"
    lonely.parent.mkdir()
    _good_survey().write_csv(lonely)
    with pytest.raises(InvalidInput, match=r"^survey\.csv: no households file beside it"):
        read_survey(lonely)
    empty = _write_survey(tmp_path / "empty", _good_survey(0), households=["K0"])
    with pytest.raises(InvalidInput, match=r"^survey\.csv: the file has no rows$"):
        read_survey(empty)


def test_a_survey_too_small_for_its_candidates_is_refused(tmp_path):
    frame, y, w = _random_country(12, 1)
    survey = read_survey(_write_survey(tmp_path, _survey_of(frame, y, w)))
    with pytest.raises(InvalidInput) as raised:
        pmt.fit(frame, survey, poverty_line=2000)
    assert str(raised.value).startswith("survey.csv: 12 households are too few to fit ")
    assert "at least" in str(raised.value)


def test_local_digits_in_a_survey_are_read_as_numbers(tmp_path):
    survey = _set(_good_survey(), "weight", 0, "١٢٫٥")
    read = read_survey(_write_survey(tmp_path, survey))
    assert read.frame.sort("_row")["weight"][0] == 12.5


# --- storing and approving -------------------------------------------------------------------


@pytest.fixture
def artifact(tmp_path):
    return _fitted(tmp_path, n=200)[2]


def test_a_model_is_saved_once_per_version(sessions, artifact):
    with sessions.begin() as session:
        first = save_model(session, artifact, "fitter", "survey.csv")
        assert (first.version, first.method, first.approved_by) == (
            artifact["version"],
            "wls",
            None,
        )
    with sessions.begin() as session:
        again = save_model(session, {**artifact, "fitted_at": "later"}, "other", "survey.csv")
        assert again.fitted_by == "fitter"
    with sessions() as session:
        assert session.get(type(again), artifact["version"]).body == artifact


def test_four_eyes_approval(sessions, artifact):
    version = artifact["version"]
    with sessions.begin() as session:
        save_model(session, artifact, "fitter", "survey.csv")
    with sessions() as session, pytest.raises(InvalidInput, match="is not approved"):
        load_approved(session, version)
    with sessions() as session, pytest.raises(Forbidden, match="four eyes"):
        approve(session, version, "fitter")
    with sessions.begin() as session:
        approved = approve(session, version, "officer")
        assert approved.approved_by == "officer" and approved.approved_at is not None
    with sessions() as session, pytest.raises(Conflict, match="already approved"):
        approve(session, version, "someone_else")
    with sessions() as session:
        assert load_approved(session, version).body == artifact
    with sessions() as session, pytest.raises(NotFound):
        approve(session, "pmt-0000000000000000", "officer")


def test_a_changed_artifact_is_refused(sessions, artifact):
    changed = json.loads(json.dumps(artifact))
    changed["terms"][0]["coefficient"] += 1
    with sessions() as session, pytest.raises(InvalidInput, match="does not match its version"):
        save_model(session, changed, "fitter", "survey.csv")
    with sessions.begin() as session:
        save_model(session, artifact, "fitter", "survey.csv")
        approve(session, artifact["version"], "officer")
    with sessions.begin() as session:
        stored = session.get(type(save_model(session, artifact, "x", "y")), artifact["version"])
        stored.body = changed
    with sessions() as session, pytest.raises(InvalidInput, match="does not match its version"):
        load_approved(session, artifact["version"])


def test_only_a_model_a_person_can_review_is_stored(sessions, artifact):
    boosted = {**json.loads(json.dumps(artifact)), "method": "gradient_boosting"}
    boosted["version"] = pmt.version_of(boosted)
    with sessions() as session, pytest.raises(InvalidInput, match="method is one of wls, quantile"):
        save_model(session, boosted, "fitter", "survey.csv")


def test_the_scoring_run_statement_transpiles_to_spark_and_postgresql(tmp_path):
    """What `sijill pmt score` executes in DuckDB, the scale-out path runs as it is."""
    from sijill.targeting.service import score_statement

    _, _, artifact = _fitted(tmp_path, p_value=1.0)
    statement = score_statement(score_sql(artifact), "score < 7.5")
    for dialect in ("spark", "postgres"):
        (translated,) = sqlglot.transpile(
            statement, read="duckdb", write=dialect, unsupported_level=ErrorLevel.RAISE
        )
        tree = sqlglot.parse_one(translated, read=dialect)
        assert {c.alias_or_name for c in tree.selects} == {"household_id", "score", "poor"}
