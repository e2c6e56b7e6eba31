"""Hybrid designs: a PMT cut-off relaxed for the deprived, a categorical override and a
weighted combination of ranks, on hand-computed frames; ties and missing scores; refusals."""

import random

import polars as pl
import pytest

from sijill.core.errors import InvalidInput
from sijill.targeting.expressions import column_types
from sijill.targeting.hybrid import DesignError, apply_design, load_designs, parse_design

COLUMNS = {"pmt_score": "number", "mpi_score": "number", "has_severe_disability": "boolean"}


def frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "household_id": pl.String,
            "pmt_score": pl.Float64,
            "mpi_score": pl.Float64,
            "has_severe_disability": pl.Boolean,
        },
        orient="row",
    )


def by_id(result, column: str) -> dict:
    return dict(zip(result.frame["household_id"], result.frame[column], strict=True))


RELAXED = {
    "name": "pmt relaxed for the deprived",
    "kind": "relaxed_cutoff",
    "cutoff": 7.0,
    "relaxed_cutoff": 7.5,
    "min_deprivation": 0.4,
}


def test_relaxed_cutoff_selects_by_the_rule_and_ranks_consistently():
    households = frame(
        [
            ("e", 7.0, 0.4, False),  # deprived at exactly d, score 6.5 ties with a
            ("a", 6.5, 0.1, False),  # under the cut-off
            ("b", 7.2, 0.5, False),  # deprived, under the relaxed cut-off
            ("c", 7.2, 0.3, False),  # not deprived enough
            ("d", 7.6, 0.9, False),  # deprived, above the relaxed cut-off
            ("f", None, 0.9, False),  # no PMT score: no rank
            ("g", 7.3, None, False),  # no MPI score: not relaxed
        ]
    )
    result = apply_design(households, parse_design(RELAXED, COLUMNS))
    assert by_id(result, "selected") == {
        "a": True, "b": True, "c": False, "d": False, "e": True, "f": False, "g": False,
    }  # fmt: skip
    assert by_id(result, "score") == pytest.approx(
        {"a": 6.5, "b": 6.7, "c": 7.2, "d": 7.1, "e": 6.5, "f": None, "g": 7.3}
    )
    # a and e tie at 6.5: household_id breaks the tie, not the frame's order.
    assert by_id(result, "rank") == {
        "a": 1, "e": 2, "b": 3, "d": 4, "c": 5, "g": 6, "f": None,
    }  # fmt: skip
    assert result.frame["household_id"].to_list() == list("eabcdfg")  # the frame's order
    assert (result.households, result.ranked, result.selected) == (7, 6, 3)
    assert result.describe() == {
        "name": "pmt relaxed for the deprived",
        "kind": "relaxed_cutoff",
        "parameters": {"cutoff": 7.0, "relaxed_cutoff": 7.5, "min_deprivation": 0.4},
        "households": 7,
        "ranked": 6,
        "selected": 3,
    }


def test_relaxed_cutoff_agrees_with_the_rule_on_random_households():
    rng = random.Random(13)
    rows = [
        (f"h{n:04}", round(rng.uniform(6, 9), 2), round(rng.uniform(0, 1), 2), False)
        for n in range(2000)
    ]
    result = apply_design(frame(rows), parse_design(RELAXED, COLUMNS))
    for (_, pmt, mpi, _), selected in zip(rows, result.frame["selected"], strict=True):
        assert selected == (pmt < 7.0 or (mpi >= 0.4 and pmt < 7.5))
    # The selected are exactly the first ones in rank order.
    ranked = result.frame.sort("rank")
    assert ranked["selected"].to_list() == [True] * result.selected + [False] * (
        2000 - result.selected
    )


def test_override_ranks_the_category_first_and_selects_it_whatever_its_pmt():
    households = frame(
        [
            ("a", 6.5, None, False),
            ("b", 7.2, None, True),
            ("c", 7.8, None, False),
            ("d", None, None, True),  # overridden without a PMT score: selected, ranked last
            ("e", 6.9, None, True),
            ("f", None, None, None),
        ]
    )
    design = {
        "name": "severe disability",
        "kind": "override",
        "where": "has_severe_disability",
        "cutoff": 7.0,
    }
    result = apply_design(households, parse_design(design, COLUMNS))
    assert by_id(result, "rank") == {"e": 1, "b": 2, "d": 3, "a": 4, "c": 5, "f": None}
    assert by_id(result, "selected") == {
        "a": True, "b": True, "c": False, "d": True, "e": True, "f": False,
    }  # fmt: skip
    assert result.design.parameters == {"cutoff": 7.0, "where": "has_severe_disability"}
    # Without a cut-off the design ranks only: no selection is claimed.
    del design["cutoff"]
    ranking = apply_design(households, parse_design(design, COLUMNS))
    assert "selected" not in ranking.frame.columns and ranking.selected is None
    assert by_id(ranking, "rank") == by_id(result, "rank")


def test_rank_combination_hand_computed():
    households = frame(
        [
            ("a", 6.0, 0.2, False),
            ("b", 7.0, 0.8, False),
            ("c", 8.0, 0.5, False),
            ("d", 6.5, 0.5, False),
            ("e", None, 0.9, False),
        ]
    )
    design = {"name": "half and half", "kind": "rank_combination", "pmt_weight": 0.5}
    result = apply_design(households, parse_design(design | {"coverage": 0.5}, COLUMNS))
    # PMT ranks (poorest first) / 4: a .25, d .5, b .75, c 1; deprivation ranks (most deprived
    # first, c and d tie at 2.5) / 4: b .25, c .625, d .625, a 1.
    assert by_id(result, "score") == pytest.approx(
        {"a": 0.625, "b": 0.5, "c": 0.8125, "d": 0.5625, "e": None}
    )
    assert by_id(result, "rank") == {"b": 1, "d": 2, "a": 3, "c": 4, "e": None}
    assert by_id(result, "selected") == {"a": False, "b": True, "c": False, "d": True, "e": False}
    pmt_only = apply_design(households, parse_design(design | {"pmt_weight": 1}, COLUMNS))
    assert by_id(pmt_only, "rank") == {"a": 1, "d": 2, "b": 3, "c": 4, "e": None}
    assert pmt_only.selected is None


@pytest.mark.parametrize(
    ("design", "message"),
    [
        ({"name": "x", "kind": "lottery"}, "design: kind: must be one of relaxed_cutoff"),
        ({**RELAXED, "relaxed_cutoff": 6.5}, "relaxed_cutoff: must be at least the cutoff 7.0"),
        ({**RELAXED, "min_deprivation": 0}, "min_deprivation: must be in (0, 1], not 0"),
        ({**RELAXED, "cutoff": "7"}, "cutoff: must be a number"),
        ({**RELAXED, "coverage": 0.2}, "coverage: unknown key for a relaxed_cutoff design"),
        ({"name": "x", "kind": "rank_combination"}, "pmt_weight: is required"),
        (
            {"name": "x", "kind": "rank_combination", "pmt_weight": 1.5},
            "pmt_weight: must be in [0, 1], not 1.5",
        ),
        (
            {"name": "x", "kind": "override", "where": "has_severe_disabilty"},
            "where: has_severe_disabilty: unknown column (did you mean has_severe_disability?)",
        ),
        (
            {"name": "x", "kind": "override", "where": "pmt_score"},
            "where: the expression gives a number",
        ),
        ({**RELAXED, "name": ""}, "name: must be a name"),
    ],
)
def test_bad_designs_are_refused(design, message):
    with pytest.raises(DesignError) as raised:
        parse_design(design, COLUMNS)
    assert message in str(raised.value)


def test_designs_from_a_file(tmp_path):
    path = tmp_path / "designs.yaml"
    path.write_text(
        "designs:\n"
        "  - {name: relaxed, kind: relaxed_cutoff, cutoff: 7, relaxed_cutoff: 7.5,"
        " min_deprivation: 0.33}\n"
        "  - {name: disability, kind: override, where: has_severe_disability OR mpi_score > 0.5}\n",
        encoding="utf-8",
    )
    designs = load_designs(path, COLUMNS)
    assert [(d.name, d.kind) for d in designs] == [
        ("relaxed", "relaxed_cutoff"),
        ("disability", "override"),
    ]
    path.write_text("designs:\n  - {name: x, kind: override}\n", encoding="utf-8")
    with pytest.raises(DesignError, match=r"designs.yaml: designs\[0\].where: is required"):
        load_designs(path, COLUMNS)
    path.write_text(
        "designs:\n"
        "  - {name: x, kind: rank_combination, pmt_weight: 1}\n"
        "  - {name: x, kind: rank_combination, pmt_weight: 0}\n",
        encoding="utf-8",
    )
    with pytest.raises(DesignError, match="two designs are named x"):
        load_designs(path, COLUMNS)


def test_the_frame_must_hold_what_the_design_reads():
    households = frame([("a", 6.0, 0.2, False)])
    design = parse_design(RELAXED, column_types(households))
    with pytest.raises(InvalidInput, match="the frame has no column mpi_score"):
        apply_design(households.drop("mpi_score"), design)
    with pytest.raises(InvalidInput, match="a household appears twice"):
        apply_design(pl.concat([households, households]), design)
