"""`sijill import` of a synthetic country into PostgreSQL and SQLite, against plain COPY.

    .venv/bin/python bench/bench_import.py [--households 1000000] [--runs 3]
        [--config both|stock] [--sqlite-runs N] [--indexed-copy-runs N]

Figures: households/s and peak memory of the import process (median of runs); the same rows
loaded by a plain COPY without any checking, two ways: as an initial load writes them
(indexes, keys and foreign keys dropped first and built at the end, by the importer's own
`initial_load` code: the physical limit of this schema on this machine) and into the indexed
tables (what a batch import pays per row); the import ÷ COPY ratio; peak memory at a tenth of
the size, to show how it grows with the file. Every import signs in as a service account made
for the run (`SIJILL_SERVICE_KEY`), as an agency's scheduled import would.

PostgreSQL is measured twice: with the server's stock Debian configuration, then tuned for bulk
loading (`ALTER SYSTEM SET shared_buffers='4GB', max_wal_size='8GB', checkpoint_timeout='30min',
wal_buffers='64MB'`; fsync and synchronous_commit stay on). The tuning needs root (it runs
`su postgres -c psql` and `pg_ctlcluster`); whatever happens, the script ends with
`ALTER SYSTEM RESET ALL` and a restart, so the server is left in its stock configuration.
`--config stock` skips the tuned measurements; `--sqlite-runs 0` skips SQLite;
`--indexed-copy-runs` sets how often the slow COPY into indexed tables is timed.

Databases created here are dropped at the end, except `sijill_bench` (the last PostgreSQL
import of the full size), which bench/bench_api.py serves. Data lives in /tmp/sijill-bench.
"""

import argparse
import re
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
from common import BENCH_KEY_FILE, PG_ADMIN_URL, SIJILL, bench_user, median, record, run_measured

from sijill.registry.bulk import initial_load

WORK = Path("/tmp/sijill-bench")
TABLES = ("area", "household", "person", "membership")
KEEP = "sijill_bench"  # the 1M registry bench_api.py serves
KEY_FILE = BENCH_KEY_FILE  # the registry's keyring, shared with bench_api.py
PG_CLUSTER = ("15", "main")
TUNING = {
    "shared_buffers": "4GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "wal_buffers": "64MB",
}
SHOWN = (
    "shared_buffers",
    "max_wal_size",
    "checkpoint_timeout",
    "wal_buffers",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
)
SUMMARY = re.compile(
    r"([\d,]+) households and ([\d,]+) persons added; ([\d,]+) households and ([\d,]+) persons "
    r"were already in the registry \(([\d.]+) s"
)
REJECTED = re.compile(r"([\d,]+) rows rejected")


def synth(households: int) -> Path:
    out = WORK / f"synth-{households}"
    if not (out / "manifest.json").exists():
        run_measured(
            [
                str(SIJILL),
                "synth",
                "--households",
                str(households),
                "--seed",
                "1",
                "--out",
                str(out),
            ]
        )
    return out


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg(name: str) -> None:
    with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def fresh_pg(name: str) -> str:
    drop_pg(name)
    with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = pg_url(name)
    run_measured(
        [str(SIJILL), "db", "upgrade"],
        env={"SIJILL_DATABASE_URL": url, "SIJILL_KEY_FILE": str(KEY_FILE)},
    )
    return url


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def fresh_sqlite(path: Path) -> str:
    remove_sqlite(path)
    url = f"sqlite:///{path}"
    run_measured(
        [str(SIJILL), "db", "upgrade"],
        env={"SIJILL_DATABASE_URL": url, "SIJILL_KEY_FILE": str(KEY_FILE)},
    )
    return url


def import_once(url: str, folder: Path, households: int, persons: int) -> dict:
    """One `sijill import` process: wall time, peak RSS, and the import's own figures."""
    (folder / "rejects.csv").unlink(missing_ok=True)
    service_key = bench_user(url, KEY_FILE, "importer", "administrator", service=True)
    run = run_measured(
        [str(SIJILL), "import", str(folder)],
        # Wide console: rich wraps its summary at 80 columns when stdout is not a terminal.
        env={
            "SIJILL_DATABASE_URL": url,
            "SIJILL_KEY_FILE": str(KEY_FILE),
            "SIJILL_SERVICE_KEY": service_key,
            "COLUMNS": "300",
        },
    )
    text = " ".join(run.output.split())
    found = SUMMARY.search(text)
    if not found:
        raise RuntimeError(f"no summary in the import's output:\n{run.output[-2000:]}")
    added_h, added_p, present_h, present_p = (int(g.replace(",", "")) for g in found.groups()[:4])
    rejected = REJECTED.search(text)
    result = {
        "wall": run.seconds,
        "own": float(found.group(5)),  # the importer's own clock: first batch to last commit
        "rss": run.peak_rss_mb,
        "added_h": added_h,
        "added_p": added_p,
        "rejected": int(rejected.group(1).replace(",", "")) if rejected else 0,
    }
    if present_h or present_p or added_h != households or added_p != persons:
        raise RuntimeError(f"import into an empty registry did not add every row: {text}")
    return result


def export_rows(url: str) -> Path:
    dump = WORK / "copy-baseline"
    dump.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(_libpq(url)) as connection:
        for table in TABLES:
            with (
                (dump / f"{table}.csv").open("wb") as handle,
                connection.cursor().copy(f"COPY {table} TO STDOUT (FORMAT csv)") as copy,
            ):
                for chunk in copy:
                    handle.write(chunk)
    return dump


def copy_once(url: str, dump: Path, deferred: bool) -> float:
    """Plain COPY of the exported rows, one transaction, into freshly migrated tables; with
    `deferred`, the way an initial load does it (indexes and keys dropped first and built at
    the end, by the importer's own code), else into the indexed tables."""
    started = time.perf_counter()
    with psycopg.connect(_libpq(url)) as connection:
        load = initial_load.begin(connection) if deferred else None
        for table in TABLES:
            with (
                (dump / f"{table}.csv").open("rb") as handle,
                connection.cursor().copy(f"COPY {table} FROM STDIN (FORMAT csv)") as copy,
            ):
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)
        if load is not None:
            initial_load.finish(connection.cursor(), load)
        connection.commit()
    return time.perf_counter() - started


# --- the server's configuration ------------------------------------------------------------


def psql_admin(*statements: str) -> str:
    command = ["su", "postgres", "-c", "psql -qtAX " + " ".join(f'-c "{s}"' for s in statements)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def server_settings() -> dict[str, str]:
    with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as connection:
        return {name: connection.execute(f"SHOW {name}").fetchone()[0] for name in SHOWN}


def server_version() -> str:
    with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as connection:
        return connection.execute("SHOW server_version").fetchone()[0]


def auto_conf_settings() -> str:
    """Settings made with ALTER SYSTEM (postgresql.auto.conf), as `name = value` lines."""
    return psql_admin(
        "SELECT string_agg(name || ' = ' || setting, ', ') FROM pg_file_settings "
        "WHERE sourcefile LIKE '%postgresql.auto.conf'"
    )


def restart_server() -> None:
    subprocess.run(["pg_ctlcluster", *PG_CLUSTER, "restart"], check=True)
    for _ in range(120):
        ready = subprocess.run(["pg_isready", "-q", "-h", "localhost"], check=False)
        if ready.returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError("PostgreSQL did not come back after the restart")


def tune_server() -> None:
    psql_admin(*(f"ALTER SYSTEM SET {name} = '{value}'" for name, value in TUNING.items()))
    restart_server()


def reset_server() -> None:
    psql_admin("ALTER SYSTEM RESET ALL")
    restart_server()


# --- measuring ------------------------------------------------------------------------------


def measure_pg(
    label: str, folder: Path, households: int, persons: int, runs: int, indexed_runs: int
) -> dict:
    imports, copies, indexed = [], [], []
    for _ in range(runs):
        url = fresh_pg(KEEP)
        imports.append(import_once(url, folder, households, persons))
        print(
            f"[{label}] postgresql import: {imports[-1]['wall']:.1f} s "
            f"(own {imports[-1]['own']:.1f} s), {imports[-1]['rss']:.0f} MB",
            flush=True,
        )
    dump = export_rows(pg_url(KEEP))
    for _ in range(runs):
        copies.append(copy_once(fresh_pg("sijill_bench_copy"), dump, deferred=True))
        print(f"[{label}] postgresql COPY, indexes built last: {copies[-1]:.1f} s", flush=True)
    for _ in range(indexed_runs):
        indexed.append(copy_once(fresh_pg("sijill_bench_copy"), dump, deferred=False))
        print(f"[{label}] postgresql COPY into indexed tables: {indexed[-1]:.1f} s", flush=True)
    drop_pg("sijill_bench_copy")
    shutil.rmtree(dump, ignore_errors=True)
    return {
        "imports": imports,
        "copies": copies,
        "indexed": indexed,
        "settings": server_settings(),
    }


def _row(what: str, runs: list[dict], households: int) -> str:
    wall = median([r["wall"] for r in runs])
    own = median([r["own"] for r in runs])
    return (
        f"| {what} | {wall:.1f} s ({own:.1f} s) | {households / wall:,.0f} "
        f"({households / own:,.0f}) | {median([r['rss'] for r in runs]):,.0f} MB |"
    )


def _settings_text(settings: dict[str, str]) -> str:
    return ", ".join(f"{name}={value}" for name, value in settings.items())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--config", choices=("both", "stock"), default="both")
    parser.add_argument("--sqlite-runs", type=int, help="default: --runs; 0 skips SQLite")
    parser.add_argument(
        "--indexed-copy-runs", type=int, help="COPY into indexed tables; default: --runs"
    )
    args = parser.parse_args()
    sqlite_count = args.runs if args.sqlite_runs is None else args.sqlite_runs
    indexed_count = args.runs if args.indexed_copy_runs is None else args.indexed_copy_runs
    n, runs = args.households, args.runs
    WORK.mkdir(parents=True, exist_ok=True)

    altered = auto_conf_settings()
    if altered:
        raise SystemExit(
            f"postgresql.auto.conf already sets {altered}: this is not the stock configuration "
            "the figures would be labelled with (and RESET ALL at the end would drop it)"
        )
    folder, small = synth(n), synth(n // 10)
    rows = {}
    for name, path in (("big", folder), ("small", small)):
        rows[name] = (
            pq.ParquetFile(path / "households.parquet").metadata.num_rows,
            pq.ParquetFile(path / "persons.parquet").metadata.num_rows,
        )
    households, persons = rows["big"]

    stock = measure_pg("stock", folder, households, persons, runs, indexed_count)
    smalls = []
    for _ in range(runs):
        smalls.append(import_once(fresh_pg("sijill_bench_small"), small, *rows["small"]))
        print(f"[stock] postgresql import, small: {smalls[-1]['rss']:.0f} MB", flush=True)
    drop_pg("sijill_bench_small")
    sqlite_runs = []
    for _ in range(sqlite_count):
        url = fresh_sqlite(WORK / "bench.db")
        sqlite_runs.append(import_once(url, folder, households, persons))
        print(f"sqlite import: {sqlite_runs[-1]['wall']:.1f} s", flush=True)
    remove_sqlite(WORK / "bench.db")

    tuned = None
    if args.config == "both":
        try:
            tune_server()
            tuned = measure_pg("tuned", folder, households, persons, runs, indexed_count)
        finally:
            reset_server()
            left = auto_conf_settings()
            if left:
                raise SystemExit(f"the server still has ALTER SYSTEM settings: {left}")
    final = server_settings()

    version = server_version()
    small_h = rows["small"][0]
    lines = [
        f"Synthetic country `sijill synth --households {n} --seed 1`: {households:,} household "
        f"rows ({n:,} households and {households - n:,} injected duplicate registrations), "
        f"{persons:,} person rows, read from its Parquet files. Each run imports the whole "
        f"folder into an empty, migrated database (one `sijill import` process at a time: one "
        f"reading/checking thread and one writer thread on one connection; batches of "
        f"20,000 households, the default `SIJILL_IMPORT_BATCH_SIZE`). Every row was added, "
        f"none rejected. Medians of {runs} runs.",
        "",
        "Time is the wall time of the whole `sijill import` process (start-up, migration check "
        "and areas included); in brackets the importer's own clock (first batch to last "
        "commit), which is what `sijill import` prints. Peak memory is the import process's "
        "maximum resident set (GNU time). Into an empty PostgreSQL registry the import is an "
        "initial load (one transaction, indexes and keys built at the end). Plain `COPY` is the "
        "same rows (exported from an imported registry) streamed with psycopg `COPY ... FROM "
        "STDIN (FORMAT csv)` into the same empty tables in one transaction, with no checking "
        "at all, two ways: the way an initial load writes (indexes, keys and foreign keys "
        "dropped first and built at the end, by the importer's own code: the physical limit "
        "of this schema here), and into the indexed tables (what a batch import pays per row).",
        "",
        f"PostgreSQL {version} on the same machine; the import and the server share the 2 cores.",
        "",
        "| what | time | households/s | peak memory |",
        "|---|---|---|---|",
    ]

    def copy_rows(result: dict, label: str) -> list[str]:
        out = [
            f"| plain `COPY`, indexes built last, **{label}** config | "
            f"{median(result['copies']):.1f} s | "
            f"{households / median(result['copies']):,.0f} | — |"
        ]
        if result["indexed"]:
            out.append(
                f"| plain `COPY` into indexed tables, **{label}** config, "
                f"{len(result['indexed'])} run(s) | {median(result['indexed']):.1f} s | "
                f"{households / median(result['indexed']):,.0f} | — |"
            )
        return out

    lines += [
        _row("`sijill import` → PostgreSQL, **stock** Debian config", stock["imports"], households),
        *copy_rows(stock, "stock"),
    ]
    if tuned:
        lines += [
            _row(
                "`sijill import` → PostgreSQL, **tuned** for bulk loading",
                tuned["imports"],
                households,
            ),
            *copy_rows(tuned, "tuned"),
        ]
    if sqlite_runs:
        lines.append(_row("`sijill import` → SQLite", sqlite_runs, households))
    lines += [
        _row(
            f"`sijill import` → PostgreSQL (stock), {n // 10:,}-household country "
            f"({small_h:,} rows)",
            smalls,
            small_h,
        ),
        "",
    ]
    for label, result in (("stock", stock), ("tuned", tuned)):
        if result is None:
            continue
        wall = median([r["wall"] for r in result["imports"]])
        own = median([r["own"] for r in result["imports"]])
        copy_s = median(result["copies"])
        lines.append(
            f"- PostgreSQL **{label}** ({_settings_text(result['settings'])}): import ÷ COPY "
            f"(indexes built last) = **{wall / copy_s:.2f}** on process wall time "
            f"({own / copy_s:.2f} on the importer's own clock), target ≤ 2; households/s "
            f"**{households / wall:,.0f}** ({households / own:,.0f}), target ≥ 20,000."
        )
    big_rss = median([r["rss"] for r in stock["imports"]])
    small_rss = median([r["rss"] for r in smalls])

    def walls(runs_: list) -> str:
        return ", ".join(f"{r['wall'] if isinstance(r, dict) else r:.1f}" for r in runs_)

    lines += [
        f"- Peak memory of the import process, PostgreSQL stock: {small_rss:,.0f} MB at "
        f"{small_h:,} household rows vs {big_rss:,.0f} MB at {households:,} "
        f"({big_rss / small_rss:.2f}×).",
        f"- After the tuned runs the server was reset (`ALTER SYSTEM RESET ALL`, restart): "
        f"{_settings_text(final)}."
        if tuned
        else "- Tuned configuration not measured.",
        "",
        f"Runs, wall time (s): PostgreSQL stock import {walls(stock['imports'])}; COPY "
        f"(indexes last) {walls(stock['copies'])}; COPY (indexed) {walls(stock['indexed'])}"
        + (
            f"; tuned import {walls(tuned['imports'])}; tuned COPY {walls(tuned['copies'])}"
            if tuned
            else ""
        )
        + (f"; SQLite import {walls(sqlite_runs)}" if sqlite_runs else "")
        + f"; PostgreSQL stock import of {small_h:,} rows {walls(smalls)}.",
    ]
    command = f"python bench/bench_import.py --households {n} --runs {runs}"
    if args.config != "both":
        command += f" --config {args.config}"
    if args.sqlite_runs is not None:
        command += f" --sqlite-runs {args.sqlite_runs}"
    if args.indexed_copy_runs is not None:
        command += f" --indexed-copy-runs {args.indexed_copy_runs}"
    record("Bulk import", command, lines)
    print("\n".join(lines))
    print(f"\nkept for bench_api.py: {pg_url(KEEP)}")


if __name__ == "__main__":
    main()
