"""Targeting evaluation: every figure against hand-computed small cases, the selection rules,
ties, small-cell suppression, and the report's files (offline HTML, PNG, CSV, XLSX, Parquet)."""

from decimal import Decimal

import polars as pl
import pytest
from openpyxl import load_workbook

from sijill.core.errors import Conflict, InvalidInput
from sijill.targeting.evaluation import DesignColumn, Rule, evaluate, hidden_cells
from sijill.targeting.report import write_report
from sijill.targeting.report_tables import read_tables
from sijill.targeting.selection import select, with_reference

IDS = [f"h{i:02d}" for i in range(1, 11)]
# Ten one-person households, welfare 10..100. The PMT ranks them h02, h05, h01, h07, h03, then
# the others: poorer first.
PMT_ORDER = ["h02", "h05", "h01", "h07", "h03", "h04", "h06", "h08", "h09", "h10"]


def _ten(**columns) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "household_id": IDS,
            "welfare": [10.0 * i for i in range(1, 11)],
            "weight": [1.0] * 10,
            "hh_size": [1] * 10,
            "female_head": [True, False] * 5,
            "pmt": [float(PMT_ORDER.index(h)) for h in IDS],
            "perfect": [float(i) for i in range(10)],
            "reversed": [float(-i) for i in range(10)],
            **columns,
        }
    )


def _all(evaluation, design: str) -> dict:
    rows = evaluation.measures.filter((pl.col("design") == design) & (pl.col("group") == "all"))
    return rows.row(0, named=True)


def _evaluate(frame, designs, rule, **options):
    options.setdefault("groups", ("female_head",))
    options.setdefault("min_cell", 1)
    return evaluate(frame, designs, rule, **options)


def test_every_figure_of_a_known_ranking():
    # Line 35: the poor are h01, h02, h03. 20% coverage selects h02 (poor) and h05 (not).
    result = _evaluate(
        _ten(),
        [DesignColumn("pmt", "pmt")],
        Rule(transfer=Decimal("20"), coverage=0.2),
        poverty_line=Decimal("35"),
    )
    pmt = _all(result, "pmt")
    assert pmt["households"] == 10
    assert pmt["selected_share"] == pytest.approx(0.2)
    assert pmt["inclusion_error"] == pytest.approx(1 / 2)  # h05 of {h02, h05}
    assert pmt["exclusion_error"] == pytest.approx(2 / 3)  # h01, h03 of the three poor
    assert pmt["coverage_poor"] == pytest.approx(1 / 3)
    assert pmt["coverage_poorest_quintile"] == pytest.approx(1 / 2)  # h02 of {h01, h02}
    assert pmt["leakage"] == pytest.approx(1 / 2)  # h05's transfer
    assert pmt["cgh"] == pytest.approx((1 / 2) / 0.4)  # h02 is in the bottom 40% (h01-h04)
    # Poor h01, h03 ranked before: h05 sees 1 poor before it, h07 2, the five others 3.
    assert pmt["auc"] == pytest.approx((1 + 2 + 5 * 3) / (3 * 7))
    # FGT: h02 goes from 20 to 40 and leaves poverty; gaps 25, 15, 5 over a line of 35.
    assert pmt["fgt0_before"] == pytest.approx(0.3)
    assert pmt["fgt0_after"] == pytest.approx(0.2)
    assert pmt["fgt0_reduction"] == pytest.approx(0.1)
    assert pmt["fgt1_before"] == pytest.approx((25 + 15 + 5) / 35 / 10)
    assert pmt["fgt1_after"] == pytest.approx((25 + 5) / 35 / 10)
    assert result.designs.row(0, named=True)["spent"] == Decimal("40")


def test_a_perfect_ranking_scores_one_and_a_reversed_one_zero():
    result = _evaluate(
        _ten(),
        [DesignColumn("perfect", "perfect"), DesignColumn("reversed", "reversed")],
        Rule(transfer=Decimal("5"), coverage=0.3),
        poverty_line=Decimal("35"),
    )
    perfect, reverse = _all(result, "perfect"), _all(result, "reversed")
    assert perfect["auc"] == pytest.approx(1.0)
    assert (perfect["inclusion_error"], perfect["exclusion_error"]) == (0.0, 0.0)
    assert reverse["auc"] == pytest.approx(0.0)
    assert (reverse["inclusion_error"], reverse["exclusion_error"]) == (1.0, 1.0)
    assert reverse["cgh"] == 0.0 and perfect["cgh"] == pytest.approx(2.5)
    # The ROC curve of the perfect ranking climbs to (0, 1) before moving right.
    curve = result.roc.filter((pl.col("design") == "perfect") & (pl.col("group") == "all"))
    assert curve.select("fpr", "tpr").rows()[:4] == [(0, 0), (0, 1 / 3), (0, 2 / 3), (0, 1)]
    assert curve.select("fpr", "tpr").rows()[-1] == (1, 1)


def test_the_poorest_quintile_is_the_reference_without_a_line():
    result = _evaluate(
        _ten(), [DesignColumn("perfect", "perfect")], Rule(transfer=Decimal("1"), coverage=0.1)
    )
    assert result.line == 30.0  # the lowest welfare outside the poorest fifth (10, 20)
    perfect = _all(result, "perfect")
    assert perfect["fgt0_before"] == pytest.approx(0.2)
    assert perfect["exclusion_error"] == pytest.approx(0.5)  # h01 selected, h02 not
    assert perfect["inclusion_error"] == 0.0


def test_persons_count_by_household_size_and_weight():
    # h01 (2 persons, poor) and h02 (3 persons, not poor) selected; h03 (5, poor) left out.
    frame = pl.DataFrame(
        {
            "household_id": ["h01", "h02", "h03", "h04"],
            "welfare": [10.0, 50.0, 20.0, 60.0],
            "weight": [1.0, 1.0, 2.0, 1.0],
            "hh_size": [2, 3, 5, 1],
            "female_head": [True, True, False, False],
            "pmt": [1.0, 2.0, 3.0, 4.0],
        }
    )
    result = _evaluate(
        frame,
        [DesignColumn("pmt", "pmt")],
        Rule(transfer=Decimal("10"), budget=Decimal("20")),
        poverty_line=Decimal("30"),
    )
    pmt = _all(result, "pmt")
    persons_poor = 2 + 2 * 5
    assert pmt["selected_share"] == pytest.approx(2 / 5)  # households: weights 1+1 of 5
    assert pmt["inclusion_error"] == pytest.approx(3 / 5)  # persons: 3 of 2+3
    assert pmt["exclusion_error"] == pytest.approx(10 / persons_poor)
    assert pmt["leakage"] == pytest.approx(1 / 2)  # per household: one transfer of two
    # Per-capita welfare after: h01 10 + 10/2 = 15, h02 50 + 10/3: gaps in persons.
    persons = 2 + 3 + 2 * 5 + 1
    before = (2 * (30 - 10) + 10 * (30 - 20)) / 30 / persons
    after = (2 * (30 - 15) + 10 * (30 - 20)) / 30 / persons
    assert (pmt["fgt1_before"], pmt["fgt1_after"]) == pytest.approx((before, after))


def test_coverage_counts_weighted_households_and_budget_counts_transfers():
    frame = _ten(weight=[3.0] + [1.0] * 9, hh_size=[2, 3] + [1] * 8)
    perfect = DesignColumn("perfect", "perfect")
    base, _ = with_reference(frame.with_columns(persons=pl.col("weight") * pl.col("hh_size")), None)

    def chosen(rule: Rule) -> list[str]:
        return base.filter(select(base, perfect, rule))["household_id"].to_list()

    # 30% of 12 weighted households: h01 alone stands for 3.
    assert chosen(Rule(transfer=Decimal("1"), coverage=0.3)) == ["h01"]
    assert chosen(Rule(transfer=Decimal("1"), coverage=4 / 12)) == ["h01", "h02"]
    # 5 per household buys 4 transfers: h01's 3 (its weight) and h02's 1.
    assert chosen(Rule(transfer=Decimal("5"), budget=Decimal("20"))) == ["h01", "h02"]
    # 5 per person buys 4: h01 alone takes 3 x 2; a ranking stops at the first that does not fit.
    assert chosen(Rule(transfer=Decimal("5"), budget=Decimal("20"), per_person=True)) == []
    assert chosen(Rule(transfer=Decimal("5"), budget=Decimal("30"), per_person=True)) == ["h01"]


def test_ties_are_broken_by_household_id_and_count_half_in_the_auc():
    frame = _ten(tied=[1.0] * 10, pmt=[None] + [float(i) for i in range(9)])
    result = _evaluate(
        frame,
        [DesignColumn("tied", "tied"), DesignColumn("pmt", "pmt")],
        Rule(transfer=Decimal("1"), coverage=0.2),
        poverty_line=Decimal("35"),
    )
    base = result.designs
    assert base["selected"].to_list() == [2, 2]
    assert _all(result, "tied")["auc"] == pytest.approx(0.5)
    # Same key everywhere: the first two IDs are selected, both poor.
    assert _all(result, "tied")["inclusion_error"] == 0.0
    # An unscored household (h01) is never selected: h02, h03 are.
    assert _all(result, "pmt")["coverage_poor"] == pytest.approx(2 / 3)


def test_a_boolean_design_selects_what_it_says():
    frame = _ten(listed=[i in (0, 5) for i in range(10)])
    result = _evaluate(
        frame,
        [DesignColumn("list", "listed", "selection")],
        Rule(transfer=Decimal("7"), budget=Decimal("10")),
        poverty_line=Decimal("35"),
    )
    listed = _all(result, "list")
    assert listed["auc"] is None
    assert listed["inclusion_error"] == pytest.approx(0.5)  # h06 of {h01, h06}
    summary = result.designs.row(0, named=True)
    assert (summary["spent"], summary["within_budget"]) == (Decimal("14"), False)


def test_figures_by_group_are_conditional_on_the_group():
    result = _evaluate(
        _ten(),
        [DesignColumn("pmt", "pmt")],
        Rule(transfer=Decimal("20"), coverage=0.2),
        poverty_line=Decimal("35"),
    )
    by_head = result.measures.filter(pl.col("group") == "female_head")
    cells = {row["cell"]: row for row in by_head.iter_rows(named=True)}
    # Female heads: h01, h03 (poor), h05 selected; male heads: h02 (poor, selected).
    assert cells["true"]["exclusion_error"] == 1.0
    assert cells["true"]["inclusion_error"] == 1.0
    assert cells["false"]["exclusion_error"] == 0.0
    assert cells["false"]["households"] == 5


def test_small_cells_are_hidden_with_their_complement():
    assert hidden_cells({"a": 3, "b": 10, "c": 17}, 5) == {"a", "b"}
    assert hidden_cells({"a": 2, "b": 2, "c": 20, "d": 30}, 5) == {"a", "b", "c"}
    assert hidden_cells({"a": 10, "b": 12}, 5) == set()
    assert hidden_cells({"all": 4}, 5) == {"all"}
    frame = pl.DataFrame(
        {
            "household_id": [f"h{i:02d}" for i in range(30)],
            "welfare": [float(i + 1) for i in range(30)],
            "weight": [1.0] * 30,
            "hh_size": [1] * 30,
            "female_head": [i < 3 for i in range(30)],
            "governorate_code": ["C"] * 16 + ["A"] * 3 + ["B"] * 10 + [None],
            "pmt": [float(i) for i in range(30)],
        }
    )
    result = evaluate(
        frame,
        [DesignColumn("pmt", "pmt")],
        Rule(transfer=Decimal("1"), coverage=0.2),
        min_cell=5,
        groups=("female_head", "governorate_code"),
    )
    shown = {(row["group"], row["cell"]): row for row in result.measures.iter_rows(named=True)}
    # Three female heads are a small cell; the 27 others would give them back from the total.
    for cell in ("true", "false"):
        row = shown[("female_head", cell)]
        assert row["suppressed"] and row["households"] is None and row["exclusion_error"] is None
    # A (3) and the unknown governorate (1) are small, together under 5: B is hidden too.
    hidden = {
        cell
        for (group, cell), row in shown.items()
        if group == "governorate_code" and row["suppressed"]
    }
    assert hidden == {"A", "B", "(missing)"}
    assert not shown[("governorate_code", "C")]["suppressed"]
    assert not shown[("all", "all")]["suppressed"]
    assert set(result.roc["cell"].unique()) == {"all", "C"}


def test_wrong_inputs_are_refused_with_a_clear_message():
    with pytest.raises(InvalidInput, match="lacks the column"):
        _evaluate(_ten(), [DesignColumn("x", "nope")], Rule(transfer=Decimal("1"), coverage=0.2))
    with pytest.raises(InvalidInput, match="Decimal"):
        Rule(transfer=1.5, coverage=0.2)
    with pytest.raises(InvalidInput, match="either a coverage or a budget"):
        Rule(transfer=Decimal("1"), coverage=0.2, budget=Decimal("10"))
    with pytest.raises(InvalidInput, match="household_id is repeated"):
        _evaluate(
            _ten(household_id=["h01"] * 10),
            [DesignColumn("pmt", "pmt")],
            Rule(transfer=Decimal("1"), coverage=0.2),
        )
    with pytest.raises(InvalidInput, match="not Boolean"):
        _evaluate(_ten(), [DesignColumn("x", "pmt", "selection")], Rule(Decimal("1"), coverage=0.2))


def _report_input():
    frame = _ten(listed=[i in (0, 5) for i in range(10)])
    return _evaluate(
        frame,
        [DesignColumn("pmt", "pmt"), DesignColumn("=HYPERLINK(1)", "listed", "selection")],
        Rule(transfer=Decimal("20"), coverage=0.2),
        poverty_line=Decimal("35"),
        groups=("female_head", "hh_size_band"),
    )


def test_the_report_is_self_contained_and_its_tables_are_safe(tmp_path):
    evaluation = _report_input()
    measures, designs = evaluation.measures, evaluation.designs
    report = write_report(evaluation, tmp_path / "report")
    folder = tmp_path / "report"
    expected = {
        "report.html",
        "roc.png",
        "poverty_reduction.png",
        "exclusion_by_group_1.png",
        "exclusion_by_group_2.png",
        "measures.csv",
        "roc.csv",
        "designs.csv",
        "parameters.csv",
        "tables.xlsx",
        "measures.parquet",
        "roc.parquet",
        "designs.parquet",
        "parameters.parquet",
    }
    assert set(report.files) == expected == {entry.name for entry in folder.iterdir()}
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page
    assert page.count('src="data:image/png;base64,') == 4  # ROC, poverty, one per design
    assert 'lang="en"' in page and 'dir="ltr"' in page
    assert "20.0%" in page  # numbers formatted
    assert "Definitions" in page and "weight x household size" in page
    assert "&lt;" not in page.split("<body>")[0]
    for chart in ("roc.png", "poverty_reduction.png", "exclusion_by_group_1.png"):
        assert (folder / chart).read_bytes().startswith(b"\x89PNG")
    designs_csv = pl.read_csv(folder / "designs.csv")
    assert "'=HYPERLINK(1)" in designs_csv["design"].to_list()
    # The Parquet copies, for the pages, hold the tables as evaluated: typed and untouched.
    kept = read_tables(folder)
    assert kept["designs"]["design"].to_list() == designs["design"].to_list()
    assert kept["measures"].equals(measures)
    book = load_workbook(folder / "tables.xlsx")
    assert book.sheetnames == ["measures", "roc", "designs", "parameters"]
    cell = book["designs"]["A3"]
    assert (cell.value, cell.data_type) == ("'=HYPERLINK(1)", "s")


def test_the_report_folder_is_never_half_written(tmp_path):
    evaluation = _report_input()
    # An unencodable title fails once the charts and tables are written, before the page.
    with pytest.raises(UnicodeEncodeError):
        write_report(evaluation, tmp_path / "report", title="\ud800")
    assert list(tmp_path.iterdir()) == []
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    with pytest.raises(Conflict):
        write_report(evaluation, kept)
    with pytest.raises(Conflict):
        write_report(evaluation, kept, force=True)
    assert [entry.name for entry in kept.iterdir()] == ["notes.txt"]
    write_report(evaluation, tmp_path / "again")
    replaced = write_report(evaluation, tmp_path / "again", force=True)
    assert "report.html" in replaced.files
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["again", "kept"]
