"""What authentication and the audit trail cost the API: the same 1,000,000-household PostgreSQL
registry served by the code now, by the same code with auth and audit off, and by the code
before security, in the same run.

    .venv/bin/python bench/bench_security.py [--source sijill_bench] [--runs 3] [--duration 20]

- The registry: a copy of `--source` (`CREATE DATABASE sijill_bench_security TEMPLATE ...`; the
  1M registry bench/bench_import.py leaves, at schema revision 0001), brought to the current
  schema with `sijill db upgrade` (timed: migration 0004 encrypts every person's identifiers).
  The keyring is `/tmp/sijill-bench/security/keys.json`, created by the upgrade. The copy is
  dropped at the end (`--keep` keeps it; `--reuse` serves a copy a `--keep` run left).
- Without: the foundation, commit 380568f (no tokens, no audit, identifiers in clear), checked
  out with `git worktree add` and run by the same interpreter (`PYTHONPATH=<tree>/src`, its
  app factory served by the working tree's sijill/serving.py: its `sijill serve` would first
  migrate, and its migrations stop at 0001); it answers a GET without a token. Its ORM
  ignores the new tables and columns. Migration 0004 dropped the plain national-ID index its
  duplicate check uses, so that index is rebuilt on the copy (`ix_person_national_id`, as
  revision 0001 had it): every server then maintains it on every POST, which charges the new
  code a little more.
- With: the working tree (`python -m sijill serve --workers 2`): every request needs a bearer
  token, GET/PUT/POST append hash-chained audit records, identifiers are AES-GCM encrypted.
  Users are made through the service layer, their access tokens minted with a 240-minute life.
- Off: the working tree with authentication and audit switched off (bench/security_off.py):
  the cost of auth + audit alone, on the same code, encryption included on both sides.

One server at a time (a stalled server hoards database connections), started afresh for
each run and warmed 5 s. Three routes, each `wrk -t1 -c32 -d20s --latency --timeout 60s`
(bench/api_get.lua, bench/api_post.lua; every server gets the same requests, the
token header included), and the first again at 8 connections:

- `GET /households/{id}` as a national administrator, ~10,000 IDs sampled over the registry;
- `GET /households/{id}` as a registrar of one district, ~10,000 IDs of that district's
  households (the district with the most households);
- `POST /households` as the administrator: 4 members, fresh national IDs (the baseline's
  households are written in clear into the encrypted columns; GET samples leave them out).

Per route the three alternate `--runs` times; figures are medians. The audit records
appended during the runs are counted from the chain's head, and `sijill audit verify` runs
at the end as an auditor service account. Before measuring, the script waits (up to 25
minutes, polling every 30 s) for a load average below 1.5 and no other bench/bench_*.py
running, and says if it measured on a busy machine. `--profile` adds a cProfile of one
new-code worker under a short GET and POST load at 8 connections.
"""

import argparse
import hashlib
import io
import json
import math
import os
import pstats
import random
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
from bench_api import (
    BENCH,
    MEMBERS,
    _ms,
    draw_candidates,
    household_bodies,
    launch_server,
    registry_size,
    sample_household_ids,
    stop_server,
)
from common import (
    PG_ADMIN_URL,
    PYTHON,
    ROOT,
    SIJILL,
    Run,
    bench_user,
    median,
    record,
    run_measured,
)

WORK = Path("/tmp/sijill-bench/security")
KEY_FILE = WORK / "keys.json"
BASELINE_COMMIT = "380568f"
TARGET = "sijill_bench_security"
TOKEN_MINUTES = 240
WORKERS = 2
SAMPLE = 10_000
MAX_LOAD = 1.5
SETTLE = 2.0  # seconds after each wrk run


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def tree_fingerprint() -> str:
    """The working tree's code as the new server loads it: a digest of src/ and its newest
    change (other people may be editing the tree while this runs)."""
    digest = hashlib.sha256()
    newest = 0.0
    for path in sorted((ROOT / "src").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
        newest = max(newest, path.stat().st_mtime)
    changed = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(newest))
    return f"src/ sha256 {digest.hexdigest()[:12]}, last changed {changed}"


def pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _admin(sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as admin:
        cursor = admin.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def _query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(_libpq(url)) as connection:
        cursor = connection.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


# --- the machine ----------------------------------------------------------------------------


def other_benchmarks() -> list[str]:
    """Command lines of bench/bench_*.py processes other than this one."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in args if a]
        line = " ".join(words)
        bench = any(Path(w).name.startswith("bench_") and w.endswith(".py") for w in words)
        if bench and "bench_security.py" not in line:
            found.append(line[:120])
    return found


def wait_until_quiet(max_wait: float, poll: float = 30.0) -> dict:
    """Wait for a load average below MAX_LOAD and no other benchmark; the state measured in."""
    started = time.monotonic()
    while True:
        load = os.getloadavg()[0]
        others = other_benchmarks()
        quiet = load < MAX_LOAD and not others
        waited = time.monotonic() - started
        if quiet or waited >= max_wait:
            return {"quiet": quiet, "load": load, "others": others, "waited": waited}
        print(f"waiting for a quiet machine: load {load:.2f}, others {others}", flush=True)
        time.sleep(poll)


# --- the registry ---------------------------------------------------------------------------


def copy_and_upgrade(source: str, target: str) -> dict:
    """A copy of `source` at the current schema; the seconds the copy and the upgrade took."""
    connected = _admin("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (source,))
    if connected[0][0]:
        raise SystemExit(f"{connected[0][0]} connection(s) to {source}: it cannot be copied now")
    _admin(f"DROP DATABASE IF EXISTS {target} WITH (FORCE)")
    started = time.perf_counter()
    _admin(f"CREATE DATABASE {target} TEMPLATE {source}")
    copied = time.perf_counter() - started
    url = pg_url(target)
    revision = _query(url, "SELECT version_num FROM alembic_version")[0][0]
    load = os.getloadavg()[0]
    # The upgrade prints the first administrator's one-time password: it is not kept.
    upgrade = run_measured(
        [str(SIJILL), "db", "upgrade"],
        env={"SIJILL_DATABASE_URL": url, "SIJILL_KEY_FILE": str(KEY_FILE)},
    )
    started = time.perf_counter()
    _query(url, "CREATE INDEX ix_person_national_id ON person (national_id)")
    indexed = time.perf_counter() - started
    # Migration 0004 rewrote every person: cleaned up now, rather than by autovacuum in the
    # middle of the first runs (it was, and it slowed whichever server was measured then).
    started = time.perf_counter()
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE)")
    vacuumed = time.perf_counter() - started
    facts = {
        "source": source,
        "from_revision": revision,
        "copy_seconds": copied,
        "upgrade_seconds": upgrade.seconds,
        "upgrade_peak_mb": upgrade.peak_rss_mb,
        "upgrade_load": load,
        "index_seconds": indexed,
        "vacuum_seconds": vacuumed,
    }
    (WORK / "upgrade.json").write_text(json.dumps(facts))
    return facts


def pick_district(url: str) -> tuple[str, int]:
    """The district holding the most households (those of its localities), and how many."""
    code, count = _query(
        url,
        "SELECT d.code, count(*) FROM household h JOIN area l ON l.id = h.area_id "
        "JOIN area d ON d.id = l.parent_id WHERE d.level = 'district' "
        "GROUP BY d.code ORDER BY count(*) DESC, d.code LIMIT 1",
    )[0]
    return code, count


def district_household_ids(url: str, district: str, count: int) -> list[str]:
    rows = _query(
        url,
        "WITH RECURSIVE below AS ("
        " SELECT id FROM area WHERE code = %s"
        " UNION ALL SELECT a.id FROM area a JOIN below b ON a.parent_id = b.id) "
        "SELECT h.id FROM household h WHERE h.area_id IN (SELECT id FROM below) "
        "ORDER BY md5(h.id::text) LIMIT %s",
        (district, count * 2),
    )
    return [str(row[0]) for row in rows]


def without_clear_writes(url: str, ids: list[str], count: int) -> list[str]:
    """Leave out households the baseline wrote (identifiers in clear: no blind index)."""
    clear = {
        str(row[0])
        for row in _query(
            url,
            "SELECT DISTINCT m.household_id FROM membership m JOIN person p ON p.id = m.person_id "
            "WHERE m.household_id = ANY(%s) AND p.national_id IS NOT NULL "
            "AND p.national_id_index IS NULL",
            ([int(i) for i in ids],),
        )
    }
    return [i for i in ids if i not in clear][:count]


def fresh_national_ids(url: str, keyring, count: int, rng: random.Random, used: set) -> list:
    """Valid numbers nobody holds: not in clear (the baseline's writes) nor by blind index."""
    chosen: list[str] = []
    while len(chosen) < count:
        candidates = draw_candidates((count - len(chosen)) * 2, rng, used)
        indexes = keyring.blind_index_many(candidates)
        held = {
            row[0]
            for row in _query(
                url,
                "SELECT national_id FROM person WHERE national_id = ANY(%s)",
                (candidates,),
            )
        }
        by_index = dict(zip(indexes, candidates, strict=True))
        held |= {
            by_index[row[0]]
            for row in _query(
                url,
                "SELECT national_id_index FROM person WHERE national_id_index = ANY(%s)",
                (indexes,),
            )
        }
        chosen += [c for c in candidates if c not in held][: count - len(chosen)]
    return chosen


def audit_head(url: str) -> int:
    for attempt in range(10):  # the servers' pools may hold every connection slot a moment
        try:
            return _query(url, "SELECT seq FROM audit_head WHERE id = 1")[0][0]
        except psycopg.OperationalError:
            if attempt == 9:
                raise
            time.sleep(3)
    raise AssertionError("unreachable")


def make_users(url: str, district: str) -> dict:
    """An administrator, a registrar of `district` and an auditor service account, made through
    the service layer; the first two's access tokens and the auditor's key."""
    from sijill.core.settings import Settings
    from sijill.security.keys.keyring import install_keyring

    settings = Settings(database_url=url, key_file=KEY_FILE, _env_file=None)
    out: dict = {"keyring": install_keyring(settings)}
    stamp = time.strftime("%H%M%S")
    wanted = {
        "admin": ("administrator", None, False),
        "registrar": ("registrar", district, False),
        "auditor": ("auditor", None, True),
    }
    for key, (role, area, service) in wanted.items():
        out[key] = bench_user(
            url,
            KEY_FILE,
            f"bench-{key}-{stamp}",
            role,
            area,
            service=service,
            token_minutes=TOKEN_MINUTES,
        )
        if not service:
            (WORK / f"token-{key}.txt").write_text(out[key] + "\n")
    return out


# --- the servers ----------------------------------------------------------------------------


# The baseline is served the way the working tree serves (sijill/serving.py: one socket per
# worker), not by its own uvicorn --workers, whose shared socket lets one worker take every
# connection of a run in some runs and not others: which would decide the comparison.
# serving.py imports nothing of Sijill, so the working tree's copy serves the old app.
BASELINE_SERVE = (
    "import sys; sys.path.append(sys.argv[2]); import serving; "
    "from sijill.core.settings import get_settings; settings = get_settings(); "
    "serving.run_workers('sijill.api:app_from_environment', settings.host, settings.port, "
    "int(sys.argv[1]), access_log=False)"
)


# The working tree with auth and audit switched off (bench/security_off.py), served alike.
OFF_SERVE = (
    "import sys; sys.path.insert(0, sys.argv[2]); from sijill.serving import run_workers; "
    "from sijill.core.settings import get_settings; settings = get_settings(); "
    "run_workers('security_off:app', settings.host, settings.port, int(sys.argv[1]), "
    "access_log=False)"
)
SIDES = ("without", "off", "with")
SIDE_NAMES = {
    "without": f"without ({BASELINE_COMMIT})",
    "off": "off (working tree, auth + audit off)",
    "with": "with (working tree)",
}


def start(
    name: str, url: str, port: int, pythonpath: str | None, append: bool = False
) -> subprocess.Popen:
    """`sijill serve` of the code in `pythonpath` (None: the working tree's; name "off": the
    working tree with auth and audit off)."""
    env = {
        **os.environ,
        "SIJILL_DATABASE_URL": url,
        "SIJILL_HOST": "127.0.0.1",
        "SIJILL_PORT": str(port),
        "SIJILL_KEY_FILE": str(KEY_FILE),
        "SIJILL_ACCESS_TOKEN_MINUTES": str(TOKEN_MINUTES),
    }
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    if pythonpath:
        # The baseline's `sijill serve` first upgrades the schema, and its migrations stop at
        # 0001 (it refuses a database at 0004): call what the command calls after that.
        command = ["-c", BASELINE_SERVE, str(WORKERS), str(ROOT / "src" / "sijill")]
    elif name == "off":
        command = ["-c", OFF_SERVE, str(WORKERS), str(BENCH)]
    else:
        command = ["-m", "sijill", "serve", "--workers", str(WORKERS)]
    log_path = WORK / f"server-{name}.log"
    return launch_server([str(PYTHON), *command], env, port, log_path, append=append)


def _call(port: int, method: str, path: str, token: str | None, body: str | None = None):
    headers = {"Content-Type": "application/json"} if body else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body.encode() if body else None,
        headers=headers,
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, error.read()[:500]


def check_server(port: int, secured: bool, tokens: dict, ids: dict, body: str, nids: list):
    """By hand, before any load: the right code answers, and every route answers 2xx."""
    household = ids["admin"][0]
    status, _ = _call(port, "GET", f"/households/{household}", None)
    expected = 401 if secured else 200
    if status != expected:
        raise RuntimeError(f"GET without a token on port {port}: {status}, expected {expected}")
    for who in ("admin", "registrar"):
        status, answer = _call(port, "GET", f"/households/{ids[who][0]}", tokens[who])
        if status != 200 or not answer.get("members"):
            raise RuntimeError(f"GET as {who} on port {port}: {status} {answer}")
    for slot, number in enumerate(nids):
        body = body.replace(f"__NID{slot}__", number)
    status, answer = _call(port, "POST", "/households", tokens["admin"], body)
    if status != 201 or len(answer["members"]) != MEMBERS:
        raise RuntimeError(f"POST on port {port}: {status} {answer}")


# --- load -----------------------------------------------------------------------------------


def run_wrk(port: int, script: str, args: list[str], connections: int, seconds: int) -> dict:
    """bench_api's wrk run (-t1 --latency), with a 60 s request timeout instead of wrk's 2 s,
    so that a stalled request counts in the latency percentiles instead of vanishing from
    them as a socket timeout; a run in which no request completed has p50/p99 = inf."""
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "60s",
        "--latency",
        "-s",
        str(BENCH / script),
        f"http://127.0.0.1:{port}",
        "--",
        *args,
    ]
    out = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 120, check=True
    ).stdout
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    exhausted = re.search(r"^EXHAUSTED (\d+)", out, re.M)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    if not requests:  # wrk prints zero percentiles when nothing completed
        latency = {}
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": requests,
        "p50": _ms(latency["50"]) if "50" in latency else math.inf,
        "p99": _ms(latency["99"]) if "99" in latency else math.inf,
        "non2xx": int(re.search(r"^NON2XX (\d+)", out, re.M).group(1)),
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
        "exhausted": int(exhausted.group(1)) if exhausted else 0,
        "output": out,
    }


def wait_healthy(port: int, limit: float = 90.0) -> float:
    """Seconds until the server answers /health again (a stalled event loop does not)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    return time.monotonic() - started


# --- profiling ------------------------------------------------------------------------------


PROFILED = """
import cProfile, os, signal, sys
import uvicorn
profile = cProfile.Profile()
def dump(*_):
    profile.disable()
    profile.dump_stats(sys.argv[1])
    os._exit(0)
# uvicorn restores this handler when it has shut down, then raises the signal again.
signal.signal(signal.SIGTERM, dump)
profile.enable()
uvicorn.run("sijill.api:app_from_environment", factory=True, host="127.0.0.1",
            port=int(sys.argv[2]), workers=1, access_log=False, log_level="warning")
dump()
"""


def profile_one_worker(url: str, port: int, wrk_args: dict, connections: int, seconds: int) -> str:
    """cProfile of a single new-code worker under GET then POST load; top functions by time."""
    env = {
        **os.environ,
        "SIJILL_DATABASE_URL": url,
        "SIJILL_KEY_FILE": str(KEY_FILE),
        "SIJILL_ACCESS_TOKEN_MINUTES": str(TOKEN_MINUTES),
    }
    env.pop("PYTHONPATH", None)
    report = []
    for route, (script, args) in wrk_args.items():
        stats_file = WORK / f"profile-{route}.pstats"
        server = subprocess.Popen(
            [str(PYTHON), "-c", PROFILED, str(stats_file), str(port)],
            env=env,
            cwd=WORK,
            start_new_session=True,
            stdout=(WORK / "server-profile.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    time.sleep(0.2)
            result = run_wrk(port, script, args(), connections, seconds)
            wait_healthy(port)  # a stalled loop would not shut down in time to write stats
        finally:
            stop_server(server)
        out = io.StringIO()
        stats = pstats.Stats(str(stats_file), stream=out)
        stats.sort_stats("cumulative").print_stats(45)
        report.append(
            f"== {route}: {result['rps']:,.0f} req/s on 1 profiled worker ==\n" + out.getvalue()
        )
    text = "\n".join(report)
    (WORK / "profile.txt").write_text(text)
    return text


# --- the run --------------------------------------------------------------------------------


def ms(value: float) -> str:
    return "no answer" if math.isinf(value) else f"{value:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default="sijill_bench", help="the registry to copy")
    parser.add_argument("--target", default=TARGET)
    parser.add_argument("--reuse", action="store_true", help="serve an upgraded --keep copy")
    parser.add_argument("--keep", action="store_true", help="do not drop the copy at the end")
    parser.add_argument("--baseline-tree", type=Path, default=Path("/tmp/sijill-baseline"))
    parser.add_argument("--port", type=int, default=8771, help="baseline; new code on +1")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5, help="seconds, after each start")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--low-connections", type=int, default=8, help="GET admin again at this load; 0: not"
    )
    parser.add_argument("--quiet-wait", type=float, default=25 * 60, help="seconds at most")
    parser.add_argument(
        "--routes", help="comma-separated names of the routes to measure, e.g. 'GET admin c8'"
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    url = pg_url(args.target)

    made_tree = False
    if not (args.baseline_tree / "src" / "sijill").is_dir():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(args.baseline_tree), BASELINE_COMMIT],
            cwd=ROOT,
            check=True,
        )
        made_tree = True
    servers: list[subprocess.Popen] = []
    try:
        if args.reuse:
            facts = json.loads((WORK / "upgrade.json").read_text())
        else:
            facts = copy_and_upgrade(args.source, args.target)
        print(f"registry ready: {facts}", flush=True)
        households, persons = registry_size(url)
        district, in_district = pick_district(url)
        users = make_users(url, district)
        keyring = users["keyring"]
        tokens = {"admin": users["admin"], "registrar": users["registrar"]}
        ids = {
            "admin": without_clear_writes(url, sample_household_ids(url, SAMPLE * 2), SAMPLE),
            "registrar": without_clear_writes(
                url, district_household_ids(url, district, SAMPLE), SAMPLE
            ),
        }
        for who, chosen in ids.items():
            (WORK / f"ids-{who}.txt").write_text("\n".join(chosen) + "\n")
        rng = random.Random(int(time.time()))
        bodies = household_bodies(url, 1000, rng)
        (WORK / "bodies.jsonl").write_text("\n".join(bodies) + "\n")
        used: set[str] = set()

        ports = {"without": args.port, "with": args.port + 1, "off": args.port + 3}
        tree_src = str(args.baseline_tree / "src")
        servers.append(start("without", url, ports["without"], tree_src))
        fingerprint = tree_fingerprint()
        servers.append(start("with", url, ports["with"], None))
        servers.append(start("off", url, ports["off"], None))
        for side in SIDES:
            nids = fresh_national_ids(url, keyring, MEMBERS, rng, used)
            check_server(ports[side], side != "without", tokens, ids, bodies[0], nids)
        print(f"checked the three servers; registrar district {district}", flush=True)
        for server in servers:
            stop_server(server)
        servers.clear()

        def serving(side: str) -> subprocess.Popen:
            """One server at a time: a stalled one hoards database connections (PostgreSQL
            allows 100), which would fail the other's requests."""
            pythonpath = tree_src if side == "without" else None
            servers.append(start(side, url, ports[side], pythonpath, append=True))
            return servers[-1]

        def post_args(seconds: int) -> list[str]:
            # Enough numbers for 1,500 households/s; a run that runs out says so (EXHAUSTED).
            nids = fresh_national_ids(url, keyring, MEMBERS * 1_500 * seconds, rng, used)
            (WORK / "nids.txt").write_text("\n".join(nids) + "\n")
            return [str(WORK / "bodies.jsonl"), str(WORK / "nids.txt"), "1", str(tok("admin"))]

        def tok(who: str) -> Path:
            return WORK / f"token-{who}.txt"

        def get_args(who: str):
            return lambda _: [str(WORK / f"ids-{who}.txt"), str(tok(who))]

        low = args.low_connections
        routes = {
            "GET admin": ("api_get.lua", get_args("admin"), args.connections),
            "GET registrar": ("api_get.lua", get_args("registrar"), args.connections),
            "POST admin": ("api_post.lua", post_args, args.connections),
        }
        if low:
            routes[f"GET admin c{low}"] = ("api_get.lua", get_args("admin"), low)
        if args.routes:
            chosen = [name.strip() for name in args.routes.split(",")]
            unknown = [name for name in chosen if name not in routes]
            if unknown:
                parser.error(f"unknown routes {unknown}; the routes are {list(routes)}")
            routes = {name: routes[name] for name in chosen}

        machine_state = wait_until_quiet(args.quiet_wait)
        print(f"machine: {machine_state}", flush=True)
        started_at = audit_head(url)
        results: dict = {}
        appended: dict = {}
        stalled = dict.fromkeys(SIDES, 0.0)
        for route, (script, make_args, connections) in routes.items():
            runs: dict = {side: [] for side in SIDES}
            appended[route] = {"records": 0, "requests": 0, "during_baseline": 0}

            def load(route: str, script: str, make_args, connections: int, side: str):
                server = serving(side)
                warm = run_wrk(
                    ports[side], script, make_args(args.warmup), connections, args.warmup
                )
                stalled[side] = max(stalled[side], wait_healthy(ports[side]))
                seconds = args.duration
                before = audit_head(url)
                result = run_wrk(ports[side], script, make_args(seconds), connections, seconds)
                # Requests still in flight when wrk stops are answered (and audited) after it.
                time.sleep(SETTLE)
                after = audit_head(url)
                if side == "with":
                    appended[route]["records"] += after - before
                    appended[route]["requests"] += result["requests"]
                else:
                    appended[route]["during_baseline"] += after - before  # must stay 0
                print(
                    f"{route} {side:7}: {result['rps']:,.0f} req/s, p50 {result['p50']:.1f} ms, "
                    f"p99 {result['p99']:.1f} ms, non-2xx {result['non2xx']}, socket errors "
                    f"{result['socket_errors']}, audit +{after - before}",
                    flush=True,
                )
                if result["non2xx"] or result["exhausted"]:
                    print(result["output"][-1500:], flush=True)
                stop_server(server)
                servers.remove(server)
                result["warm_rps"] = warm["rps"]
                return result

            for _ in range(args.runs):
                for side in SIDES:
                    runs[side].append(load(route, script, make_args, connections, side))
            results[route] = runs
            (WORK / f"wrk-{route.replace(' ', '-').lower()}.txt").write_text(
                "\n\n".join(r["output"] for side in runs.values() for r in side)
            )
        ended_load = os.getloadavg()[0]
        pool_timeouts = (WORK / "server-with.log").read_text().count("TimeoutError")
        appended_total = audit_head(url) - started_at
        for server in servers:
            stop_server(server)
        servers.clear()

        profile = None
        if args.profile:
            wrk_args = {
                "GET admin": ("api_get.lua", lambda: get_args("admin")(0)),
                "POST admin": ("api_post.lua", lambda: post_args(10)),
            }
            profile = profile_one_worker(url, args.port + 2, wrk_args, low or 8, 10)
            print(profile, flush=True)

        try:
            verify_run = run_measured(
                [str(SIJILL), "audit", "verify"],
                env={
                    "SIJILL_DATABASE_URL": url,
                    "SIJILL_KEY_FILE": str(KEY_FILE),
                    "SIJILL_SERVICE_KEY": users["auditor"],
                },
            )
        except RuntimeError as failure:  # exit 1: the chain is broken; say so, do not stop
            verify_run = Run(float("nan"), float("nan"), str(failure))
        verdict = verify_run.output.strip().splitlines()[-1]
        chain_length = audit_head(url)
        print(f"audit verify: {verify_run.seconds:.1f} s, {verdict}", flush=True)
        shared_buffers = _query(url, "SHOW shared_buffers")[0][0]
    finally:
        for server in servers:
            stop_server(server)
        if not args.keep:
            _admin(f"DROP DATABASE IF EXISTS {args.target} WITH (FORCE)")
        if made_tree:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(args.baseline_tree)], cwd=ROOT
            )

    def m(route: str, side: str, key: str) -> float:
        return median([r[key] for r in results[route][side]])

    def added(route: str, reference: str) -> tuple[float, float]:
        return tuple(m(route, "with", key) / m(route, reference, key) - 1 for key in ("p50", "p99"))

    def percent(x: float) -> str:
        return "n/a" if math.isinf(x) or math.isnan(x) else f"{x * 100:+.0f}%"

    table = [
        "| route | code | req/s | p50 | p99 | added p50, p99: vs off | vs 380568f | non-2xx "
        "| socket errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    worst = {"off": 0.0, "without": 0.0}
    for route in routes:
        connections = routes[route][2]
        label = {
            "GET admin": "`GET /households/{id}`, national administrator",
            "GET registrar": f"`GET /households/{{id}}`, registrar of district {district}",
            "POST admin": f"`POST /households` ({MEMBERS} members), administrator",
        }.get(route.split(" c")[0], route) + f", {connections} connections"
        for side in SIDES:
            runs = results[route][side]
            versus = {"off": "", "without": ""}
            if side == "with":
                for reference in versus:
                    p50, p99 = added(route, reference)
                    if connections == args.connections:
                        worst[reference] = max(worst[reference], p50, p99)
                    versus[reference] = f"{percent(p50)}, {percent(p99)}"
            non2xx = sum(r["non2xx"] for r in runs)
            requests = sum(r["requests"] for r in runs)
            socket = sum(r["socket_errors"] for r in runs)
            table.append(
                f"| {label} | {SIDE_NAMES[side]} | {m(route, side, 'rps'):,.0f} | "
                f"{ms(m(route, side, 'p50'))} | {ms(m(route, side, 'p99'))} | "
                f"{versus['off']} | {versus['without']} | {non2xx:,} of {requests:,} | "
                f"{socket:,} |"
            )
    state = (
        f"quiet (load average {machine_state['load']:.2f} at the start, "
        f"{ended_load:.2f} at the end)"
        if machine_state["quiet"]
        else f"**not quiet**: load average {machine_state['load']:.2f} at the start after "
        f"waiting {machine_state['waited'] / 60:.0f} min, {ended_load:.2f} at the end; other "
        f"benchmarks running: {'; '.join(machine_state['others']) or 'none'}"
    )
    audit_lines = [
        f"- Audit: {appended_total:,} records appended during the runs (warm-ups included); "
        "in the measured runs, "
        + "; ".join(
            f"{route}: {a['records']:,} records for {a['requests']:,} requests wrk completed"
            for route, a in appended.items()
        )
        + f". `sijill audit verify` as an auditor service account over the whole chain "
        f"({chain_length:,} records): {verify_run.seconds:.1f} s, peak "
        f"{verify_run.peak_rss_mb:.0f} MB: `{verdict}`.",
    ]
    lines = [
        f"Registry: a copy of `{facts['source']}` ({households:,} households, {persons:,} "
        f"persons at the start; schema revision {facts['from_revision']}) on PostgreSQL 15 "
        f"(shared_buffers {shared_buffers}), brought to the current schema by `sijill db "
        f"upgrade` in **{facts['upgrade_seconds'] / 60:.1f} min** (peak "
        f"{facts['upgrade_peak_mb']:.0f} MB; load average {facts['upgrade_load']:.1f} when it "
        f"started; the copy itself {facts['copy_seconds']:.0f} s). For the baseline's "
        f"duplicate check the plain index on `person.national_id` is rebuilt on the copy "
        f"({facts['index_seconds']:.0f} s); every server maintains it on POST. Then "
        f"`VACUUM (ANALYZE)` ({facts.get('vacuum_seconds', float('nan')):.0f} s), so that "
        "autovacuum does not clean up the upgrade's rewritten rows during the first runs.",
        "",
        "Three servers: with, the working tree (bearer tokens, hash-chained audit of every "
        "read and write, GET's audit group-committed, AES-GCM identifiers; "
        f"{fingerprint}); off, the same code with authentication and audit switched off by "
        "bench/security_off.py (any token taken unchecked for a national administrator's, no "
        "audit entry noted or written: what auth + audit cost, alone); without, commit "
        f"{BASELINE_COMMIT}, the foundation (no tokens, no audit, identifiers in clear, the "
        "registry code of its day). All three served by sijill/serving.py (the working "
        f"tree's: one SO_REUSEPORT socket per worker), {WORKERS} uvicorn workers on "
        "127.0.0.1, one server at a time; load "
        f"`wrk -t1 -cN -d{args.duration}s --latency --timeout 60s` on the same machine (2 "
        "cores shared by wrk, the server and PostgreSQL), the same requests to all three (token "
        "header included); the 60 s timeout, instead of wrk's 2 s, keeps stalled requests in "
        f"the percentiles. Each run starts its server afresh, warms it {args.warmup} s, then "
        f"measures; the three alternate, medians of {args.runs} runs each. Registrar: "
        f"district {district} "
        f"({in_district:,} households). Machine during the runs: {state}.",
        "",
        *table,
        "",
        f"Target: under 20% added latency at {args.connections} connections. Auth + audit "
        f"against the same code without them: **{'met' if worst['off'] < 0.20 else 'not met'}"
        f"** (worst {percent(worst['off'])}). Against the foundation code (which also lacks "
        "encryption and this session's other changes): "
        f"**{'met' if worst['without'] < 0.20 else 'not met'}** (worst "
        f"{percent(worst['without'])}).",
        "",
        f"- Stalls: before each run the script waits for /health; the longest wait was "
        f"{stalled['with']:.0f} s for the new server, {stalled['without']:.0f} s for the "
        f"baseline. The new server's log holds {pool_timeouts:,} connection-pool "
        "`TimeoutError`s (a request that waited 30 s for a database connection).",
        *audit_lines,
        "- Runs (req/s, p50/p99): "
        + " ".join(
            f"{route} {side}: "
            + "; ".join(
                f"{r['rps']:,.0f}, {ms(r['p50'])}/{ms(r['p99'])}" for r in results[route][side]
            )
            + "."
            for route in routes
            for side in SIDES
        ),
    ]
    if args.profile:
        lines.append(f"- Profile of one worker: {WORK / 'profile.txt'}.")
    print("\n".join(lines))
    if not args.no_record:
        command = "python bench/bench_security.py"
        if args.source != "sijill_bench":
            command += f" --source {args.source}"
        record("Security overhead", command, lines)


if __name__ == "__main__":
    sys.exit(main())
