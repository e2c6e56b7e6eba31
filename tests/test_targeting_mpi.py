"""Multidimensional poverty (Alkire-Foster): a published worked example, hand-computed cases
over the feature view, decomposition that adds up, small groups hidden, the shipped global
configuration and refusals of bad configurations."""

from fractions import Fraction

import polars as pl
import pytest
import sqlglot

from sijill.core.errors import InvalidInput
from sijill.core.files import UnreadableFile
from sijill.targeting.expressions import CATALOGUE_TYPES, feature_columns, to_sql
from sijill.targeting.features import FEATURES
from sijill.targeting.mpi import compute, hidden_groups, household_scores
from sijill.targeting.mpi_config import MpiConfigError, load_config, parse_config

DTYPES = {"integer": pl.Int32, "number": pl.Float64, "boolean": pl.Boolean, "code": pl.String}
SCHEMA = {"household_id": pl.String} | {f.name: DTYPES[f.type] for f in FEATURES}
LABELS = {"ar": "س", "fr": "f", "en": "e"}
# A household deprived in nothing under the global MPI's indicators.
WELL_OFF = {
    "hh_size": 4,
    "max_schooling_years_10plus": 12,
    "n_children_out_of_school": 0,
    "cooking_fuel": "gas",
    "sanitation": "flush_sewer",
    "water_source": "piped_dwelling",
    "electricity": "grid",
    "dwelling_floor": "tiles",
    "dwelling_roof": "concrete",
    "dwelling_walls": "concrete",
    "has_tv": True,
    "has_fridge": True,
    "has_mobile_phone": True,
    "has_car": False,
}


def features(*households: dict) -> pl.DataFrame:
    rows = [
        {name: None for name in SCHEMA} | WELL_OFF | {"household_id": f"h{n + 1}"} | household
        for n, household in enumerate(households)
    ]
    return pl.DataFrame(rows, schema=SCHEMA)


def af_config(cutoffs: tuple, k: str) -> dict:
    return {
        "name": "af_example",
        "k": k,
        "dimensions": [
            {
                "name": f"d{j + 1}",
                "weight": "1/4",
                "labels": LABELS,
                "indicators": [
                    {"name": f"y{j + 1}", "labels": LABELS, "deprived_when": f"y{j + 1} < {z}"}
                ],
            }
            for j, z in enumerate(cutoffs)
        ],
    }


@pytest.mark.parametrize(
    ("achievements", "censored"),
    [
        # The paper's matrix (income in thousands, years of schooling, self-rated health on a
        # 1-5 scale, health insurance 0/1), cut-offs z = (13, 12, 3, 1).
        (
            [[13.1, 14, 4, 1], [15.2, 7, 5, 0], [12.5, 10, 1, 0], [20, 11, 3, 1]],
            [Fraction(1, 4), Fraction(2, 4), Fraction(1, 4), Fraction(2, 4)],
        ),
        # The same example with incomes in units of 500, as the brief restated it.
        (
            [[700, 14, 4, 1], [300, 13, 5, 0], [400, 10, 1, 0], [800, 11, 3, 1]],
            [Fraction(2, 4), Fraction(1, 4), Fraction(1, 4), Fraction(2, 4)],
        ),
    ],
)
def test_alkire_foster_worked_example(achievements, censored):
    """Alkire, S. and Foster, J. (2011), "Counting and multidimensional poverty measurement",
    Journal of Public Economics 95(7-8), 476-487, section 2-3: four persons, four equally
    weighted dimensions, deprivation counts c = (0, 2, 4, 1); with k = 2 dimensions of 4 the
    second and third persons are poor: H = 1/2, A = 3/4, M0 = H x A = 3/8 = 0.375."""
    first, second = zip(*[(row[0], row[1]) for row in achievements], strict=True)
    cutoffs = (13, 12, 3, 1) if first[0] < 100 else (500, 12, 3, 1)
    config = parse_config(
        af_config(cutoffs, "1/2"), {f"y{j}": "number" for j in range(1, 5)}, source="af"
    )
    frame = pl.DataFrame(
        {
            "household_id": ["p1", "p2", "p3", "p4"],
            "hh_size": [1, 1, 1, 1],
            **{f"y{j + 1}": [float(row[j]) for row in achievements] for j in range(4)},
        }
    )
    result = compute(frame, config, min_households=1)
    scores = result.households
    assert scores["mpi_score"].to_list() == [0.0, 0.5, 1.0, 0.25]
    assert scores["mpi_poor"].to_list() == [False, True, True, False]
    national = result.national
    assert [national.h, national.a, national.m0] == pytest.approx([0.5, 0.75, 0.375])
    assert [i.censored for i in result.indicators] == pytest.approx([float(c) for c in censored])
    contributions = [i.contribution for i in result.indicators]
    assert contributions == pytest.approx([100 * float(c / 4 / Fraction(3, 8)) for c in censored])
    assert sum(contributions) == pytest.approx(100)


def test_the_shipped_global_mpi_loads_and_renormalises_as_documented():
    config = load_config()
    dims = {d.name: d for d in config.dimensions}
    assert config.k == Fraction(1, 3)
    assert dims["health"].dropped
    assert all(i.absent and i.reason for i in dims["health"].indicators)
    assert dims["education"].weight == dims["living_standards"].weight == Fraction(1, 2)
    weights = {i.name: i.weight for i in config.indicators}
    assert weights == {
        "years_of_schooling": Fraction(1, 4),
        "school_attendance": Fraction(1, 4),
        **{
            name: Fraction(1, 12)
            for name in (
                "cooking_fuel",
                "sanitation",
                "drinking_water",
                "electricity",
                "housing",
                "assets",
            )
        },
    }
    assert sum(weights.values()) == 1
    described = config.describe()
    assert described["dimensions"][1]["dropped"] is True
    assert described["dimensions"][1]["indicators"][0]["reason"]


def test_every_condition_of_the_shipped_config_transpiles_to_spark():
    config = load_config()
    for indicator in config.indicators:
        spark = to_sql(indicator.deprived_when, "spark")
        tree = sqlglot.parse_one(spark, read="spark")
        assert {c.name for c in tree.find_all(sqlglot.exp.Column)} == set(
            indicator.deprived_when.columns
        )


def test_hand_computed_scores_measures_and_decomposition():
    frame = features(
        {"area_code": "A"},  # h1: nothing, c = 0
        # h2: schooling 1/4 + cooking fuel 1/12 = 1/3, exactly k: poor
        {"hh_size": 5, "area_code": "A", "max_schooling_years_10plus": 3, "cooking_fuel": "wood"},
        # h3: attendance 1/4 + sanitation, water, electricity, housing, assets 5/12 = 2/3
        {
            "hh_size": 6,
            "area_code": "B",
            "n_children_out_of_school": 2,
            "sanitation": "shared",
            "water_source": "surface",
            "electricity": "none",
            "dwelling_floor": "earth",
            "has_tv": False,
            "has_fridge": False,
        },
        # h4: cooking fuel, sanitation, water 3/12 = 1/4: not poor
        {
            "hh_size": 2,
            "area_code": "B",
            "cooking_fuel": "charcoal",
            "sanitation": "none",
            "water_source": "tanker",
        },
        # h5: no member aged 10+ (not deprived), cooking fuel unknown: excluded
        {"hh_size": 3, "area_code": "B", "max_schooling_years_10plus": None, "cooking_fuel": None},
        # h6: no member aged 10+, no electricity: 1/12
        {"hh_size": 1, "area_code": "A", "max_schooling_years_10plus": None, "electricity": "none"},
    )
    result = compute(frame, load_config(), min_households=1, by=["area_code"])
    scores = result.households
    assert scores["mpi_score"].to_list() == [0, 1 / 3, 2 / 3, 1 / 4, None, 1 / 12]
    assert scores["mpi_poor"].to_list() == [False, True, True, False, None, False]
    assert scores["deprived_years_of_schooling"].to_list() == [
        False, True, False, False, False, False,
    ]  # fmt: skip
    assert result.excluded == 1
    # People: 4 + 5 + 6 + 2 + 1 = 18 (h5 excluded); poor 5 + 6 = 11;
    # sum of the poor's scores times people: 5 x 1/3 + 6 x 2/3 = 17/3.
    national = result.national
    assert national.households == 5
    assert national.population == 18
    assert [national.h, national.m0, national.a] == pytest.approx([11 / 18, 17 / 54, 17 / 33])
    indicators = {i.name: i for i in result.indicators}
    assert indicators["cooking_fuel"].uncensored == pytest.approx(7 / 18)  # h2 and h4
    assert indicators["cooking_fuel"].censored == pytest.approx(5 / 18)  # h2 only
    assert indicators["years_of_schooling"].contribution == pytest.approx(
        100 * (1 / 4 * 5 / 18) / (17 / 54)
    )
    assert sum(i.contribution for i in result.indicators) == pytest.approx(100)
    # M0 is the weighted sum of the censored headcounts.
    assert sum(i.weight * i.censored for i in result.indicators) == pytest.approx(national.m0)
    # Area A: h1, h2, h6 (10 people, 5 poor, M0 = (5/3)/10); B: h3, h4 (8 people, 6 poor).
    a, b = result.decompositions["area_code"]
    assert (a.value, a.households, b.value, b.households) == ("A", 3, "B", 2)
    assert (a.population_share, a.h, a.m0, a.a) == pytest.approx((10 / 18, 1 / 2, 1 / 6, 1 / 3))
    assert (b.population_share, b.h, b.m0, b.a) == pytest.approx((8 / 18, 3 / 4, 1 / 2, 2 / 3))
    assert (a.contribution, b.contribution) == pytest.approx((100 * 10 / 34, 100 * 24 / 34))
    # They add up: shares to 1, share x M0 to the national M0, contributions to 100.
    assert a.population_share + b.population_share == pytest.approx(1)
    assert a.population_share * a.m0 + b.population_share * b.m0 == pytest.approx(national.m0)
    assert a.contribution + b.contribution == pytest.approx(100)
    as_json = result.to_dict()
    assert as_json["national"]["M0"] == national.m0
    assert as_json["decompositions"]["area_code"][1]["value"] == "B"


def test_a_sampling_weight_counts_like_repeated_households():
    base = [
        {"hh_size": 3, "female_head": True, "max_schooling_years_10plus": 0},
        {"hh_size": 5, "female_head": False, "electricity": "none", "cooking_fuel": "dung"},
        {"hh_size": 2, "female_head": True, "n_children_out_of_school": 1, "sanitation": "none"},
    ]
    weighted = features(*base).with_columns(w=pl.Series([1.0, 3.0, 2.0]))
    repeated = features(base[0], base[1], base[1], base[1], base[2], base[2])
    config = load_config()
    one = compute(weighted, config, min_households=1, by=["female_head"], sampling_weight="w")
    other = compute(repeated, config, min_households=1, by=["female_head"])
    mine, theirs = one.national, other.national
    assert [mine.h, mine.a, mine.m0] == pytest.approx([theirs.h, theirs.a, theirs.m0])
    groups = zip(
        one.decompositions["female_head"], other.decompositions["female_head"], strict=True
    )
    for mine, theirs in groups:
        assert (mine.population_share, mine.m0, mine.contribution) == pytest.approx(
            (theirs.population_share, theirs.m0, theirs.contribution)
        )
    bad = weighted.with_columns(w=pl.Series([1.0, -1.0, 2.0]))
    with pytest.raises(InvalidInput, match="sampling weight w is missing or negative"):
        compute(bad, config, min_households=1, sampling_weight="w")


def test_small_groups_are_hidden_with_a_complement():
    # One group under the minimum: the next smallest is hidden too.
    assert hidden_groups([10, 2, 30, 12], 5) == {0, 1}
    # Two small groups holding fewer than the minimum together: a third goes.
    assert hidden_groups([3, 1, 50, 40], 5) == {0, 1, 3}
    assert hidden_groups([10, 20], 5) == set()
    assert hidden_groups([1, 2], 1) == set()
    frame = features(
        *[{"area_code": "A"}] * 3,
        *[{"area_code": "B", "max_schooling_years_10plus": 0, "cooking_fuel": "wood"}] * 2,
        *[{"area_code": "C"}] * 6,
    )
    result = compute(frame, load_config(), min_households=3, by=["area_code"])
    groups = {g.value: g for g in result.decompositions["area_code"]}
    assert groups["B"].hidden and groups["B"].m0 is None and groups["B"].households is None
    # B alone would follow from the national figure and the others: A (3) goes with it.
    assert groups["A"].hidden and groups["A"].contribution is None
    assert not groups["C"].hidden and groups["C"].households == 6
    assert result.national.m0 is not None
    tiny = compute(frame.head(2), load_config(), min_households=3)
    assert tiny.national.m0 is None and all(i.censored is None for i in tiny.indicators)


def test_scores_need_the_columns_the_conditions_read():
    with pytest.raises(InvalidInput, match="the features have no column cooking_fuel"):
        household_scores(features({}).drop("cooking_fuel"), load_config())


def _config(**changes) -> dict:
    document = {
        "name": "test",
        "k": "1/3",
        "dimensions": [
            {
                "name": "education",
                "weight": "1/2",
                "labels": LABELS,
                "indicators": [
                    {
                        "name": "schooling",
                        "labels": LABELS,
                        "deprived_when": "max_schooling_years_10plus < 6",
                    }
                ],
            },
            {
                "name": "living",
                "weight": "1/2",
                "labels": LABELS,
                "indicators": [
                    {"name": "fuel", "labels": LABELS, "deprived_when": "cooking_fuel = 'wood'"},
                    {"name": "water", "labels": LABELS, "absent": True, "reason": "not held"},
                ],
            },
        ],
    }
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = document
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[last] = value
    return document


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"dimensions__1__indicators__0__deprived_when": "cookng_fuel = 'wood'"},
            "mpi.yaml: dimensions[1].indicators[0].deprived_when: cookng_fuel: unknown column "
            "(did you mean cooking_fuel?)",
        ),
        (
            {"dimensions__1__indicators__0__deprived_when": "cooking_fuel = 'wod'"},
            "'wod' is not a code of cooking_fuel (did you mean 'wood'?)",
        ),
        (
            {"dimensions__0__indicators__0__deprived_when": "max_schooling_years_10plus"},
            "dimensions[0].indicators[0].deprived_when: the expression gives a number",
        ),
        (
            {"dimensions__0__indicators__0__deprived_when": "(SELECT 1) = 1"},
            "deprived_when: (SELECT 1): a subquery is not allowed",
        ),
        ({"dimensions__0__weight": 0.4}, "mpi.yaml: dimensions: the weights sum to 0.9, not 1"),
        ({"k": 0}, "mpi.yaml: k: must be above 0 and at most 1, not 0"),
        ({"k": 1.5}, "k: must be above 0 and at most 1, not 1.5"),
        ({"k": "a third"}, "k: must be a number or a fraction such as 1/3"),
        ({"dimensions__1__indicators__1__reason": ""}, "indicators[1].reason: say why"),
        ({"dimensions__0__labels": {"ar": "ت", "en": "e"}}, "dimensions[0].labels.fr: is missing"),
        (
            {"dimensions__0__indicators__0__deprived_whn": "x"},
            "dimensions[0].indicators[0].deprived_whn: unknown key",
        ),
        ({"dimensions__0__indicators__0__if_null": "skip"}, "if_null: must be one of"),
        ({"dimensions__1__name": "education"}, "education is already the name"),
        ({"dimensions__0__indicators__0__absent": True}, "indicators[0].reason: say why"),
    ],
)
def test_bad_configurations_are_refused_with_the_key_path(tmp_path, changes, message):
    import yaml

    path = tmp_path / "mpi.yaml"
    path.write_text(yaml.safe_dump(_config(**changes), allow_unicode=True), encoding="utf-8")
    with pytest.raises(MpiConfigError) as raised:
        load_config(path)
    assert message in str(raised.value)
    assert raised.value.errors  # every problem, each with its key path


def test_a_dimension_without_indicators_present_is_dropped_and_weights_renormalise():
    document = _config(dimensions__0__weight="1/3", dimensions__1__weight="2/3")
    document["dimensions"].append(
        {
            "name": "health",
            "weight": "0",
            "labels": LABELS,
            "indicators": [{"name": "nutrition", "labels": LABELS, "absent": True, "reason": "x"}],
        }
    )
    with pytest.raises(MpiConfigError, match=r"dimensions\[2\].weight: must be above 0"):
        parse_config(document, feature_columns())
    document["dimensions"][0]["weight"] = "1/6"
    document["dimensions"][1]["weight"] = "1/3"
    document["dimensions"][2]["weight"] = "1/2"
    config = parse_config(document, feature_columns())
    # Health (1/2) is dropped: education 1/6 and living 1/3 become 1/3 and 2/3, and the one
    # present living indicator takes all of its dimension's weight.
    assert {i.name: i.weight for i in config.indicators} == {
        "schooling": Fraction(1, 3),
        "fuel": Fraction(2, 3),
    }
    all_absent = _config(dimensions__0__indicators__0__absent=True)
    del all_absent["dimensions"][0]["indicators"][0]["deprived_when"]
    all_absent["dimensions"][0]["indicators"][0]["reason"] = "x"
    all_absent["dimensions"][1]["indicators"][0] = {
        "name": "fuel",
        "labels": LABELS,
        "absent": True,
        "reason": "x",
    }
    with pytest.raises(MpiConfigError, match="no dimension has an indicator present"):
        parse_config(all_absent, feature_columns())


def test_unreadable_config_files_name_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("k: [1/3\n", encoding="utf-8")
    with pytest.raises(UnreadableFile, match=r"broken.yaml: is not valid YAML \(line"):
        load_config(path)
    with pytest.raises(MpiConfigError, match="list.yaml: the document is not a mapping"):
        (tmp_path / "list.yaml").write_text("- 1\n", encoding="utf-8")
        load_config(tmp_path / "list.yaml")


def test_catalogue_types_cover_every_feature():
    assert {f.type for f in FEATURES} <= set(CATALOGUE_TYPES)


def test_a_household_exactly_at_k_is_poor_whatever_floating_point_says():
    # Ten indicators of 1/10: in floating point eight of them sum to 0.7999999999999999.
    assert sum([0.1] * 8) < 0.8
    document = {
        "name": "tenths",
        "k": 0.8,
        "dimensions": [
            {
                "name": "all",
                "weight": 1,
                "labels": LABELS,
                "indicators": [
                    {"name": f"i{j}", "labels": LABELS, "deprived_when": f"y >= {j}"}
                    for j in range(1, 11)
                ],
            }
        ],
    }
    config = parse_config(document, {"y": "number"})
    frame = pl.DataFrame({"household_id": ["a", "b"], "hh_size": [1, 1], "y": [8, 7]})
    scores = household_scores(frame, config)
    assert scores["mpi_score"].to_list() == [0.8, 0.7]
    assert scores["mpi_poor"].to_list() == [True, False]
