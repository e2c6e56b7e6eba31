"""Targeting measured: the feature view, PMT scoring and MPI over a national registry, against a
plain per-household Python loop; and how wrong each PMT is on the synthetic country.

    .venv/bin/python bench/bench_targeting.py scale [--households 1000000] [--runs 2]
        [--loop-sample 100000] [--drop-synth] [--drop-database] [--database NAME]
    .venv/bin/python bench/bench_targeting.py accuracy [--households 100000] [--seed 1]

Both import a `sijill synth` country into a PostgreSQL registry of their own (`sijill db
upgrade`, `sijill areas load`, `sijill import`), fit PMTs on its 1% survey as one service
account (`sijill pmt fit`) and approve them as another (`sijill pmt approve`), as a ministry
would.

scale: wall time and peak memory of `sijill features snapshot`, `sijill pmt score --snapshot`
and `sijill mpi --snapshot`, each its own process (read by COPY, features in DuckDB, scores
written by COPY); their sum is the figure. In the same run, a plain Python loop scores a sample
of households one at a time (the household and its members read through the ORM, features,
PMT and the global MPI's deprivations computed in Python): its time per household, times the
registry's households, over Sijill's, is the ratio.

accuracy: the out-of-sample R² of each PMT method (k-fold, from the fitted artifact), then
`sijill targeting evaluate` against the synthetic country's true consumption at 20% coverage:
inclusion and exclusion errors of each design, and exclusion errors among households with a
refugee and with a member with disability beside the overall figure.
"""

import argparse
import json
import math
import os
import subprocess
import time
from pathlib import Path

import polars as pl
import psycopg
from common import BENCH_KEY_FILE, PG_ADMIN_URL, SIJILL, bench_user, median, record, run_measured

WORK = Path("/tmp/sijill-bench")
DATABASE = "sijill_targeting"  # the 1M registry the programs, payments and web benches reuse
POVERTY_LINE = "1800"  # the synthetic country's poverty line (its manifest's poverty_lines)


def _pg(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _country(households: int, seed: int) -> Path:
    shared = WORK / f"synth-{households}"  # the import benchmark's, when it is there
    if seed == 1 and (shared / "manifest.json").exists():
        return shared
    folder = WORK / f"synth-targeting-{households}-{seed}"
    if not (folder / "manifest.json").exists():
        subprocess.run(
            [str(SIJILL), "synth", "--households", str(households), "--seed", str(seed),
             "--out", str(folder)],
            check=True,
        )  # fmt: skip
    return folder


def _imported(url: str, households: int) -> bool:
    """The registry a previous run left holds this country already (as many households)."""
    try:
        with psycopg.connect(_pg(url)) as connection:
            count = connection.execute("SELECT count(*) FROM household").fetchone()[0]
    except psycopg.Error:
        return False
    return count == households


def _registry(
    folder: Path, reuse: bool = False, database: str = DATABASE
) -> tuple[str, dict, dict]:
    """A PostgreSQL registry with `folder` imported (fresh, unless `reuse` and a previous run
    left it); its URL, the env of a fitter and the env of an approving officer (national
    program officers, service accounts made afresh)."""
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    households = json.loads((folder / "manifest.json").read_text())["sizes"]["households"]
    if reuse and _imported(url, households):
        return url, *_officers(url)
    with psycopg.connect(_pg(PG_ADMIN_URL), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {database}")
        connection.execute(f"CREATE DATABASE {database}")
    env = {
        **os.environ,
        "SIJILL_DATABASE_URL": url,
        "SIJILL_KEY_FILE": str(BENCH_KEY_FILE),
        "SIJILL_WORK_DIR": str(WORK / "work"),
    }
    subprocess.run([str(SIJILL), "db", "upgrade"], env=env, check=True, capture_output=True)
    admin = bench_user(url, BENCH_KEY_FILE, "targeting-admin", "administrator", service=True)
    as_admin = {**env, "SIJILL_SERVICE_KEY": admin}
    subprocess.run(
        [str(SIJILL), "areas", "load", str(folder / "areas.csv")],
        env=as_admin, check=True, capture_output=True,
    )  # fmt: skip
    started = time.perf_counter()
    subprocess.run([str(SIJILL), "import", str(folder)], env=as_admin, check=True,
                   capture_output=True)  # fmt: skip
    print(f"imported in {time.perf_counter() - started:.0f} s", flush=True)
    return url, *_officers(url)


def _officers(url: str) -> tuple[dict, dict]:
    env = {
        **os.environ,
        "SIJILL_DATABASE_URL": url,
        "SIJILL_KEY_FILE": str(BENCH_KEY_FILE),
        "SIJILL_WORK_DIR": str(WORK / "work"),
    }
    stamp = str(int(time.time()))
    fitter = bench_user(url, BENCH_KEY_FILE, f"fit-{stamp}", "program_officer", service=True)
    officer = bench_user(url, BENCH_KEY_FILE, f"ok-{stamp}", "program_officer", service=True)
    return {**env, "SIJILL_SERVICE_KEY": fitter}, {**env, "SIJILL_SERVICE_KEY": officer}


def _json(env: dict, *command: str) -> dict:
    run = run_measured([str(SIJILL), *command, "-o", "json"], env=env)
    return json.loads(run.output.strip().splitlines()[-1])


def _fit(folder: Path, fitter: dict, officer: dict, method: str, as_of: str) -> dict:
    fitted = _json(
        fitter, "pmt", "fit", "--survey", str(folder / "survey.parquet"),
        "--poverty-line", POVERTY_LINE, "--method", method, "--as-of", as_of,
    )  # fmt: skip
    approved = subprocess.run(
        [str(SIJILL), "pmt", "approve", fitted["version"]], env=officer, capture_output=True,
        text=True,
    )  # fmt: skip
    # The same survey fits the same model (same version): a reused registry has it approved.
    if approved.returncode != 0 and "already approved" not in approved.stderr:
        raise RuntimeError(f"pmt approve failed: {approved.stderr}")
    return fitted


# --- the per-household loop -------------------------------------------------------------------

LOOP = r"""
import json, math, sys, time
from datetime import date
from sqlalchemy import select
from sqlalchemy.orm import Session
from sijill.core.areas import Area
from sijill.core.db import make_engine
from sijill.registry.models import Household, Membership, Person
from sijill.security.keys.keyring import install_keyring
from sijill.core.settings import get_settings

install_keyring(get_settings())
url, artifact_file, sample = sys.argv[1], sys.argv[2], int(sys.argv[3])
artifact = json.load(open(artifact_file))
today = date.today()
YEARS = {"none": 0, "primary": 6, "lower_secondary": 9, "upper_secondary": 12,
         "post_secondary": 14, "tertiary": 16}
engine = make_engine(url)
with Session(engine) as session:
    parents = dict(session.execute(select(Area.id, Area.parent_id)).all())
    codes = dict(session.execute(select(Area.id, Area.code)).all())
    urban = dict(session.execute(select(Area.id, Area.urban)).all())
    ids = session.scalars(select(Household.id).order_by(Household.id).limit(sample)).all()
started = time.perf_counter()
with Session(engine) as session:
    for household_id in ids:
        h = session.get(Household, household_id)
        if "eligibility_assessment" not in (h.consent_purposes or []):
            continue
        rows = session.execute(
            select(Person, Membership.relationship)
            .join(Membership, Membership.person_id == Person.id)
            .where(Membership.household_id == household_id, Membership.end_date.is_(None),
                   Person.merged_into_id.is_(None))
        ).all()
        f = {"hh_size": 0, "n_children_0_4": 0, "n_children_5_17": 0, "n_children_0_17": 0,
             "n_adults_18_64": 0, "n_elderly_65": 0, "n_female": 0, "n_disability": 0,
             "n_severe_disability": 0, "n_refugees": 0, "n_stateless": 0, "n_employed": 0,
             "n_formal_employed": 0, "n_children_out_of_school": 0}
        dependents = working = 0
        best = None
        for person, relationship in rows:
            if person.death_date is not None and person.death_date <= today:
                continue
            b = person.birth_date
            age = today.year - b.year - ((b.month, b.day) > (today.month, today.day))
            f["hh_size"] += 1
            f["n_children_0_4"] += age <= 4
            f["n_children_5_17"] += 5 <= age <= 17
            f["n_children_0_17"] += age <= 17
            f["n_adults_18_64"] += 18 <= age <= 64
            f["n_elderly_65"] += age >= 65
            f["n_female"] += person.sex == "F"
            dependents += age <= 14 or age >= 65
            working += 15 <= age <= 64
            wg = max(v or 1 for v in (person.wg_seeing, person.wg_hearing, person.wg_walking,
                     person.wg_cognition, person.wg_selfcare, person.wg_communication))
            f["n_disability"] += wg >= 3
            f["n_severe_disability"] += wg >= 4
            f["n_refugees"] += person.residency_status in ("refugee", "asylum_seeker")
            f["n_stateless"] += person.residency_status == "stateless"
            f["n_employed"] += person.employment_status == "employed"
            f["n_formal_employed"] += (person.employment_status == "employed"
                                       and person.employment_sector == "formal")
            f["n_children_out_of_school"] += 6 <= age <= 14 and not person.enrolled
            years = YEARS.get(person.education_level)
            if age >= 10 and years is not None:
                best = years if best is None else max(best, years)
            if relationship == "head":
                f["female_head"] = person.sex == "F"
                f["head_age"] = age
                f["head_schooling_years"] = years
                f["head_education"] = person.education_level
                f["head_employed"] = person.employment_status == "employed"
                f["head_formal"] = person.employment_sector == "formal"
        f["dependency_ratio"] = dependents / max(working, 1)
        f["max_schooling_years_10plus"] = best
        for name in ("dwelling_tenure", "dwelling_walls", "dwelling_roof", "dwelling_floor",
                     "water_source", "sanitation", "cooking_fuel", "electricity"):
            f[name] = getattr(h, name)
        f["dwelling_rooms"] = h.dwelling_rooms
        f["persons_per_room"] = f["hh_size"] / max(h.dwelling_rooms or 1, 1)
        assets = set(h.assets or [])
        for asset in ("tv", "fridge", "washing_machine", "air_conditioner", "computer",
                      "mobile_phone", "car", "motorcycle", "satellite_dish", "water_heater"):
            f["has_" + asset] = asset in assets
        f["n_assets"] = len(assets)
        stock = h.livestock or {}
        f["livestock_tlu"] = (0.7 * stock.get("cattle", 0) + stock.get("camels", 0)
                              + 0.1 * (stock.get("sheep", 0) + stock.get("goats", 0))
                              + 0.01 * stock.get("poultry", 0))
        income = set(h.income_sources or [])
        f["has_formal_wages"] = "wages_formal" in income
        f["has_pension"] = "pension" in income
        f["has_remittances"] = "remittances" in income
        f["has_social_assistance"] = "social_assistance" in income
        district = parents.get(h.area_id)
        f["area_code"] = codes[h.area_id]
        f["district_code"] = codes.get(district)
        f["governorate_code"] = codes.get(parents.get(district))
        f["urban"] = urban.get(h.area_id)
        f["has_disability"] = f["n_disability"] > 0
        f["has_refugee"] = f["n_refugees"] > 0
        # The PMT: intercept plus each term (a dummy for a code, the value otherwise).
        score = artifact["intercept"]
        for term in artifact["terms"]:
            value = f.get(term["feature"])
            if term["level"] is not None:
                value = 1.0 if value == term["level"] else 0.0
            elif term["kind"] == "log":
                value = math.log(max(value or 0, 1))
            elif value is None:
                value = term.get("fill") or 0.0
            score += term["coefficient"] * float(value)
        # The global MPI's deprivations, weights renormalised without health.
        deprived = [
            (f["max_schooling_years_10plus"] or 99) < 6, f["n_children_out_of_school"] > 0,
            f["cooking_fuel"] in ("wood", "charcoal", "dung"),
            f["sanitation"] in ("shared", "none"), f["water_source"] in ("tanker", "surface"),
            f["electricity"] == "none",
            f["dwelling_floor"] == "earth" or f["dwelling_roof"] in ("thatch", "tent")
            or f["dwelling_walls"] in ("mud", "tin", "tent"),
            sum(f[a] for a in ("has_tv", "has_mobile_phone", "has_computer", "has_motorcycle",
                               "has_fridge")) <= 1 and not f["has_car"],
        ]
        weights = [1 / 4, 1 / 4] + [1 / 12] * 6
        mpi = sum(w for w, d in zip(weights, deprived) if d)
        poor = mpi >= 1 / 3
print(json.dumps({"households": len(ids), "seconds": time.perf_counter() - started}))
"""


def scale(args) -> None:
    folder = _country(args.households, 1)
    url, fitter, officer = _registry(folder, reuse=args.reuse, database=args.database)
    as_of = json.loads((folder / "manifest.json").read_text())["reference_date"]
    # A registry reused after --drop-synth keeps the model fitted when it was built: the
    # survey's households went with the synth files.
    fitted_file = WORK / f"fitted-{args.database}.json"
    if args.reuse and fitted_file.exists() and not (folder / "households.parquet").exists():
        fitted = json.loads(fitted_file.read_text())
    else:
        fitted = _fit(folder, fitter, officer, "wls", as_of)
        fitted_file.write_text(json.dumps({"version": fitted["version"]}))
    if args.drop_synth:
        # Disk: the registry holds them now. The manifest stays, so --reuse finds the country.
        for path in folder.iterdir():
            if path.name != "manifest.json":
                path.unlink()
    artifact_file = WORK / "targeting-model.json"
    subprocess.run(
        [str(SIJILL), "pmt", "show", fitted["version"], "-o", "json"],
        env=officer, check=True, stdout=artifact_file.open("w"),
    )  # fmt: skip
    totals, peaks, loops, ratios, steps = [], [], [], [], {}
    households = None
    for i in range(args.runs):
        snapshot = run_measured([str(SIJILL), "features", "snapshot", "-o", "json"], env=officer)
        snap = json.loads(snapshot.output.strip().splitlines()[-1])
        score = run_measured(
            [str(SIJILL), "pmt", "score", "--model", fitted["version"], "--snapshot",
             str(snap["snapshot_id"]), "-o", "json"], env=officer,
        )  # fmt: skip
        mpi = run_measured(
            [str(SIJILL), "mpi", "--snapshot", str(snap["snapshot_id"]), "-o", "json"],
            env=officer,
        )
        households = snap["households"] + snap["households_without_consent"]
        total = snapshot.seconds + score.seconds + mpi.seconds
        for name, run in (("snapshot", snapshot), ("pmt", score), ("mpi", mpi)):
            steps.setdefault(name, []).append((run.seconds, run.peak_rss_mb))
        loop = run_measured(
            [str(SIJILL.parent / "python"), "-c", LOOP, url, str(artifact_file),
             str(args.loop_sample)], env=officer,
        )  # fmt: skip
        looped = json.loads(loop.output.strip().splitlines()[-1])
        per_household = looped["seconds"] / looped["households"]
        extrapolated = per_household * households
        totals.append(total)
        peaks.append(max(snapshot.peak_rss_mb, score.peak_rss_mb, mpi.peak_rss_mb))
        loops.append(per_household)
        ratios.append(extrapolated / total)
        print(f"run {i + 1}: bulk {total:.1f} s (peak {peaks[-1]:,.0f} MB); loop "
              f"{per_household * 1e3:.2f} ms/household, ×{ratios[-1]:.0f}", flush=True)  # fmt: skip
    lines = [
        f"Registry on PostgreSQL: `sijill synth --households {args.households:,}` imported "
        f"({households:,} households; those without consent to eligibility_assessment are "
        f"counted, not scored). Each step its own process, {args.runs} runs.",
        "",
        "| step | wall time (median) | peak memory (max) |",
        "|---|---|---|",
        *(
            f"| `{name}` | {median([s for s, _ in runs]):.1f} s | "
            f"{max(m for _, m in runs):,.0f} MB |"
            for name, runs in steps.items()
        ),
        f"| **features + PMT + MPI** | **{median(totals):.1f} s** | **{max(peaks):,.0f} MB** |",
        "",
        f"- Plain per-household Python loop (ORM reads, features, PMT and MPI in Python) on "
        f"{args.loop_sample:,} households: {median(loops) * 1e3:.2f} ms per household, "
        f"{median(loops) * households / 60:.0f} min for the registry.",
        f"- Ratio loop ÷ bulk (median of the runs): **{median(ratios):.0f}×**",
    ]
    print("\n".join(lines))
    record(
        f"Targeting: features, PMT and MPI for {args.households:,} households",
        f"python bench/bench_targeting.py scale --households {args.households} --runs "
        f"{args.runs} --loop-sample {args.loop_sample}"
        + (" --reuse" if args.reuse else "")
        + (f" --database {args.database}" if args.database != DATABASE else ""),
        lines,
    )
    if args.drop_database:
        with psycopg.connect(_pg(PG_ADMIN_URL), autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {args.database}")


def accuracy(args) -> None:
    folder = _country(args.households, args.seed)
    url, fitter, officer = _registry(folder, reuse=args.reuse)
    as_of = json.loads((folder / "manifest.json").read_text())["reference_date"]
    models = {
        method: _fit(folder, fitter, officer, method, as_of) for method in ("wls", "quantile")
    }
    report = WORK / "targeting-report"
    evaluated = _json(
        officer, "targeting", "evaluate", "--reference", str(folder / "truth_households.parquet"),
        *(part for m in models.values() for part in ("--pmt", m["version"])),
        "--coverage", "0.2", "--poverty-line", POVERTY_LINE, "--out", str(report), "--force",
    )  # fmt: skip
    measures = pl.read_csv(report / "measures.csv", infer_schema_length=None)
    wls = models["wls"]["validation"]["out_of_sample"]
    lines = [
        f"Synthetic country: `sijill synth --households {args.households:,} --seed {args.seed}`; "
        f"PMTs fitted on its 1% survey ({models['wls']['households']:,} households, weighted, "
        f"5-fold), evaluated against every household's true consumption "
        f"({evaluated['households']:,} households), poverty line {POVERTY_LINE}, 20% coverage.",
        "",
        "Out-of-sample R² (log consumption per person):",
        "",
        "| method | R² | RMSE |",
        "|---|---|---|",
        *(f"| {name} | {fig['r2']:.3f} | {fig['rmse']:.3f} |" for name, fig in wls.items()),
        "",
        "Errors at 20% coverage (shares; exclusion = poor not selected, inclusion = selected "
        "not poor):",
        "",
        "| design | group | inclusion error | exclusion error |",
        "|---|---|---|---|",
    ]
    for row in measures.filter(
        (pl.col("group") == "all")
        | ((pl.col("group").is_in(["has_refugee", "has_disability"])) & (pl.col("cell") == "true"))
    ).iter_rows(named=True):
        cell = "all households" if row["group"] == "all" else row["group"]
        lines.append(
            f"| {row['design']} | {cell} | {_share(row.get('inclusion_error'))} | "
            f"{_share(row.get('exclusion_error'))} |"
        )
    lines += [
        "",
        'For comparison: Kidd & Wylde (2011, "Targeting the Poorest", AusAID) report in-built '
        "exclusion and inclusion errors of a PMT of roughly 44-55% at 20% coverage (Bangladesh, "
        "Indonesia, Rwanda, Sri Lanka: the study's summary; its country tables were not checked "
        "here); Brown, Ravallion & van de Walle (2018, J. Dev. Econ. 134, table 4, nine African "
        'countries) find the basic PMT "excludes many poor people" (their household-weighted '
        "figures were not available offline). The synthetic country's dwelling and asset "
        "indicators are drawn from its consumption through noisy thresholds "
        "(`synth/dwelling.py`): how well a PMT does here follows from that noise, not from a "
        "real population.",
    ]
    print("\n".join(lines))
    record(
        f"Targeting: PMT accuracy on the synthetic country ({args.households:,} households)",
        f"python bench/bench_targeting.py accuracy --households {args.households} --seed "
        f"{args.seed}",
        lines,
    )


def _share(value) -> str:
    return (
        "hidden"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{float(value):.3f}")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("scale")
    s.add_argument("--households", type=int, default=1_000_000)
    s.add_argument("--runs", type=int, default=2)
    s.add_argument("--loop-sample", type=int, default=100_000)
    s.add_argument("--drop-synth", action="store_true", help="delete the synth files once imported")
    s.add_argument("--drop-database", action="store_true", help="drop the registry at the end")
    s.add_argument("--reuse", action="store_true", help="keep the registry a previous run left")
    s.add_argument(
        "--database", default=DATABASE, help="the registry's PostgreSQL database (a 10M run "
        "beside the 1M registry the other benches reuse: another name)"
    )  # fmt: skip
    s.set_defaults(run=scale)
    a = commands.add_parser("accuracy")
    a.add_argument("--households", type=int, default=100_000)
    a.add_argument("--seed", type=int, default=1)
    a.add_argument("--reuse", action="store_true", help="keep the registry a previous run left")
    a.set_defaults(run=accuracy)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
