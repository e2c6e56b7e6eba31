"""`generate`: write a synthetic country's registry files, with ground truth, to a directory.

The files are the exchange format of docs/data-format.md, so `sijill import` reads them without
a mapping. Everything is written to a staging directory beside `out` and moved into place at the
end: an interrupted run leaves no half-written output behind.
"""

import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import sijill
from sijill.core.errors import InvalidInput
from sijill.synth import chunk, geography, instruments, survey, tables
from sijill.synth.registration import Keys
from sijill.synth.welfare import EXTREME_POVERTY_LINE, POVERTY_LINE

Progress = Callable[[str, float], None]

# Households generated at a time: bounds the chunks' memory (about 330 MB at any size; the run
# keeps 13 bytes more per household, `_Summary`). Each chunk has its own random stream, so
# changing this number changes the output for a given seed.
CHUNK_HOUSEHOLDS = 25_000
# The tightest keyed space is the phones' (registration.PHONE_CAPACITY, 120 million, one per
# person): 20 million households are about 90 million persons. Household counters stay below
# chunk.DUPLICATE_HOUSEHOLD_BASE, person counters below the 900 million document numbers.
MAX_HOUSEHOLDS = 20_000_000
GENERATOR = "sijill synth"
ALL, POOR, EXTREME_POOR = range(3)  # rows of `_Summary.persons`
BOTH_FORMATS = ("households", "persons")
PARQUET_ONLY = ("truth_households", "truth_persons")
OUTPUT_FILES = (
    ["areas.csv", "areas.parquet", "areas.geojson"]
    + [f"{t}.{ext}" for t in BOTH_FORMATS for ext in ("parquet", "csv")]
    + [f"{t}.parquet" for t in PARQUET_ONLY]
    + ["instruments.csv", "survey.parquet", "manifest.json"]
)
CSV_ONLY = ("instruments",)


def reference_date(seed: int) -> date:
    """The synthetic 'today' of a seed: fixed, so the same seed gives the same files."""
    return date(2024, 1, 1) + timedelta(days=seed % 366)


def check_arguments(households: int, seed: int, out: Path) -> None:
    """Refuse, in one sentence, what `generate` cannot do; before anything is written."""
    if households < 1:
        raise InvalidInput(f"--households must be at least 1 (got {households})")
    if households > MAX_HOUSEHOLDS:
        raise InvalidInput(f"--households must be at most {MAX_HOUSEHOLDS:,} (got {households:,})")
    if seed < 0:
        raise InvalidInput(f"--seed must be zero or positive (got {seed})")
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"--out {out} is a file, not a directory")
    if out.is_dir() and not _is_replaceable(out):
        raise InvalidInput(
            f"--out {out} is not empty and does not hold an earlier `sijill synth` output; "
            "choose an empty or new directory"
        )


def _is_replaceable(out: Path) -> bool:
    """An empty directory, or one holding only an earlier run's files (with its manifest)."""
    present = {entry.name for entry in out.iterdir()}
    if not present:
        return True
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return manifest.get("generator") == GENERATOR and present <= set(OUTPUT_FILES)


class _Writers:
    """One Parquet (and, for the exchange files, one CSV) writer per table, appended chunk by
    chunk so that no table is ever whole in memory."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.parquet: dict[str, pq.ParquetWriter] = {}
        self.csv: dict[str, pacsv.CSVWriter] = {}
        for name in BOTH_FORMATS + PARQUET_ONLY:
            schema = tables.SCHEMAS[name]
            self.parquet[name] = pq.ParquetWriter(
                folder / f"{name}.parquet", schema, compression="zstd"
            )
            if name in BOTH_FORMATS:
                self.csv[name] = pacsv.CSVWriter(folder / f"{name}.csv", schema)
        self.csv["instruments"] = pacsv.CSVWriter(folder / "instruments.csv", instruments.SCHEMA)

    def write_all(self, tables_by_name: dict[str, pa.Table]) -> None:
        for name, table in tables_by_name.items():
            if name in self.parquet:
                self.parquet[name].write_table(table)
            if name in self.csv:
                self.csv[name].write_table(table)

    def close(self) -> None:
        for writer in [*self.parquet.values(), *self.csv.values()]:
            writer.close()


def generate(households: int, seed: int, out: Path, progress: Progress | None = None) -> dict:
    """Generate `households` households from `seed` into `out`; return the manifest.

    Same seed and size, same bytes. Raises `InvalidInput` for a bad argument before writing.
    """
    out = Path(out)
    check_arguments(households, seed, out)
    report = progress or (lambda stage, fraction: None)
    staging = out.parent / f".{out.name}.synth-partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        manifest = _generate_into(staging, households, seed, report)
        _move_into_place(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    report("done", 1.0)
    return manifest


def _move_into_place(staging: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():  # an earlier run's files (checked replaceable above)
        stale.unlink()
    for name in OUTPUT_FILES:
        os.replace(staging / name, out / name)


def _generate_into(folder: Path, households: int, seed: int, report: Progress) -> dict:
    geo = geography.build(np.random.default_rng([seed, 0]))
    _write_areas(folder, geo)
    report("areas", 0.0)
    ref = reference_date(seed)
    ctx = chunk.Context(
        seed,
        geo,
        Keys.from_seed(seed),
        (ref - date(1970, 1, 1)).days,
        (POVERTY_LINE, EXTREME_POVERTY_LINE),
    )
    rows, start, summary = _write_chunks(folder, households, ctx, report)
    rows["survey"] = _write_survey(folder, ctx, summary)
    report("survey", 1.0)
    manifest = _manifest(seed, households, ref, geo, rows, start, summary.persons, folder)
    (folder / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def _write_areas(folder: Path, geo: geography.Geography) -> None:
    areas = geography.areas_table(geo)
    pq.write_table(areas, folder / "areas.parquet", compression="zstd")
    pacsv.write_csv(areas, folder / "areas.csv")
    geography.write_geojson(geo, folder / "areas.geojson")


class _Summary:
    """What the survey and the manifest need of the original households, kept for the whole run.

    The arrays are sized for the run up front and filled in place, as narrow as their values
    allow (13 bytes a household), rather than gathered chunk by chunk and joined at the end,
    which held them twice. Persons are counted as the chunks pass, so no per-household size
    or poverty flag is kept at all.
    """

    def __init__(self, households: int, regions: int):
        self.stratum = np.empty(households, dtype=np.int8)
        self.consumption = np.empty(households, dtype=np.float64)  # the survey's starting point
        self.counter = np.empty(households, dtype=np.int32)  # < DUPLICATE_HOUSEHOLD_BASE
        # Persons by region (columns): all, poor, extreme poor (rows), for the poverty rates.
        self.persons = np.zeros((3, regions), dtype=np.int64)

    def add(self, first: int, part: chunk.Chunk) -> None:
        rows = slice(first, first + len(part.stratum))
        self.stratum[rows] = part.stratum
        self.consumption[rows] = part.consumption
        self.counter[rows] = part.household_counter
        region, size = part.stratum // 2, part.size.astype(np.int64)
        regions = self.persons.shape[1]
        below = {
            ALL: np.ones(len(size), dtype=bool),
            POOR: part.consumption < POVERTY_LINE,
            EXTREME_POOR: part.consumption < EXTREME_POVERTY_LINE,
        }
        for row, where in below.items():
            counts = np.bincount(region[where], weights=size[where], minlength=regions)
            self.persons[row] += counts.astype(np.int64)  # whole numbers: exact in a float64


def _write_chunks(folder: Path, households: int, ctx: chunk.Context, report: Progress):
    """Generate and write the chunks; return row counts, final counters, the `_Summary`.

    Chunk i+1 is generated while chunk i is written by a background thread (pyarrow's writers
    release the GIL, so the second core works); at most two chunks are in memory. Writes stay
    in chunk order, so the files do not depend on timing.
    """
    start = chunk.Start()
    rows = dict.fromkeys(BOTH_FORMATS + PARQUET_ONLY + CSV_ONLY, 0)
    summary = _Summary(households, len(ctx.geo.governorate_code))
    writers = _Writers(folder)
    writing: Future | None = None
    with ThreadPoolExecutor(max_workers=1) as background:
        try:
            for index, first in enumerate(range(0, households, CHUNK_HOUSEHOLDS)):
                n = min(CHUNK_HOUSEHOLDS, households - first)
                part = chunk.build(index, n, start, ctx)
                # A stream of its own: adding the file left the others of a seed unchanged.
                part.tables["instruments"] = instruments.table(
                    np.random.default_rng([ctx.seed, 5, index]),
                    part.tables["households"]["household_key"].combine_chunks(),
                    part.tables["persons"],
                )
                if writing is not None:
                    writing.result()
                writing = background.submit(writers.write_all, part.tables)
                for name, table in part.tables.items():
                    rows[name] += table.num_rows
                summary.add(first, part)
                start = chunk.Start(
                    start.households + n,
                    start.persons + part.n_persons,
                    start.duplicate_households + part.n_duplicate_households,
                )
                report("households", (first + n) / households)
            if writing is not None:
                writing.result()
        finally:
            if writing is not None:
                wait([writing])  # never close a file a write is still using
            writers.close()
    return rows, start, summary


def _write_survey(folder: Path, ctx: chunk.Context, summary: _Summary) -> int:
    rng = np.random.default_rng([ctx.seed, 2])
    chosen, weight, measured = survey.sample(rng, summary.stratum, summary.consumption)
    hh_keys = tables.household_keys(summary.counter[chosen], ctx.keys.household)
    sample = survey.table(hh_keys, summary.stratum[chosen], weight, measured, ctx.geo)
    pq.write_table(sample, folder / "survey.parquet", compression="zstd")
    return sample.num_rows


def _manifest(seed, households, ref, geo, rows, start, persons: np.ndarray, folder: Path) -> dict:
    def rate(row: int, region: int | slice = slice(None)) -> float:
        # Whole-number counts: the same float as a weighted mean over every household.
        return round(float(persons[row, region].sum() / persons[ALL, region].sum()), 4)

    return {
        "generator": GENERATOR,
        "generator_version": sijill.__version__,
        "format": "docs/data-format.md",
        "seed": seed,
        "reference_date": ref.isoformat(),
        "country": geography.COUNTRY[0],
        "households": households,  # as requested; `sizes` has what was written
        "sizes": {
            "areas": len(geo.areas),
            "households": rows["households"],
            "persons": rows["persons"],
            "original_households": start.households,
            "duplicate_households": start.duplicate_households,
            "original_persons": start.persons,
            "duplicate_persons": rows["persons"] - start.persons,
            "survey_households": rows["survey"],
        },
        "poverty_lines": {
            "unit": "local currency units per person per year",
            "poverty": POVERTY_LINE,
            "extreme_poverty": EXTREME_POVERTY_LINE,
        },
        "poverty_rates": {
            "persons_poor": rate(POOR),
            "persons_extreme_poor": rate(EXTREME_POOR),
            "by_region": {
                code: rate(POOR, g)
                for g, code in enumerate(geo.governorate_code)
                if persons[ALL, g]
            },
        },
        "files": [
            {
                "name": name,
                "rows": rows.get(name.split(".")[0], len(geo.areas)),
                "bytes": (folder / name).stat().st_size,
            }
            for name in OUTPUT_FILES
            if name != "manifest.json"
        ],
    }
