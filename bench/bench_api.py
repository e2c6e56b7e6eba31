"""The REST API under load: `sijill serve --workers 2` on a 1,000,000-household PostgreSQL
registry, loaded with wrk from the same machine.

    .venv/bin/python bench/bench_api.py [--database-url URL] [--runs 3] [--duration 20]

The registry is the one bench/bench_import.py leaves behind (database `sijill_bench`); make one
with `python bench/bench_import.py` first, or point `--database-url` at another. The server is
a separate process (`sijill serve --workers 2`, access log off, its default) on 127.0.0.1; it is
stopped at the end, whatever happens.

- `GET /households/{id}`: ~10,000 household IDs sampled from the database; bench/api_get.lua
  picks one at random per request.
- `POST /households`: a new household of 4 members (head, spouse, two children) per request,
  in an existing locality, names drawn from the registry, every member with a fresh national
  ID valid under tr.tckimlik and held by nobody (bench/api_post.lua). Each POST adds a household
  to the registry.

Every request carries an administrator's bearer token (a user `bench-api-<time>` made through
the service layer), so reads and writes are authenticated and audited as in production. The
server uses the keyring the registry was imported with (/tmp/sijill-bench/keys.json, shared
with bench_import.py): with another one it would refuse to start.

Each is run `wrk -t1 -c32 -d20s --latency` (1 thread, 32 connections): a warm-up run, then
`--runs` measured runs; figures are medians. Responses outside 2xx are counted by the Lua
scripts and reported.
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

import psycopg
from common import BENCH_KEY_FILE, PG_ADMIN_URL, ROOT, SIJILL, bench_user, median, record

WORK = Path("/tmp/sijill-bench/api")
KEY_FILE = BENCH_KEY_FILE  # the registry's keyring, shared with bench_import.py
TOKEN_FILE = WORK / "token.txt"  # an administrator's access token, sent on every request
BENCH = ROOT / "bench"
DEFAULT_URL = PG_ADMIN_URL.rsplit("/", 1)[0] + "/sijill_bench"
MEMBERS = 4


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


# --- the registry ---------------------------------------------------------------------------


def registry_size(url: str) -> tuple[int, int]:
    with psycopg.connect(_libpq(url)) as connection:
        households = connection.execute("SELECT count(*) FROM household").fetchone()[0]
        persons = connection.execute("SELECT count(*) FROM person").fetchone()[0]
    return households, persons


def sample_household_ids(url: str, count: int) -> list[str]:
    """About `count` household IDs spread over the whole table (block sample, then random)."""
    with psycopg.connect(_libpq(url)) as connection:
        total = connection.execute("SELECT count(*) FROM household").fetchone()[0]
        percent = min(100.0, 100.0 * count * 3 / max(total, 1))
        rows = connection.execute(
            f"SELECT id FROM household TABLESAMPLE BERNOULLI ({percent}) REPEATABLE (1)"
        ).fetchall()
    ids = [str(row[0]) for row in rows]
    random.Random(1).shuffle(ids)
    return ids[:count]


def tckimlik(base: str) -> str:
    """A Turkish identity number from 9 digits (first non-zero): two check digits appended."""
    d = [int(c) for c in base]
    tenth = ((d[0] + d[2] + d[4] + d[6] + d[8]) * 7 - (d[1] + d[3] + d[5] + d[7])) % 10
    eleventh = (sum(d) + tenth) % 10
    return f"{base}{tenth}{eleventh}"


def draw_candidates(count: int, rng: random.Random, used: set[str]) -> list[str]:
    """`count` valid numbers not drawn before (added to `used`)."""
    candidates = []
    while len(candidates) < count:
        number = tckimlik(str(rng.randint(100_000_000, 999_999_999)))
        if number not in used:
            used.add(number)
            candidates.append(number)
    return candidates


def fresh_national_ids(url: str, count: int, rng: random.Random, used: set[str]) -> list[str]:
    """`count` valid numbers that no person in the registry holds and no earlier run drew."""
    from stdnum.tr import tckimlik as stdnum_tckimlik

    chosen: list[str] = []
    with psycopg.connect(_libpq(url)) as connection:
        while len(chosen) < count:
            candidates = draw_candidates((count - len(chosen)) * 2, rng, used)
            held = {
                row[0]
                for row in connection.execute(
                    "SELECT national_id FROM person WHERE national_id = ANY(%s)", (candidates,)
                )
            }
            chosen += [c for c in candidates if c not in held][: count - len(chosen)]
    assert all(stdnum_tckimlik.is_valid(n) for n in chosen[:100])
    return chosen


def household_bodies(url: str, count: int, rng: random.Random) -> list[str]:
    """`count` POST bodies: 4 members each, national IDs left as __NID0__ .. __NID3__."""
    from sijill.registry import codes

    with psycopg.connect(_libpq(url)) as connection:
        localities = [
            row[0] for row in connection.execute("SELECT code FROM area WHERE level = 'locality'")
        ]
        names = connection.execute(
            "SELECT given_name_ar, given_name_lat, sex, family_name_ar, family_name_lat "
            "FROM person TABLESAMPLE SYSTEM (1) REPEATABLE (2) "
            "WHERE given_name_ar IS NOT NULL AND given_name_lat IS NOT NULL "
            "AND family_name_ar IS NOT NULL AND family_name_lat IS NOT NULL LIMIT 5000"
        ).fetchall()
    by_sex = {"F": [n for n in names if n[2] == "F"], "M": [n for n in names if n[2] == "M"]}
    today = date.today()

    def person(relationship: str, sex: str, age: int, family, father, slot: int) -> dict:
        given = rng.choice(by_sex[sex])
        adult = age >= 18
        return {
            "relationship": relationship,
            "given_name_ar": given[0],
            "father_name_ar": father[0] if father else None,
            "family_name_ar": family[3],
            "given_name_lat": given[1],
            "father_name_lat": father[1] if father else None,
            "family_name_lat": family[4],
            "sex": sex,
            "birth_date": f"{today.year - age}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "marital_status": "married" if adult else "never_married",
            "nationality": "XSJ",
            "residency_status": "citizen",
            "national_id": {"type": "national_id", "number": f"__NID{slot}__"},
            "phone": f"+9627{rng.randint(70_000_000, 99_999_999)}" if adult else None,
            "wg_seeing": 1,
            "wg_hearing": 1,
            "wg_walking": rng.choice((1, 1, 1, 2)),
            "wg_cognition": 1,
            "wg_selfcare": 1,
            "wg_communication": 1,
            "education_level": rng.choice(codes.PERSON_CODES["education_level"])
            if adult
            else "primary",
            "enrolled": not adult,
            "employment_status": "employed"
            if relationship == "head"
            else ("inactive" if adult else "student"),
            "employment_sector": "informal" if relationship == "head" else None,
        }

    bodies = []
    for _ in range(count):
        family = rng.choice(by_sex["M"])
        head_age, spouse_age = rng.randint(28, 60), rng.randint(25, 55)
        head = person("head", "M", head_age, family, None, 0)
        members = [
            head,
            person("spouse", "F", spouse_age, rng.choice(by_sex["M"]), None, 1),
            person("child", rng.choice("FM"), rng.randint(6, 17), family, family, 2),
            person("child", rng.choice("FM"), rng.randint(6, 17), family, family, 3),
        ]
        members[2]["father_name_ar"], members[2]["father_name_lat"] = (
            head["given_name_ar"],
            head["given_name_lat"],
        )
        members[3]["father_name_ar"], members[3]["father_name_lat"] = (
            head["given_name_ar"],
            head["given_name_lat"],
        )
        latitude, longitude = round(rng.uniform(29.5, 33.0), 5), round(rng.uniform(35.0, 39.0), 5)
        body = {
            "area_code": rng.choice(localities),
            "address": f"Building {rng.randint(1, 300)}, street {rng.randint(1, 80)}",
            "latitude": latitude,
            "longitude": longitude,
            "dwelling_tenure": rng.choice(codes.HOUSEHOLD_CODES["dwelling_tenure"]),
            "dwelling_walls": rng.choice(codes.HOUSEHOLD_CODES["dwelling_walls"]),
            "dwelling_roof": rng.choice(codes.HOUSEHOLD_CODES["dwelling_roof"]),
            "dwelling_floor": rng.choice(codes.HOUSEHOLD_CODES["dwelling_floor"]),
            "dwelling_rooms": rng.randint(1, 5),
            "water_source": rng.choice(codes.HOUSEHOLD_CODES["water_source"]),
            "sanitation": rng.choice(codes.HOUSEHOLD_CODES["sanitation"]),
            "cooking_fuel": rng.choice(codes.HOUSEHOLD_CODES["cooking_fuel"]),
            "electricity": rng.choice(codes.HOUSEHOLD_CODES["electricity"]),
            "assets": rng.sample(codes.HOUSEHOLD_LISTS["assets"], 3),
            "livestock": {"sheep": rng.randint(0, 20), "poultry": rng.randint(0, 40)},
            "income_sources": ["wages_informal"],
            "registration_source": "on_demand",
            "registration_date": today.isoformat(),
            "enumerator": f"E{rng.randint(1, 400):04d}",
            "consent": {
                "given": True,
                "date": today.isoformat(),
                "purposes": ["eligibility_assessment", "payment"],
            },
            "members": members,
        }
        bodies.append(json.dumps(body, ensure_ascii=False))
    return bodies


# --- the server -----------------------------------------------------------------------------


def start_server(url: str, port: int, workers: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "SIJILL_DATABASE_URL": url,
        "SIJILL_HOST": "127.0.0.1",
        "SIJILL_PORT": str(port),
        "SIJILL_KEY_FILE": str(KEY_FILE),
    }
    command = [str(SIJILL), "serve", "--workers", str(workers)]
    return launch_server(command, env, port, WORK / "server.log")


def launch_server(
    command: list[str], env: dict, port: int, log_path: Path, *, append: bool = False
) -> subprocess.Popen:
    """Start a server in its own process group and wait until it answers /health."""
    log = log_path.open("a" if append else "w")
    server = subprocess.Popen(
        command,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped whole, with its workers
        cwd=log_path.parent,  # no stray .env from the repository
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    stop_server(server)
    raise RuntimeError(f"{command[0]} did not answer /health within 90 s")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def check_once(port: int, household_id: str, body: str, nids: list[str]) -> int:
    """One GET and one POST by hand, so a load of errors is never mistaken for speed."""
    base = f"http://127.0.0.1:{port}"
    authorization = {"Authorization": f"Bearer {TOKEN_FILE.read_text().strip()}"}
    read = urllib.request.Request(f"{base}/households/{household_id}", headers=authorization)
    with urllib.request.urlopen(read, timeout=10) as answer:
        household = json.load(answer)
    assert household["household_id"] == household_id and household["members"], household
    for slot, number in enumerate(nids):
        body = body.replace(f"__NID{slot}__", number)
    request = urllib.request.Request(
        f"{base}/households",
        data=body.encode(),
        headers={"Content-Type": "application/json", **authorization},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            created = json.load(answer)
            assert answer.status == 201 and len(created["members"]) == MEMBERS, created
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"POST /households: {error.code} {error.read()[:2000]}") from None
    return len(household["members"])


# --- wrk ------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()
    return float(value) * _UNITS[unit]


def run_wrk(port: int, script: str, args: list[str], threads: int, connections: int, seconds: int):
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(BENCH / script),
        f"http://127.0.0.1:{port}",
        "--",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    out = done.stdout
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p50": _ms(latency["50"]),
        "p99": _ms(latency["99"]),
        "non2xx": int(re.search(r"^NON2XX (\d+)", out, re.M).group(1)),
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
        "output": out,
    }
    used = re.search(r"^USED (\d+)", out, re.M)
    exhausted = re.search(r"^EXHAUSTED (\d+)", out, re.M)
    result["nids_used"] = int(used.group(1)) if used else 0
    result["exhausted"] = int(exhausted.group(1)) if exhausted else 0
    return result


def summary_row(name: str, runs: list[dict]) -> str:
    requests = sum(r["requests"] for r in runs)
    non2xx = sum(r["non2xx"] for r in runs)
    socket = sum(r["socket_errors"] for r in runs)
    return (
        f"| {name} | {median([r['rps'] for r in runs]):,.0f} | "
        f"{median([r['p50'] for r in runs]):.1f} ms | {median([r['p99'] for r in runs]):.1f} ms | "
        f"{non2xx:,} of {requests:,} | {socket:,} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=10_000)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    url = args.database_url
    rng = random.Random(7)

    households_before, persons_before = registry_size(url)
    if households_before == 0:
        raise SystemExit(f"{url} holds no households: run bench/bench_import.py first")
    ids = sample_household_ids(url, args.sample)
    (WORK / "ids.txt").write_text("\n".join(ids) + "\n")
    bodies = household_bodies(url, 1000, rng)
    (WORK / "bodies.jsonl").write_text("\n".join(bodies) + "\n")
    used: set[str] = set()
    # Enough numbers for POST at 1,500 households/s; a run that runs out says so (EXHAUSTED).
    per_run = lambda seconds: MEMBERS * 1_500 * seconds  # noqa: E731

    username = f"bench-api-{time.strftime('%Y%m%d%H%M%S')}"
    TOKEN_FILE.write_text(bench_user(url, KEY_FILE, username, "administrator") + "\n")
    server = start_server(url, args.port, args.workers)
    try:
        members_seen = check_once(
            args.port, ids[0], bodies[0], fresh_national_ids(url, MEMBERS, rng, used)
        )
        print(f"checked: GET {ids[0]} ({members_seen} members), POST 201", flush=True)
        wrk = (args.port, args.threads, args.connections)

        def get(seconds: int) -> dict:
            port, threads, connections = wrk
            return run_wrk(
                port,
                "api_get.lua",
                [str(WORK / "ids.txt"), str(TOKEN_FILE)],
                threads,
                connections,
                seconds,
            )

        def post(seconds: int) -> dict:
            port, threads, connections = wrk
            nids = fresh_national_ids(url, per_run(seconds), rng, used)
            (WORK / "nids.txt").write_text("\n".join(nids) + "\n")
            return run_wrk(
                port,
                "api_post.lua",
                [
                    str(WORK / "bodies.jsonl"),
                    str(WORK / "nids.txt"),
                    str(threads),
                    str(TOKEN_FILE),
                ],
                threads,
                connections,
                seconds,
            )

        results = {}
        for name, load in (("GET", get), ("POST", post)):
            warm = load(args.warmup)
            print(f"{name} warm-up: {warm['rps']:,.0f} req/s, non-2xx {warm['non2xx']}", flush=True)
            runs = []
            for _ in range(args.runs):
                runs.append(load(args.duration))
                last = runs[-1]
                print(
                    f"{name}: {last['rps']:,.0f} req/s, p50 {last['p50']:.1f} ms, "
                    f"p99 {last['p99']:.1f} ms, non-2xx {last['non2xx']}, "
                    f"socket errors {last['socket_errors']}, numbers exhausted "
                    f"{last['exhausted']}",
                    flush=True,
                )
                if last["non2xx"]:
                    print(last["output"][-1500:], flush=True)
            results[name] = runs
            (WORK / f"wrk-{name.lower()}.txt").write_text(
                "\n\n".join(r["output"] for r in [warm, *runs])
            )
    finally:
        stop_server(server)
    households_after, _ = registry_size(url)

    get_runs, post_runs = results["GET"], results["POST"]
    get_rps = median([r["rps"] for r in get_runs])
    get_p99 = median([r["p99"] for r in get_runs])
    met = get_rps >= 1000 and get_p99 < 50
    lines = [
        f"Registry: PostgreSQL (stock Debian configuration) holding {households_before:,} "
        f"households and {persons_before:,} persons at the start (a synthetic country "
        f"imported by bench/bench_import.py). Server: `sijill serve --workers "
        f"{args.workers}` (uvicorn, access log off), a separate process on 127.0.0.1. Load: "
        f"`wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency` on the same "
        f"machine ({args.connections} concurrent connections, {args.threads} wrk thread(s)); "
        f"wrk, the {args.workers} API workers and PostgreSQL share the 2 cores. One "
        f"{args.warmup} s warm-up run, then medians of {args.runs} runs of {args.duration} s.",
        "",
        f"- GET: a random ID per request among {len(ids):,} household IDs sampled from the "
        "database (bench/api_get.lua).",
        f"- POST: a new household of {MEMBERS} members (head, spouse, two children), each with a "
        "fresh national ID valid under tr.tckimlik, in an existing locality "
        f"(bench/api_post.lua); the POST runs added {households_after - households_before:,} "
        "households to the registry.",
        "",
        "| request | req/s | p50 | p99 | non-2xx responses (all runs) | socket errors |",
        "|---|---|---|---|---|---|",
        summary_row("`GET /households/{id}`", get_runs),
        summary_row(f"`POST /households` ({MEMBERS} members)", post_runs),
        "",
        f"Target GET ≥ 1,000 req/s with p99 < 50 ms at {args.connections} connections: "
        f"**{'met' if met else 'not met'}** ({get_rps:,.0f} req/s, p99 {get_p99:.1f} ms).",
        "",
        "Runs (req/s, p50/p99 ms): GET "
        + "; ".join(f"{r['rps']:,.0f}, {r['p50']:.1f}/{r['p99']:.1f}" for r in get_runs)
        + ". POST "
        + "; ".join(f"{r['rps']:,.0f}, {r['p50']:.1f}/{r['p99']:.1f}" for r in post_runs)
        + ".",
    ]
    command = "python bench/bench_api.py"
    if url != DEFAULT_URL:
        command += " --database-url URL"
    record("API under load", command, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
