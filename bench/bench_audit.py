"""The audit chain: `sijill audit verify` over millions of records, and the cost of appending.

    .venv/bin/python bench/bench_audit.py [--records 10000000] [--runs 3]

A fresh PostgreSQL database `sijill_bench_audit` (dropped at the end) is migrated and filled
with a valid chain of `--records` audit records: realistic actions, roles, registry IDs and
request IDs, no personal data. The chain is hashed here, record after record as `append` does,
and loaded with COPY. Then:

- `sijill audit verify` as a child process: median wall time and peak memory of `--runs`;
- `append_now` of one record per transaction, one caller: records/s;
- `AuditWriter` with 32 concurrent callers each recording one record at a time: records/s and
  records per commit; the same on a SQLite file.

The verify figure is the median of the runs; the append figures are single runs of a few
seconds each, after the 10M-record chain (appending does not depend on the chain's length).
"""

import argparse
import asyncio
import hashlib
import inspect
import io
import os
import re
import time
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from bench_import import drop_pg, fresh_pg, fresh_sqlite, pg_url, remove_sqlite
from common import SIJILL, bench_user, median, record, run_measured

from sijill.core.db import make_engine, session_factory
from sijill.security.audit.models import HASHED_FIELDS
from sijill.security.audit.service import AuditEntry, AuditWriter, append_now, verify

DATABASE = "sijill_bench_audit"
# `sijill audit verify` runs as a signed-in auditor: a service account, keyring kept here.
KEY_FILE = Path("/tmp/sijill-bench/audit-keys.json")
CHUNK = inspect.signature(verify).parameters["chunk_rows"].default
SQLITE = Path("/tmp/sijill-bench/audit.db")
BLOCK = 1_000_000

ACTIONS = [
    ("household.read", 0.55),
    ("household.search", 0.15),
    ("person.read", 0.08),
    ("household.update", 0.08),
    ("household.register", 0.04),
    ("household.history", 0.04),
    ("auth.login", 0.03),
    ("export.create", 0.01),
    ("auth.refresh", 0.02),
]
ROLES = ["registrar", "caseworker", "analyst", "grievance_officer", "auditor", "administrator"]
PURPOSES = ["case_management", "eligibility", "grievance", "payment", "statistics"]
OUTCOMES = ["ok"] * 96 + ["denied", "not_found", "invalid", "refused_consent"]


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _pick(rng: np.random.Generator, values: list, n: int, p=None) -> list:
    return np.array(values, dtype=object)[rng.choice(len(values), n, p=p)].tolist()


def synthetic_block(rng: np.random.Generator, first: int, n: int, start_us: int) -> dict:
    """n records' fields (no hashes yet): 300 users, about 3 records a second."""
    actions = _pick(rng, [a for a, _ in ACTIONS], n, [p for _, p in ACTIONS])
    steps = np.cumsum(rng.integers(1, 600_000, n)) + start_us
    stamps = np.datetime64("2026-01-01T00:00:00", "us") + steps.astype("timedelta64[us]")
    at = [f"{s}Z" for s in np.datetime_as_string(stamps, unit="us")]
    users = rng.integers(1, 301, n)
    actor = [f"user{u:03d}" for u in users.tolist()]
    role = [ROLES[u % len(ROLES)] for u in users.tolist()]
    auth = [a.startswith("auth.") for a in actions]
    ids = rng.integers(10**9, 10**10, n).tolist()
    record_type = [
        None if a else ("person" if act == "person.read" else "household")
        for a, act in zip(auth, actions, strict=True)
    ]
    record_id = [
        None if a or act == "household.search" else str(i)
        for a, act, i in zip(auth, actions, ids, strict=True)
    ]
    purpose = [None if a else p for a, p in zip(auth, _pick(rng, PURPOSES, n), strict=True)]
    request_id = [f"{x:032x}" for x in rng.integers(0, 2**63, n).tolist()]
    return {
        "seq": list(range(first, first + n)),
        "at": at,
        "actor": actor,
        "role": [None if a else r for a, r in zip(auth, role, strict=True)],
        "action": actions,
        "outcome": _pick(rng, OUTCOMES, n),
        "record_type": record_type,
        "record_id": record_id,
        "purpose": purpose,
        "request_id": request_id,
        "last_us": int(steps[-1]),
    }


def chain(block: dict, prev: str) -> str:
    """Hash the block in place, record after record, exactly as `append` does."""
    sha, sep = hashlib.sha256, "\x1f"
    names = HASHED_FIELDS[:-1]  # every field but prev_hash, which is chained here
    columns = [[("-" if v is None else "+" + v) for v in block[name]] for name in names]
    prevs, hashes = [], []
    for seq, *fields in zip(block["seq"], *columns, strict=True):
        prevs.append(prev)
        prev = sha(f"{seq}{sep}{sep.join(fields)}{sep}+{prev}".encode()).hexdigest()
        hashes.append(prev)
    block["prev_hash"], block["hash"] = prevs, hashes
    return prev


def load_chain(url: str, records: int) -> float:
    """Generate, hash and COPY a valid chain up to `records` records; returns seconds."""
    started = time.perf_counter()
    rng = np.random.default_rng(7)
    columns = ["seq", *HASHED_FIELDS, "hash"]
    start_us = 0
    with psycopg.connect(_libpq(url)) as connection:
        # Installing may already have audited something (the first administrator): go on
        # from the head.
        done, prev = connection.execute("SELECT seq, hash FROM audit_head").fetchone()
        # Built without its secondary indexes, which are made once at the end: how a restore
        # of an archived chain would load too.
        connection.execute("DROP INDEX ix_audit_record_record_id, ix_audit_record_actor")
        for first in range(done + 1, records + 1, BLOCK):
            block = synthetic_block(rng, first, min(BLOCK, records - first + 1), start_us)
            start_us = block.pop("last_us")
            prev = chain(block, prev)
            table = pa.table({name: block[name] for name in columns})
            buffer = io.BytesIO()
            pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
            with connection.cursor().copy(
                f"COPY audit_record ({', '.join(columns)}) FROM STDIN (FORMAT csv)"
            ) as copy:
                copy.write(buffer.getbuffer())
            print(f"  {first + len(block['seq']) - 1:,} records", flush=True)
        connection.execute("CREATE INDEX ix_audit_record_record_id ON audit_record (record_id)")
        connection.execute("CREATE INDEX ix_audit_record_actor ON audit_record (actor)")
        connection.execute(
            "UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1", (records, prev)
        )
        connection.commit()
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE audit_record")
    return time.perf_counter() - started


def entry(i: int) -> AuditEntry:
    return AuditEntry(
        "user007",
        "registrar",
        "household.read",
        "ok",
        "household",
        str(1_000_000_000 + i),
        "case_management",
        f"{i:032x}",
    )


def bench_single(url: str, seconds: float = 5.0) -> float:
    engine = make_engine(url)
    sessions = session_factory(engine)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        append_now(sessions, [entry(done)])
        done += 1
    rate = done / (time.perf_counter() - started)
    engine.dispose()
    return rate


def bench_writer(url: str, callers: int = 32, seconds: float = 5.0) -> tuple[float, float]:
    engine = make_engine(url)
    writer = AuditWriter(session_factory(engine))
    done = 0

    async def caller(number: int, deadline: float) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await writer.record([entry(number)])
            done += 1

    async def main() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(caller(n, started + seconds) for n in range(callers)))
        await writer.close()
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    engine.dispose()
    return done / elapsed, done / writer.transactions


def verify_once(url: str) -> dict:
    """One `sijill audit verify` as an auditor (which appends its own record first)."""
    load = os.getloadavg()[0]
    env = {"SIJILL_DATABASE_URL": url, "SIJILL_KEY_FILE": str(KEY_FILE)}
    env["SIJILL_SERVICE_KEY"] = bench_user(
        url, KEY_FILE, f"bench-auditor-{time.time_ns()}", "auditor", service=True
    )
    run = run_measured([str(SIJILL), "audit", "verify"], env=env)
    if "audit chain intact" not in run.output:
        raise RuntimeError(f"verify did not pass:\n{run.output[-2000:]}")
    count = int(re.search(r"intact: ([\d,]+) records", run.output).group(1).replace(",", ""))
    return {
        "wall": run.seconds,
        "rss": run.peak_rss_mb,
        "line": run.output.strip(),
        "load": load,
        "records": count,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="verify the chain a --keep run left, unbuilt"
    )
    args = parser.parse_args()

    url, build = (pg_url(DATABASE), None) if args.reuse else (fresh_pg(DATABASE), 0.0)
    try:
        if build is not None:
            print(f"building a chain of {args.records:,} records", flush=True)
            build = load_chain(url, args.records)
            print(f"built in {build:.0f} s", flush=True)
        runs = []
        for _ in range(args.runs):
            runs.append(verify_once(url))
            print(f"  verify: {runs[-1]['wall']:.1f} s, {runs[-1]['rss']:.0f} MiB", flush=True)
        pg_single = bench_single(url)
        pg_writer, pg_batch = bench_writer(url)
        print(f"  pg append: {pg_single:,.0f}/s single, {pg_writer:,.0f}/s writer", flush=True)
        verify_after = verify_once(url)  # the appends above extended the same chain
    finally:
        if not args.keep:
            drop_pg(DATABASE)
    SQLITE.parent.mkdir(parents=True, exist_ok=True)
    sqlite_url = fresh_sqlite(SQLITE)
    try:
        lite_single = bench_single(sqlite_url)
        lite_writer, lite_batch = bench_writer(sqlite_url)
    finally:
        remove_sqlite(SQLITE)

    walls = [r["wall"] for r in runs]
    rss = [r["rss"] for r in runs]
    records = runs[0]["records"]
    rate = records / median(walls)
    record(
        "Audit chain",
        f"python bench/bench_audit.py --records {args.records} --runs {args.runs}",
        [
            f"`sijill audit verify` (a fresh process) over a valid chain of {records:,} "
            "audit records in PostgreSQL 15 (stock configuration), read in chunks of "
            f"{CHUNK:,} records by COPY into Arrow while the next chunk is read, every hash "
            "recomputed by DuckDB; median of "
            f"{args.runs} runs."
            + (
                f" Building the chain (hashing in Python record after record, COPY, then its "
                f"two indexes) took {build:.0f} s."
                if build
                else ""
            ),
            "",
            "| what | median wall time | records/s | median peak memory |",
            "|---|---|---|---|",
            f"| verify {records:,} records | {median(walls):.1f} s | {rate:,.0f} | "
            f"{median(rss):.0f} MiB |",
            "",
            "Runs (with the machine's 1-minute load average as each began): "
            + "; ".join(
                f"{r['wall']:.1f} s / {r['rss']:.0f} MiB (load {r['load']:.1f})" for r in runs
            )
            + "."
            + (
                f" A load above the machine's {os.cpu_count()} cores means other work shared "
                "it (PostgreSQL and this process compete for the same cores): upper bounds."
                if max(r["load"] for r in runs) > (os.cpu_count() or 1)
                else ""
            ),
            f"After the append measurements below: {verify_after['wall']:.1f} s "
            f"(`{verify_after['line'][:60]}…`).",
            "",
            "Appending (one run of 5 s each; every commit durable: fsync on, synchronous "
            "commit on PostgreSQL, WAL with synchronous=NORMAL on SQLite):",
            "",
            "| how | PostgreSQL records/s | SQLite records/s |",
            "|---|---|---|",
            f"| `append_now`, one record per transaction, one caller | {pg_single:,.0f} | "
            f"{lite_single:,.0f} |",
            f"| `AuditWriter`, 32 concurrent callers, one record each call | {pg_writer:,.0f} "
            f"({pg_batch:.1f} records per commit) | {lite_writer:,.0f} ({lite_batch:.1f} "
            "records per commit) |",
        ],
    )


if __name__ == "__main__":
    main()
