"""The household page under load: `sijill serve --workers 2` on the 1,000,000-household
PostgreSQL registry bench_targeting.py, bench_programs.py and bench_payments.py leave behind
(database `sijill_targeting`: every household with its program decision, entitlement and
payment), loaded with wrk from the same machine; and its weight, cold.

    .venv/bin/python bench/bench_web.py [--database-url URL] [--runs 3] [--duration 20] \\
        [--connections 16] [--baseline WORKTREE --rounds 2]

- `--baseline`: a checkout of other code (`git worktree add /tmp/base <commit>`), served in
  turn with the current code, round by round, on the same registry and sample: on a machine
  whose speed drifts from hour to hour, a comparison is only worth one measured in one run.

- `GET /web/households/{id}`: ~10,000 households sampled among those with a payment, so each
  page carries the whole chain (roster, dwelling, a decision explained from its run's feature
  snapshot, the entitlement, the payment). bench/web_get.lua picks one at random per request
  and sends the session cookie of an administrator (a user made through the service layer).
- Snapshots: an explanation reads its household's row of the run's feature snapshot. Snapshots
  an older version wrote as one row group are first rewritten as `take_snapshot` writes them
  now (the same rows sorted by household, row groups of 10,000; checksum recorded anew).
- Weight: one page fetched as a browser does on its first visit (HTML, then the stylesheet it
  links), with `Accept-Encoding: gzip, deflate, br`; bytes on the wire, headers included.

wrk runs `-t1 -c16 -d20s --latency`: a warm-up run, then `--runs` measured runs; figures are
medians. A response outside 2xx fails the run: a page of errors is never mistaken for speed.
The warm-up may time out (a new worker checks each feature snapshot's checksum on its first
explanation, seconds for a 1,000,000-household file): it is reported, and a measured run
with a timeout fails. CPU per page: the server's processes and PostgreSQL's, over the
measured runs, from /proc.
"""

import argparse
import os
import re
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from bench_api import launch_server, run_wrk, stop_server
from bench_targeting import WORK as TARGETING_WORK
from common import BENCH_KEY_FILE, PG_ADMIN_URL, SIJILL, bench_user, median, record

WORK = Path("/tmp/sijill-bench/web")
DEFAULT_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + "/sijill_targeting"
SAMPLE = 10_000
TARGET_P99_MS = 100.0
TARGET_KB = 300.0


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def paid_households(url: str, count: int) -> tuple[int, list[str]]:
    """The registry's size, and `count` registry IDs of households with a payment."""
    from sijill.core.ids import format_id

    with psycopg.connect(_libpq(url)) as connection:
        households = connection.execute("SELECT count(*) FROM household").fetchone()[0]
        rows = connection.execute(
            "SELECT household_id FROM entitlement_payment TABLESAMPLE SYSTEM (5) LIMIT %s",
            (count,),
        ).fetchall()
    if not rows:
        raise SystemExit(
            "No household of this registry has a payment: run bench/bench_payments.py first"
        )
    return households, [format_id(row[0]) for row in rows]


def decisions_per_page(url: str, household_ids: list[str]) -> float:
    """How many program decisions a sampled page explains, on average: each household's
    decisions, at most the latest `LATEST_RUNS` (as the page shows them)."""
    from sijill.core.ids import parse_id
    from sijill.programs.household import LATEST_RUNS

    numbers = [parse_id("household", text) for text in household_ids]
    with psycopg.connect(_libpq(url)) as connection:
        found = connection.execute(
            "SELECT coalesce(sum(least(n, %s)), 0) FROM (SELECT d.household_id, count(*) AS n"
            " FROM program_run r JOIN eligibility_decision d ON d.run_id = r.id"
            " WHERE d.household_id = ANY(%s) GROUP BY d.household_id) AS per_household",
            (LATEST_RUNS, numbers),
        ).fetchone()[0]
    return found / len(numbers)


def relayout_snapshots(url: str) -> list[int]:
    """The feature snapshots this registry's decisions were made on, rewritten in the layout
    `take_snapshot` writes now (rows sorted by household, row groups of SNAPSHOT_ROW_GROUP)
    where an older version wrote them otherwise: the same rows, read one household at a time
    as the current code's snapshots are. Their checksums are recorded anew."""
    import hashlib

    import pyarrow.parquet as pq

    from sijill.targeting.service import SNAPSHOT_ROW_GROUP

    folder = TARGETING_WORK / "work" / "targeting" / "snapshots"
    rewritten = []
    with psycopg.connect(_libpq(url)) as connection:
        snapshots = connection.execute(
            "SELECT s.id, s.file_name FROM feature_snapshot s WHERE s.id IN (SELECT r.snapshot_id"
            " FROM program_run r WHERE EXISTS (SELECT 1 FROM eligibility_decision d"
            " WHERE d.run_id = r.id))"
        ).fetchall()
        for snapshot_id, file_name in snapshots:
            path = folder / file_name
            metadata = pq.ParquetFile(path).metadata
            if metadata.row_group(0).num_rows == min(metadata.num_rows, SNAPSHOT_ROW_GROUP):
                continue  # written as the current version writes them
            table = pq.read_table(path).sort_by("household_id")
            partial = path.with_name(f".{file_name}.partial")
            pq.write_table(table, partial, compression="zstd", row_group_size=SNAPSHOT_ROW_GROUP)
            digest = hashlib.sha256(partial.read_bytes()).hexdigest()
            os.chmod(partial, 0o600)
            partial.rename(path)
            connection.execute(
                "UPDATE feature_snapshot SET sha256 = %s WHERE id = %s", (digest, snapshot_id)
            )
            connection.commit()
            rewritten.append(snapshot_id)
    return rewritten


def _raw_get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One GET on a plain socket: the status, and the whole answer as it came over the wire
    (headers and body, compressed if the server compressed it)."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    status = int(answer.split(b" ", 2)[1])
    return status, answer


def cold_weight(port: int, household_id: str, cookie: str) -> tuple[int, int]:
    """Bytes on the wire for a first visit to one household page: the page and what it links."""
    browser = {"Cookie": cookie, "Accept-Encoding": "gzip, deflate, br"}
    status, page = _raw_get(port, f"/web/households/{household_id}", browser)
    if status != 200:
        raise RuntimeError(f"household page: HTTP {status}")
    body = page.split(b"\r\n\r\n", 1)[1]
    if b"Program decisions" not in body and b"gzip" not in page[:2000].lower():
        raise RuntimeError("the household page carries no program decisions")
    linked = re.findall(rb'<(?:link[^>]+href|script[^>]+src|img[^>]+src)="(/[^"]+)"', body)
    total, requests = len(page), 1
    for path in linked:
        status, answer = _raw_get(port, path.decode(), browser)
        if status != 200:
            raise RuntimeError(f"{path.decode()}: HTTP {status}")
        total, requests = total + len(answer), requests + 1
    return total, requests


def _cpu_seconds(server_group: int) -> tuple[float, float]:
    """CPU time so far of the server's process group, and of PostgreSQL's processes."""
    server = database = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        ticks = int(fields[11]) + int(fields[12])
        if int(fields[2]) == server_group:
            server += ticks
        elif command.startswith(b"postgres"):
            database += ticks
    hertz = os.sysconf("SC_CLK_TCK")
    return server / hertz, database / hertz


def measure(args, url: str, cookie: str, sample: list[str], pythonpath: str | None) -> dict:
    """One server (the current code, or the baseline's with its `src` first on PYTHONPATH):
    its page's weight cold, a warm-up, `--runs` measured runs, then one connection alone."""
    ids_file = WORK / "household_ids.txt"
    env = {
        "SIJILL_DATABASE_URL": url,
        "SIJILL_HOST": "127.0.0.1",
        "SIJILL_PORT": str(args.port),
        "SIJILL_KEY_FILE": str(BENCH_KEY_FILE),
        # Where bench_targeting.py's runs keep their feature snapshots.
        "SIJILL_WORK_DIR": str(TARGETING_WORK / "work"),
    }
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    command = [str(SIJILL), "serve", "--workers", str(args.workers)]
    server = launch_server(command, {**os.environ, **env}, args.port, WORK / "server.log")
    try:
        weight, requests = cold_weight(args.port, sample[0], cookie)
        print(f"household page cold: {weight / 1024:.1f} KB in {requests} responses", flush=True)
        wrk_args = [str(ids_file), str(WORK / "cookie.txt")]

        def get(seconds: int, connections: int = args.connections, warm_up=False) -> dict:
            result = run_wrk(args.port, "web_get.lua", wrk_args, 1, connections, seconds)
            if result["non2xx"] or (result["socket_errors"] and not warm_up):
                raise RuntimeError(f"responses outside 2xx or socket errors:\n{result['output']}")
            return result

        # Warm-up: caches, connection pools, catalogs, each worker's first snapshot checks.
        warm = get(max(5, args.duration // 2), warm_up=True)
        print(f"warm-up: {warm['rps']:,.0f} req/s, {warm['socket_errors']} timeouts", flush=True)
        runs = []
        server_before, database_before = _cpu_seconds(server.pid)
        for number in range(1, args.runs + 1):
            runs.append(get(args.duration))
            last = runs[-1]
            print(
                f"run {number}: {last['rps']:,.0f} req/s, p50 {last['p50']:.1f} ms, "
                f"p99 {last['p99']:.1f} ms",
                flush=True,
            )
        server_after, database_after = _cpu_seconds(server.pid)
        pages = sum(r["requests"] for r in runs)
        # One request at a time: what a page costs the server with no queue in front of it.
        alone = get(args.duration, connections=1)
        print(f"one connection: p50 {alone['p50']:.1f} ms, p99 {alone['p99']:.1f} ms", flush=True)
    finally:
        stop_server(server)
    return {
        "runs": runs,
        "alone": alone,
        "weight": weight,
        "requests": requests,
        "server_ms": 1000 * (server_after - server_before) / pages,
        "database_ms": 1000 * (database_after - database_before) / pages,
    }


def _summary(results: list[dict]) -> dict:
    """Medians over every measured run of one code (all rounds)."""
    runs = [run for result in results for run in result["runs"]]
    return {
        "rps": median([r["rps"] for r in runs]),
        "p50": median([r["p50"] for r in runs]),
        "p99": median([r["p99"] for r in runs]),
        "alone_p50": median([r["alone"]["p50"] for r in results]),
        "alone_p99": median([r["alone"]["p99"] for r in results]),
        "alone_rps": median([r["alone"]["rps"] for r in results]),
        "server_ms": median([r["server_ms"] for r in results]),
        "database_ms": median([r["database_ms"] for r in results]),
        "kb": results[-1]["weight"] / 1024,
        "requests": results[-1]["requests"],
        "runs": runs,
    }


def _baseline_path(folder: str) -> tuple[str, str]:
    """The baseline's `src` (for PYTHONPATH) and its commit, from a checkout of it."""
    import subprocess

    source = Path(folder).resolve() / "src"
    if not (source / "sijill").is_dir():
        raise SystemExit(f"--baseline {folder}: no src/sijill there (give a git worktree)")
    commit = subprocess.run(
        ["git", "-C", folder, "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return str(source), commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8642)
    parser.add_argument(
        "--baseline",
        help="a checkout (git worktree) of the code to compare with: served in turn with the "
        "current code, round by round on the same registry",
    )
    parser.add_argument("--rounds", type=int, default=2, help="with --baseline: turns of each")
    args = parser.parse_args()
    url = args.database_url
    WORK.mkdir(parents=True, exist_ok=True)
    households, sample = paid_households(url, SAMPLE)
    decisions = decisions_per_page(url, sample[:200])
    rewritten = relayout_snapshots(url)
    if rewritten:
        print(f"feature snapshot(s) {rewritten} rewritten sorted by household", flush=True)
    (WORK / "household_ids.txt").write_text("\n".join(sample) + "\n")
    token = bench_user(url, BENCH_KEY_FILE, f"bench-web-{int(time.time())}", "administrator")
    cookie = f"sijill_access={token}"
    (WORK / "cookie.txt").write_text(cookie + "\n")
    baseline, current = [], []
    if args.baseline:
        source, commit = _baseline_path(args.baseline)
        for round_number in range(1, args.rounds + 1):
            print(f"round {round_number}: baseline {commit}", flush=True)
            baseline.append(measure(args, url, cookie, sample, source))
            print(f"round {round_number}: current code", flush=True)
            current.append(measure(args, url, cookie, sample, None))
    else:
        current.append(measure(args, url, cookie, sample, None))
    now = _summary(current)
    met = now["p99"] < TARGET_P99_MS and now["kb"] < TARGET_KB
    database = urlsplit(url).path.lstrip("/")
    options = [("runs", args.runs), ("duration", args.duration), ("connections", args.connections)]
    if args.baseline:
        options += [("baseline", f"<worktree of {commit}>"), ("rounds", args.rounds)]
    lines = [
        f"`GET /web/households/{{id}}` on the {households:,}-household PostgreSQL registry "
        f"`{database}` (each sampled page explains {decisions:.1f} program decisions on "
        "average, each from its run's feature snapshot, and shows an entitlement and a "
        f"payment), `sijill serve --workers {args.workers}`, an administrator's session "
        f"cookie, `wrk -t1 -c{args.connections} -d{args.duration}s --latency` from the same "
        f"machine, {len(sample):,} households picked at random; medians of the runs after a "
        "warm-up.",
        "",
        "| code | req/s | p50 | p99 | one connection p50 / p99 | CPU per page: server, "
        "PostgreSQL | page cold (HTML + CSS, on the wire) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [("current", now)]
    if args.baseline:
        rows.insert(0, (f"baseline {commit}", _summary(baseline)))
    for name, figures in rows:
        lines.append(
            f"| {name} | {figures['rps']:,.0f} | {figures['p50']:.1f} ms | "
            f"{figures['p99']:.1f} ms | {figures['alone_p50']:.1f} / {figures['alone_p99']:.1f} "
            f"ms | {figures['server_ms']:.1f} ms, {figures['database_ms']:.1f} ms | "
            f"{figures['kb']:.1f} KB in {figures['requests']} responses |"
        )
    lines += [
        "",
        f"Targets p99 < {TARGET_P99_MS:.0f} ms at {args.connections} connections and "
        f"< {TARGET_KB:.0f} KB cold: **{'met' if met else 'not met'}**.",
        f"CPU per page: over the measured runs, from /proc ({os.cpu_count()} cores in all, "
        "wrk's included).",
    ]
    for name, figures in rows:
        lines.append(
            f"Runs of {name} (req/s, p50/p99 ms): "
            + "; ".join(f"{r['rps']:,.0f}, {r['p50']:.1f}/{r['p99']:.1f}" for r in figures["runs"])
        )
    command = "python bench/bench_web.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in options
    )
    record("Web: the household page", command, lines)
    print(
        f"p50 {now['p50']:.1f} ms, p99 {now['p99']:.1f} ms, {now['rps']:,.0f} req/s, "
        f"{now['kb']:.1f} KB cold"
    )


if __name__ == "__main__":
    main()
