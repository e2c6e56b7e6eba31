"""`sijill keys rotate` over a registry of about a million persons on PostgreSQL.

    .venv/bin/python bench/bench_rotation.py [--households 230000] [--runs 3]

A synthetic country is imported into a fresh database `sijill_bench_rotation` with a key file
of its own; then, each run, `sijill keys add` makes a new active key, so every stored national
ID and phone number is under an older one, and `sijill keys rotate` re-encrypts them all.
Figures: wall time of the rotate process, rows and values re-encrypted per second, its peak
resident memory (median of runs). The database and the key file are removed at the end.
"""

import argparse
import os
import re
import shutil
import tempfile
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
from bench_import import drop_pg, fresh_pg, synth
from common import PYTHON, SIJILL, median, record, run_measured

DATABASE = "sijill_bench_rotation"
# The import as a job of the installation (the `sijill import` command asks who signs in).
IMPORT = """
import sys
from pathlib import Path
from sijill.core.db import make_engine
from sijill.core.settings import Settings
from sijill.registry.bulk.service import import_path
from sijill.security.principal import Principal
settings = Settings()
report = import_path(
    make_engine(settings.database_url), settings, Path(sys.argv[1]),
    principal=Principal.system("bench"),
)
print(report.counts.persons_added)
"""
SUMMARY = re.compile(r"([\d,]+) rows re-encrypted under key (\w+) \(.*?\) in ([\d.]+) s")


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def stored_values(url: str) -> tuple[int, int]:
    """Rows holding an identifier, and identifiers, in `person` (history is empty here)."""
    with psycopg.connect(_libpq(url)) as connection:
        return connection.execute(
            "SELECT count(*) FILTER (WHERE national_id IS NOT NULL OR phone IS NOT NULL), "
            "count(national_id) + count(phone) FROM person"
        ).fetchone()


def service_key(url: str) -> str:
    """A key-administrator service account for the `sijill keys` commands, as `user:secret`."""
    from sijill.core.db import make_engine, session_factory, transaction
    from sijill.security.audit.service import append
    from sijill.security.principal import Principal
    from sijill.security.users.accounts import GrantSpec, create_user

    engine = make_engine(url)
    principal = Principal.system("bench")
    with transaction(session_factory(engine)) as session:
        secret = create_user(
            session, principal, "bench-keys", [GrantSpec("administrator", None)], service=True
        )
        append(session, principal.take_audit())
    engine.dispose()
    return f"bench-keys:{secret}"


def vacuum(url: str) -> None:
    """What autovacuum does between two rotations months apart: without it each run would
    wade through the previous run's dead row versions (the runs slow down 1.5-2.5x)."""
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE) person, person_version")


def server_version(url: str) -> str:
    with psycopg.connect(_libpq(url)) as connection:
        return connection.execute("SHOW server_version").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=230_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    folder = synth(args.households)
    persons = pq.ParquetFile(folder / "persons.parquet").metadata.num_rows
    keys_dir = Path(tempfile.mkdtemp(prefix="sijill-bench-keys-"))
    # Every child process (import included) inherits this key file, never the developer's own.
    os.environ["SIJILL_KEY_FILE"] = str(keys_dir / "keys.json")
    try:
        url = fresh_pg(DATABASE)
        env = {"SIJILL_DATABASE_URL": url, "COLUMNS": "300"}
        imported = run_measured([str(PYTHON), "-c", IMPORT, str(folder)], env=env)
        if int(imported.output.split()[-1]) != persons:
            raise RuntimeError(f"the import did not add every person: {imported.output[-2000:]}")
        print(f"imported {persons:,} persons in {imported.seconds:.1f} s", flush=True)
        env["SIJILL_SERVICE_KEY"] = service_key(url)
        rows, values = stored_values(url)
        runs, own, loads = [], [], []
        for _ in range(args.runs):
            loads.append(os.getloadavg()[0])
            run_measured([str(SIJILL), "keys", "add"], env=env)
            run = run_measured([str(SIJILL), "keys", "rotate"], env=env)
            found = SUMMARY.search(" ".join(run.output.split()))
            if not found:
                raise RuntimeError(f"no summary in the rotation's output:\n{run.output[-2000:]}")
            rotated = int(found.group(1).replace(",", ""))
            if rotated != rows:
                raise RuntimeError(f"rotated {rotated:,} rows, expected {rows:,}")
            runs.append(run)
            own.append(float(found.group(3)))
            vacuum(url)
            print(
                f"rotation to {found.group(2)}: {run.seconds:.1f} s (own {own[-1]:.1f} s), "
                f"{run.peak_rss_mb:.0f} MB",
                flush=True,
            )
        version = server_version(url)
    finally:
        drop_pg(DATABASE)
        shutil.rmtree(keys_dir, ignore_errors=True)

    seconds = median([r.seconds for r in runs])
    inner = median(own)
    rss = median([r.peak_rss_mb for r in runs])
    lines = [
        f"Synthetic country `sijill synth --households {args.households} --seed 1` imported "
        f"into a fresh PostgreSQL {version} database (stock configuration): {persons:,} "
        f"persons, of whom {rows:,} hold a national ID or a phone number ({values:,} encrypted "
        "values). Each run: `sijill keys add` (a new active key), then `sijill keys rotate`, "
        "which re-encrypts every one of them under it: batches of 20,000 rows in primary-key "
        "order, one transaction each, AES-256-GCM in Python, written back with `COPY` into a "
        "temporary table and one `UPDATE ... FROM` per batch. Time is the wall time of the "
        "whole `sijill keys rotate` process (start-up and schema check included); in brackets "
        f"the rotation's own clock, which the command prints. Median of {args.runs} runs, "
        "with `VACUUM (ANALYZE)` of the two tables (not timed) after each, as autovacuum "
        "would between rotations.",
        "",
        "| rows re-encrypted | values | time | rows/s | values/s | peak memory |",
        "|---|---|---|---|---|---|",
        f"| {rows:,} | {values:,} | {seconds:.1f} s ({inner:.1f} s) | {rows / seconds:,.0f} "
        f"({rows / inner:,.0f}) | {values / seconds:,.0f} ({values / inner:,.0f}) | "
        f"{rss:,.0f} MB |",
        "",
        "Other work on the machine: load average "
        + ", ".join(f"{load:.1f}" for load in loads)
        + f" at the start of the runs ({os.cpu_count()} cores).",
        "",
        "Runs, process wall time (s): "
        + ", ".join(f"{r.seconds:.1f}" for r in runs)
        + "; the rotation's own clock (s): "
        + ", ".join(f"{s:.1f}" for s in own)
        + ".",
    ]
    record(
        "Key rotation",
        f"python bench/bench_rotation.py --households {args.households} --runs {args.runs}",
        lines,
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
