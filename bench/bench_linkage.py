"""`sijill dedup` measured: accuracy on the synthetic country's injected duplicates, and time and
memory at national scale against plain Splink running the same model on the same frame.

    .venv/bin/python bench/bench_linkage.py accuracy [--households 100000] [--seed 1]
    .venv/bin/python bench/bench_linkage.py scale [--households 1000000] [--runs 2]
    .venv/bin/python bench/bench_linkage.py review [--reads 2000] [--merges 300]

Both import a `sijill synth` country into a PostgreSQL registry of their own (`sijill db
upgrade`, `sijill areas load`, `sijill import`, as an agency would), then run `sijill dedup` as a
service account, exactly as an operator would.

accuracy: pairwise precision, recall and F1 of the pairs `sijill dedup` proposes (at the
threshold it uses by default) against the ground truth (`truth_persons.parquet`: every pair of
records of one `entity_id` is a true pair), overall and by kind of duplicate. A pair's kind is
the kind of the duplicate record in it; per kind, recall counts that kind's true pairs found,
and precision counts, among the proposed pairs touching a record of an entity with a duplicate
of that kind, the true ones (a false pair touching no such record counts for no kind: the
overall precision includes it).

scale: wall time and peak memory of the `sijill dedup` process (read the registry by COPY,
compute keys, train, score, write the proposals), and of a plain Splink process that reads the
same matching frame from Parquet (written beforehand, untimed) and trains and predicts with the
same settings: the ratio is what Sijill's own steps cost. Runs alternate (ABBA).

review: p50/p99 of a reviewer's calls on the registry `scale` left: the pair side by side,
a merge, and the unmerge that restores it (the registry is left as it was).
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import psycopg
from common import (
    BENCH_KEY_FILE,
    PG_ADMIN_URL,
    PYTHON,
    ROOT,
    SIJILL,
    bench_user,
    median,
    record,
    run_measured,
)

WORK = Path("/tmp/sijill-bench")
DATABASE = "sijill_linkage"


def _pg(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _country(households: int, seed: int) -> Path:
    folder = WORK / f"synth-linkage-{households}-{seed}"
    if not (folder / "manifest.json").exists():
        subprocess.run(
            [
                str(SIJILL),
                "synth",
                "--households",
                str(households),
                "--seed",
                str(seed),
                "--out",
                str(folder),
            ],
            check=True,
        )
    return folder


def _registry(folder: Path) -> tuple[str, dict]:
    """A fresh PostgreSQL registry with `folder` imported; its URL and the env to act in it."""
    admin = _pg(PG_ADMIN_URL)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        connection.execute(f"CREATE DATABASE {DATABASE}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}"
    env = {
        **os.environ,
        "SIJILL_DATABASE_URL": url,
        "SIJILL_KEY_FILE": str(BENCH_KEY_FILE),
        "SIJILL_WORK_DIR": str(WORK / "work"),
    }
    subprocess.run([str(SIJILL), "db", "upgrade"], env=env, check=True, capture_output=True)
    key = bench_user(url, BENCH_KEY_FILE, "linkage-bench", "administrator", service=True)
    env["SIJILL_SERVICE_KEY"] = key
    subprocess.run(
        [str(SIJILL), "areas", "load", str(folder / "areas.csv")],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run([str(SIJILL), "import", str(folder)], env=env, check=True, capture_output=True)
    return url, env


def _dedup(env: dict, *extra: str):
    run = run_measured([str(SIJILL), "dedup", "-o", "json", *extra], env=env)
    return run, json.loads(run.output.strip().splitlines()[-1])


def _truth(folder: Path, url: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(true pairs a < b with their kind, the proposed pairs, each record's entity kind), in
    registry person IDs."""
    with psycopg.connect(_pg(url)) as connection:
        ids = pl.DataFrame(
            connection.execute("SELECT source_key, id FROM person").fetchall(),
            schema={"source_key": pl.String, "id": pl.Int64},
            orient="row",
        )
        proposed = pl.DataFrame(
            connection.execute(
                "SELECT person_a_id, person_b_id FROM match_pair WHERE run_id = "
                "(SELECT max(id) FROM linkage_run)"
            ).fetchall(),
            schema={"a": pl.Int64, "b": pl.Int64},
            orient="row",
        )
    # Record keys are "<source>:<the file's own key>".
    ids = ids.select(pl.col("source_key").str.split(":").list.last().alias("person_key"), "id")
    truth = pl.read_parquet(folder / "truth_persons.parquet").join(ids, on="person_key")
    kinds = truth.group_by("entity_id").agg(pl.col("duplicate_kind").drop_nulls().first())
    pairs = truth.join(truth, on="entity_id", suffix="_b").filter(pl.col("id") < pl.col("id_b"))
    pairs = pairs.select(
        pl.col("id").alias("a"),
        pl.col("id_b").alias("b"),
        pl.coalesce("duplicate_kind", "duplicate_kind_b").alias("kind"),
    )
    entity_kind = truth.select("id", "entity_id").join(kinds, on="entity_id")
    return pairs, proposed, entity_kind


def _scores(true: int, proposed: int, found: int) -> tuple[float, float, float]:
    precision = found / proposed if proposed else 0.0
    recall = found / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def accuracy(args) -> None:
    folder = _country(args.households, args.seed)
    url, env = _registry(folder)
    run, figures = _dedup(env)
    pairs, proposed, entity_kind = _truth(folder, url)
    found = proposed.join(pairs, on=["a", "b"], how="semi")
    overall = _scores(pairs.height, proposed.height, found.height)
    touching = proposed.join(
        entity_kind.rename({"id": "a", "duplicate_kind": "kind_a"}).drop("entity_id"),
        on="a",
        how="left",
    ).join(
        entity_kind.rename({"id": "b", "duplicate_kind": "kind_b"}).drop("entity_id"),
        on="b",
        how="left",
    )
    lines = [
        f"Synthetic country `sijill synth --households {args.households:,} --seed {args.seed}` "
        f"(with the `other_script` kind), imported into PostgreSQL; `sijill dedup` trained its "
        f"model on the registry and proposed the pairs at or above its default threshold "
        f"({figures['pairs_proposed']:,} pairs among {figures['records']:,} persons, "
        f"{run.seconds:.1f} s, peak {run.peak_rss_mb:,.0f} MB, model {figures['model_version']}).",
        "",
        "| kind | true pairs | found | recall | precision | F1 |",
        "|---|---|---|---|---|---|",
    ]
    for kind in sorted(pairs["kind"].drop_nulls().unique().to_list()):
        true_k = pairs.filter(pl.col("kind") == kind)
        found_k = found.join(true_k, on=["a", "b"], how="semi").height
        proposed_k = touching.filter((pl.col("kind_a") == kind) | (pl.col("kind_b") == kind))
        right_k = proposed_k.join(pairs, on=["a", "b"], how="semi").height
        precision = right_k / proposed_k.height if proposed_k.height else 0.0
        recall = found_k / true_k.height
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        lines.append(
            f"| {kind} | {true_k.height:,} | {found_k:,} | {recall:.4f} | {precision:.4f} | "
            f"{f1:.4f} |"
        )
    p, r, f = overall
    lines.append(
        f"| **all** | {pairs.height:,} | {found.height:,} | {r:.4f} | {p:.4f} | **{f:.4f}** |"
    )
    print("\n".join(lines))
    if not args.no_record:
        record(
            "Record linkage: accuracy on the synthetic country",
            f"python bench/bench_linkage.py accuracy --households {args.households} "
            f"--seed {args.seed}",
            lines,
        )


PLAIN = """
import sys, time
import polars as pl
from splink import DuckDBAPI, Linker
from sijill.core.settings import Settings
from sijill.linkage import model as linkage_model
frame = pl.read_parquet(sys.argv[1])
linker = Linker(DuckDBAPI().register(frame.to_arrow()), linkage_model.settings(), log_level=30)
linkage_model.train(linker, u_pairs=Settings().linkage_u_pairs)
pairs = linker.inference.predict(threshold_match_probability=float(sys.argv[2]))
print(pairs.as_duckdbpyrelation().count("*").fetchall()[0][0])
"""


def scale(args) -> None:
    folder = WORK / f"synth-{args.households}"
    if not (folder / "manifest.json").exists():
        folder = _country(args.households, 1)
    url, env = _registry(folder)
    frame_file = WORK / "linkage-frame.parquet"
    subprocess.run(
        [
            str(PYTHON),
            "-c",
            "import sys; from sijill.core.db import make_engine; "
            "from sijill.linkage.extract import registry_persons; "
            "from sijill.linkage.features import match_frame; "
            f"match_frame(registry_persons(make_engine('{url}'))).write_parquet('{frame_file}')",
        ],
        env=env,
        check=True,
    )
    persons = pl.scan_parquet(frame_file).select(pl.len()).collect().item()
    sijill_runs, plain_runs, ratios = [], [], []
    for i in range(args.runs):
        order = ("sijill", "plain") if i % 2 == 0 else ("plain", "sijill")
        measured = {}
        for side in order:
            if side == "sijill":
                measured[side], figures = _dedup(env)
            else:
                measured[side] = run_measured(
                    [str(PYTHON), "-c", PLAIN, str(frame_file), "0.95"], env=env
                )
        sijill_runs.append(measured["sijill"])
        plain_runs.append(measured["plain"])
        ratios.append(measured["sijill"].seconds / measured["plain"].seconds)
        print(
            f"run {i + 1}: sijill {measured['sijill'].seconds:.1f} s "
            f"({measured['sijill'].peak_rss_mb:,.0f} MB), plain Splink "
            f"{measured['plain'].seconds:.1f} s ({measured['plain'].peak_rss_mb:,.0f} MB)",
            flush=True,
        )
    lines = [
        f"Registry on PostgreSQL: `sijill synth --households {args.households:,}` imported "
        f"({persons:,} current persons). `sijill dedup` (read by COPY, keys, training, scoring, "
        f"{figures['pairs_proposed']:,} pairs proposed and {figures['flags_raised']:,} review "
        f"flags written) against plain Splink training and predicting with the same settings "
        f"on the same matching frame read from Parquet; alternating, {args.runs} runs each.",
        "",
        "| | wall time (median) | peak memory (max) |",
        "|---|---|---|",
        f"| `sijill dedup` | {median([r.seconds for r in sijill_runs]):.1f} s | "
        f"{max(r.peak_rss_mb for r in sijill_runs):,.0f} MB |",
        f"| plain Splink | {median([r.seconds for r in plain_runs]):.1f} s | "
        f"{max(r.peak_rss_mb for r in plain_runs):,.0f} MB |",
        "",
        f"- Ratio sijill ÷ plain (median of the runs' ratios): **{median(ratios):.2f}**",
    ]
    print("\n".join(lines))
    if not args.no_record:
        record(
            f"Record linkage: dedup of {persons:,} persons",
            f"python bench/bench_linkage.py scale --households {args.households} "
            f"--runs {args.runs}",
            lines,
        )


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    return (
        ordered[len(ordered) // 2] * 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    )


def review(args) -> None:
    """Latency of the reviewer's two calls on the registry `scale` left (run it first)."""
    import random
    import time

    import httpx
    from bench_api import launch_server, stop_server

    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}"
    with psycopg.connect(_pg(url)) as connection:
        flags = connection.execute(
            "SELECT id, person_a_id, person_b_id FROM review_flag "
            "WHERE kind = 'possible_duplicate' AND state = 'open'"
        ).fetchall()
        persons = connection.execute("SELECT count(*) FROM person").fetchone()[0]
    if len(flags) < args.merges:
        raise SystemExit("run `bench_linkage.py scale` first: too few open flags to review")
    token = bench_user(url, BENCH_KEY_FILE, "review-bench", "administrator")
    env = {
        **os.environ,
        "SIJILL_DATABASE_URL": url,
        "SIJILL_KEY_FILE": str(BENCH_KEY_FILE),
        "SIJILL_HOST": "127.0.0.1",
        "SIJILL_PORT": str(args.port),
    }
    server = launch_server(
        [str(SIJILL), "serve", "--workers", "2"], env, args.port, WORK / "review-server.log"
    )
    rng = random.Random(1)
    reads, merges, unmerges = [], [], []
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{args.port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as client:
            for flag_id, _, _ in rng.sample(flags, 50):  # warm-up
                client.get(f"/linkage/review-flags/{flag_id}")
            for flag_id, _, _ in rng.sample(flags, args.reads):
                started = time.perf_counter()
                answer = client.get(f"/linkage/review-flags/{flag_id}")
                reads.append(time.perf_counter() - started)
                answer.raise_for_status()
            merged = []
            for flag_id, a, b in rng.sample(flags, args.merges):
                started = time.perf_counter()
                answer = client.post(
                    f"/persons/{a}/merge", json={"lost": str(b), "review_flag_id": flag_id}
                )
                merges.append(time.perf_counter() - started)
                if answer.status_code == 201:
                    merged.append(answer.json()["merge_id"])
            for merge_id in merged:  # leave the registry as it was
                started = time.perf_counter()
                client.post(f"/merges/{merge_id}/unmerge").raise_for_status()
                unmerges.append(time.perf_counter() - started)
    finally:
        stop_server(server)
    lines = [
        f"The registry `bench_linkage.py scale` left ({persons:,} persons, {len(flags):,} open "
        f"possible_duplicate flags), served by `sijill serve --workers 2` on PostgreSQL; one "
        f"client, one request at a time (latency, not throughput), an administrator's token; "
        f"random flags, seed 1.",
        "",
        "| call | requests | p50 | p99 |",
        "|---|---|---|---|",
    ]
    for name, seconds in (
        ("GET /linkage/review-flags/{id} (the pair side by side)", reads),
        ("POST /persons/{id}/merge", merges),
        ("POST /merges/{id}/unmerge", unmerges),
    ):
        p50, p99 = _percentiles(seconds)
        lines.append(f"| {name} | {len(seconds):,} | {p50:.1f} ms | {p99:.1f} ms |")
    print("\n".join(lines))
    if not args.no_record:
        record(
            "Record linkage: the review calls",
            f"python bench/bench_linkage.py review --reads {args.reads} --merges {args.merges}",
            lines,
        )


def main() -> None:
    global DATABASE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("accuracy")
    one.add_argument("--households", type=int, default=100_000)
    one.add_argument("--seed", type=int, default=1)
    two = sub.add_parser("scale")
    two.add_argument("--households", type=int, default=1_000_000)
    two.add_argument("--runs", type=int, default=2)
    three = sub.add_parser("review")
    three.add_argument("--reads", type=int, default=2000)
    three.add_argument("--merges", type=int, default=300)
    three.add_argument("--port", type=int, default=8131)
    for command in (one, two, three):
        command.add_argument("--no-record", action="store_true")
        command.add_argument("--database", default="sijill_linkage", help="its PostgreSQL database")
    args = parser.parse_args()
    DATABASE = args.database
    sys.path.insert(0, str(ROOT / "src"))
    {"accuracy": accuracy, "scale": scale, "review": review}[args.what](args)


if __name__ == "__main__":
    main()
