"""Two versions of Sijill measured side by side, alternately, in one session: the figures an
architecture refactor must not worsen by more than 5%.

    .venv/bin/python bench/bench_compare.py [--baseline 26b936e] [--head COMMIT]
        [--households 1000000] [--runs 3] [--get-runs N] [--duration 20] [--warmup 5] [--keep]
        [--no-record]

- Base: `--baseline COMMIT` (default 26b936e, the commit before the refactor), checked out
  with `git worktree add --detach` in /tmp/sijill-bench/compare/tree-<commit> (kept for the
  next run; `git worktree remove --force` it when done), with its own virtualenv installed
  from its own uv.lock (`python3 -m venv`, `pip install uv==0.13.8`, `uv sync --frozen
  --inexact`), as `make install` does.
- Head: the working tree, /work/main with /work/main/.venv (named by HEAD's short hash and a
  digest of src/, taken at the start and again at the end: others may edit it meanwhile), or
  `--head COMMIT` for another commit in a worktree of its own (`--head 26b936e` measures the
  baseline against itself, to see the noise).

1. The synthetic country `sijill synth --households N --seed 1` (by the baseline's code) in
   /tmp/sijill-bench/synth-N, reused when already there (bench/bench_import.py uses the same
   folder).
2. Import: each side into its own PostgreSQL database (sijill_cmp_base, sijill_cmp_head),
   dropped, created and migrated by that side's own `sijill db upgrade` before each run; a
   service account made by that side's code (its bench/common.py `bench_user`, run by its own
   Python), then the timed `sijill import` of the folder (an initial load into an empty
   registry). Base, head, base, head, ... `--runs` times each. Figures: the wall time of the
   whole import process (GNU time; its peak memory too) and the importer's own clock when it
   prints its summary; the head ÷ base ratio per pair and the median of those ratios.
3. GET: the two registries the last imports left, after `VACUUM (ANALYZE)` of both (not
   timed). Each side serves its own database with its own code (`sijill serve --workers 2`,
   127.0.0.1); one server at a time, started afresh for each run: wait for /health, a few
   GETs checked by hand, `--warmup` s of load, `--duration` s measured with `wrk -t1 -c32
   --latency` (bench/api_get.lua), stopped. Base, head, ... `--get-runs` times each (by default
   `--runs`: p99 swings far more from run to run than an import does). The same
   households on both sides: ~10,000 source record keys sampled from the base registry, each
   side's own registry IDs for them (the importer draws IDs at random). Every request carries
   an administrator's bearer token made by that side's own code. Figures: req/s, p50, p99
   (medians), head ÷ base of the medians.

Before measuring, the script waits up to `--quiet-wait` minutes (default 10) for a load
average below 1.5 and no other bench/bench_*.py running, and says in the report if it measured
on a busy machine. The section of BENCHMARKS.md named by `--section` (by default "Architecture
refactor: before and after") is replaced (not with `--no-record`). Both databases are dropped
at the end (`--keep` keeps them).
Servers, and any command it started, are stopped whatever happens (Ctrl-C, SIGTERM, a failure);
a failure is one line on stderr, the failing command's whole output in
/tmp/sijill-bench/compare/logs/error.log. The full run at 1,000,000 households takes about 12
minutes on a quiet machine (six imports of ~1 min, six GET runs of ~35 s), plus the quiet wait.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
from bench_api import BENCH, _ms
from common import PG_ADMIN_URL, ROOT, Run, median, record

WORK = Path("/tmp/sijill-bench/compare")
SYNTH_ROOT = Path("/tmp/sijill-bench")
DEFAULT_BASELINE = "26b936e"
UV_VERSION = "0.13.8"
SECTION = "Architecture refactor: before and after"
LIMIT = 0.05  # the refactor may cost at most 5%
WORKERS = 2
THREADS, CONNECTIONS = 1, 32
SAMPLE = 10_000
TOKEN_MINUTES = 240
SUMMARY = re.compile(
    r"([\d,]+) households and ([\d,]+) persons added; ([\d,]+) households and ([\d,]+) persons "
    r"were already in the registry \(([\d.]+) s"
)
REJECTED = re.compile(r"([\d,]+) rows rejected")
# A user made by a side's own code: its bench/common.py `bench_user`, which follows that
# version's internals, run by its own Python (argv: bench dir, url, key file, name, kind).
MAKE_USER = (
    "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
    "from common import bench_user; "
    "print(bench_user(sys.argv[2], Path(sys.argv[3]), sys.argv[4], 'administrator', "
    f"service=sys.argv[5] == 'service', token_minutes={TOKEN_MINUTES}))"
)


class Failed(Exception):
    """A step failed: one line for the console, the whole output in a log file."""

    def __init__(self, line: str, detail: str = ""):
        super().__init__(line)
        self.detail = detail


@dataclass
class Side:
    key: str  # "base" or "head"
    name: str  # its code, in short: a commit's short hash, or "working tree (...)"
    label: str  # its code, in full: with the commit's subject, or the digest of src/
    tree: Path
    database: str
    port: int
    fingerprint: str = ""
    imports: list = field(default_factory=list)
    gets: list = field(default_factory=list)

    @property
    def python(self) -> Path:
        return self.tree / ".venv" / "bin" / "python"

    @property
    def sijill(self) -> Path:
        return self.tree / ".venv" / "bin" / "sijill"

    @property
    def key_file(self) -> Path:
        return WORK / f"keys-{self.key}.json"

    @property
    def url(self) -> str:
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.database}"

    def env(self, **extra: str) -> dict:
        """The side's environment: no SIJILL_* or Python path of the caller's, its own keyring."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SIJILL_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env.update(SIJILL_DATABASE_URL=self.url, SIJILL_KEY_FILE=str(self.key_file), **extra)
        return env


# --- processes -----------------------------------------------------------------------------


def log_path(name: str) -> Path:
    return WORK / "logs" / f"{name}.log"


def stop_group(process: subprocess.Popen) -> None:
    """Stop a process started in its own session and everything in its group (a server's
    workers too, even if the parent is gone): SIGTERM, SIGKILL after 20 s."""
    for signum, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        try:  # the parent is gone; anything left of its group?
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(1)


def _complete(command: list, env: dict | None, cwd: Path) -> tuple[int, str]:
    """Run a command in its own process group to the end; (exit code, output). Interrupted,
    the whole group is stopped (an import under GNU time too), then the interruption goes on."""
    process = subprocess.Popen(
        [str(c) for c in command],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate()
    except BaseException:
        stop_group(process)
        raise
    return process.returncode, output


def run(what: str, command: list, env: dict | None = None, cwd: Path = WORK) -> str:
    """Run a command to completion; its output, or Failed naming `what`."""
    code, output = _complete(command, env, cwd)
    if code != 0:
        raise Failed(f"{what} failed (exit {code})", output)
    return output


def run_timed(what: str, command: list, env: dict) -> Run:
    """A command's wall time and peak resident memory (GNU time), like common.run_measured."""
    with tempfile.NamedTemporaryFile("r", suffix=".time", dir=WORK) as timing:
        started = time.perf_counter()
        code, output = _complete(["/usr/bin/time", "-f", "%M", "-o", timing.name, *command],
                                 env, WORK)  # fmt: skip
        seconds = time.perf_counter() - started
        lines = timing.read().strip().splitlines()
    if code != 0:
        raise Failed(f"{what} failed (exit {code})", output)
    return Run(seconds, int(lines[-1]) / 1024, output)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def git(*args: str, cwd: Path = ROOT) -> str:
    return run(f"git {' '.join(args)}", ["git", *args], cwd=cwd).strip()


# --- the two sides' code -------------------------------------------------------------------


def commit_name(commit: str) -> tuple[str, str, str]:
    """(full hash, short hash, 'short (subject)') of a commit of the repository, or Failed."""
    try:
        full = git("rev-parse", "--verify", f"{commit}^{{commit}}")
    except Failed:
        raise Failed(f"{commit} is not a commit of {ROOT}") from None
    return full, full[:7], git("log", "-1", "--format=%h (%s)", full)


def src_digest(tree: Path) -> str:
    """A digest of the code under src/ and its newest change."""
    digest = hashlib.sha256()
    newest = 0.0
    for path in sorted((tree / "src").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(tree)).encode() + b"\0" + path.read_bytes())
            newest = max(newest, path.stat().st_mtime)
    changed = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(newest))
    return f"src/ sha256 {digest.hexdigest()[:12]}, last changed {changed}"


def worktree(commit: str) -> Path:
    """A worktree of `commit` outside the repository, with its own virtualenv (made once)."""
    full = commit_name(commit)[0]
    tree = WORK / f"tree-{full[:7]}"
    if (tree / ".git").exists():
        at = git("rev-parse", "HEAD", cwd=tree)
        if at != full:
            raise Failed(f"{tree} is at {at[:7]}, not {full[:7]}: git worktree remove it")
        if git("status", "--porcelain", "--untracked-files=no", cwd=tree):
            raise Failed(f"{tree} has local changes: git worktree remove --force it")
    else:
        if tree.exists():
            raise Failed(f"{tree} exists but is not a worktree: remove it")
        print(f"git worktree add {tree} {full[:7]}", flush=True)
        git("worktree", "prune")
        git("worktree", "add", "--detach", str(tree), full)
    venv = tree / ".venv"
    lock = hashlib.sha256((tree / "uv.lock").read_bytes()).hexdigest()
    stamp = venv / ".bench-compare-installed"
    if not stamp.exists() or stamp.read_text().strip() != lock:
        print(f"installing {full[:7]}'s uv.lock into {venv}", flush=True)
        started = time.perf_counter()
        python3 = shutil.which("python3") or "python3"
        run("python3 -m venv", [python3, "-m", "venv", str(venv)], cwd=tree)
        run(
            f"pip install uv=={UV_VERSION}",
            [venv / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check",
             f"uv=={UV_VERSION}"],
            cwd=tree,
        )  # fmt: skip
        env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
        env.pop("VIRTUAL_ENV", None)
        run("uv sync --frozen --inexact", [venv / "bin" / "uv", "sync", "--frozen", "--inexact"],
            env=env, cwd=tree)  # fmt: skip
        stamp.write_text(lock + "\n")
        print(f"installed in {time.perf_counter() - started:.0f} s", flush=True)
    return tree


def check_code(side: Side) -> None:
    """The side's Python imports Sijill from the side's own tree."""
    for path in (side.python, side.sijill):
        if not path.exists():
            raise Failed(f"{side.key}: {path} is missing (install that tree's virtualenv)")
    found = run(
        f"{side.key}: import sijill",
        [side.python, "-c", "import sijill; print(sijill.__file__)"],
        env=side.env(),
    ).strip()
    if not Path(found).resolve().is_relative_to((side.tree / "src").resolve()):
        raise Failed(f"{side.key}: its Python imports sijill from {found}, not {side.tree}/src")


# --- the database --------------------------------------------------------------------------


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def admin(sql: str) -> list:
    with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as connection:
        cursor = connection.execute(sql)
        return cursor.fetchall() if cursor.description else []


def query(url: str, sql: str, params: tuple = ()) -> list:
    with psycopg.connect(_libpq(url)) as connection:
        cursor = connection.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def drop(side: Side) -> None:
    admin(f"DROP DATABASE IF EXISTS {side.database} WITH (FORCE)")


def fresh_database(side: Side) -> None:
    """Dropped, created, migrated by the side's own `sijill db upgrade`."""
    drop(side)
    admin(f"CREATE DATABASE {side.database}")
    run(f"{side.key}: sijill db upgrade", [side.sijill, "db", "upgrade"], env=side.env())


def make_user(side: Side, name: str, service: bool) -> str:
    """An administrator made by the side's own code: its access token, or a service key."""
    out = run(
        f"{side.key}: making user {name} (bench_user of {side.tree}/bench/common.py)",
        [side.python, "-c", MAKE_USER, side.tree / "bench", side.url, side.key_file, name,
         "service" if service else "token"],
        env=side.env(),
    )  # fmt: skip
    return last_line(out)


def pg_facts() -> dict:
    settings = ("shared_buffers", "max_wal_size", "checkpoint_timeout", "fsync")
    with psycopg.connect(_libpq(PG_ADMIN_URL), autocommit=True) as connection:
        version = connection.execute("SHOW server_version").fetchone()[0]
        shown = {name: connection.execute(f"SHOW {name}").fetchone()[0] for name in settings}
    return {"version": version.split()[0], "settings": shown}


# --- the machine ---------------------------------------------------------------------------


def other_benchmarks() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            words = [
                w.decode(errors="replace")
                for w in (entry / "cmdline").read_bytes().split(b"\0")
                if w
            ]
        except OSError:
            continue
        if any(Path(w).name.startswith("bench_") and w.endswith(".py") for w in words):
            found.append(" ".join(words)[:120])
    return found


def wait_until_quiet(minutes: float, max_load: float = 1.5) -> str:
    started = time.monotonic()
    while True:
        load, others = os.getloadavg()[0], other_benchmarks()
        if load < max_load and not others:
            return f"quiet (load average {load:.2f})"
        if time.monotonic() - started >= minutes * 60:
            busy = f"; other benchmarks: {'; '.join(others)}" if others else ""
            return f"**not quiet** (load average {load:.2f}{busy})"
        print(f"waiting for a quiet machine: load {load:.2f}, others {others}", flush=True)
        time.sleep(30)


# --- the synthetic country -----------------------------------------------------------------


def synth(base: Side, households: int) -> tuple[Path, int, int, str]:
    folder = SYNTH_ROOT / f"synth-{households}"
    made = "found there"
    if not (folder / "manifest.json").exists():
        print(f"sijill synth --households {households} --seed 1 --out {folder}", flush=True)
        started = time.perf_counter()
        run(
            "sijill synth",
            [base.sijill, "synth", "--households", households, "--seed", "1", "--out", folder],
            env=base.env(),
        )
        made = f"made by {base.name}'s code in {time.perf_counter() - started:.0f} s"
    rows = [
        pq.ParquetFile(folder / f"{t}.parquet").metadata.num_rows for t in ("households", "persons")
    ]
    return folder, rows[0], rows[1], made


# --- import --------------------------------------------------------------------------------


def import_once(side: Side, folder: Path, households: int, persons: int) -> dict:
    fresh_database(side)
    service_key = make_user(side, "importer", service=True)
    (folder / "rejects.csv").unlink(missing_ok=True)
    load = os.getloadavg()[0]
    env = side.env(SIJILL_SERVICE_KEY=service_key, COLUMNS="300")  # rich wraps at 80 otherwise
    done = run_timed(f"{side.key}: sijill import", [side.sijill, "import", folder], env)
    log_path(f"import-{side.key}").write_text(done.output)
    text = " ".join(done.output.split())
    found = SUMMARY.search(text)
    if found:
        added_h, added_p, present_h, present_p = (
            int(g.replace(",", "")) for g in found.groups()[:4]
        )
        own = float(found.group(5))
    else:  # a version that prints no summary: count what is in the registry
        own, present_h, present_p = None, 0, 0
        added_h, added_p = (
            query(side.url, f"SELECT count(*) FROM {table}")[0][0]
            for table in ("household", "person")
        )
    rejected = REJECTED.search(text)
    if present_h or present_p or added_h != households or added_p != persons or rejected:
        raise Failed(
            f"{side.key}: the import did not add every row ({added_h:,} of {households:,} "
            f"households, {added_p:,} of {persons:,} persons)",
            done.output,
        )
    return {"wall": done.seconds, "own": own, "rss": done.peak_rss_mb, "load": load}


# --- GET -----------------------------------------------------------------------------------


def sample_keys(base: Side, count: int) -> list[str]:
    """About `count` household source record keys spread over the base registry."""
    total = query(base.url, "SELECT count(*) FROM household")[0][0]
    percent = min(100.0, 100.0 * count * 3 / max(total, 1))
    rows = query(
        base.url,
        f"SELECT source_key FROM household TABLESAMPLE BERNOULLI ({percent}) REPEATABLE (1) "
        "WHERE source_key IS NOT NULL",
    )
    keys = sorted(row[0] for row in rows)
    random.Random(1).shuffle(keys)
    return keys[:count]


def ids_for(side: Side, keys: list[str]) -> dict[str, str]:
    try:
        rows = query(
            side.url, "SELECT source_key, id FROM household WHERE source_key = ANY(%s)", (keys,)
        )
    except psycopg.Error as error:
        raise Failed(
            f"{side.key}: looking up household IDs by source key: {last_line(str(error))}"
        ) from None
    return {key: str(household_id) for key, household_id in rows}


def get_by_hand(side: Side, token: str, household_ids: list[str]) -> None:
    for household_id in household_ids:
        request = urllib.request.Request(
            f"http://127.0.0.1:{side.port}/households/{household_id}",
            headers={"Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                body = json.load(answer)
        except urllib.error.HTTPError as error:
            raise Failed(
                f"{side.key}: GET /households/{household_id}: {error.code}",
                error.read()[:2000].decode(errors="replace"),
            ) from None
        if str(body.get("household_id")) != household_id or not body.get("members"):
            raise Failed(
                f"{side.key}: GET /households/{household_id} answered another body",
                json.dumps(body)[:2000],
            )


def port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def start_server(side: Side, command: list[str], env: dict, servers: list) -> subprocess.Popen:
    """The side's server in its own process group (stopped whole, with its workers), listed in
    `servers` at once, so that it is stopped whatever happens while it starts; up when it
    answers /health (as bench_api.launch_server)."""
    if port_taken(side.port):
        raise Failed(f"{side.key}: port {side.port} is already in use (--port picks others)")
    log_file = WORK / f"server-{side.key}.log"
    with log_file.open("a") as log:
        server = subprocess.Popen(
            command, env=env, cwd=WORK, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    servers.append(server)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise Failed(f"{side.key}: sijill serve exited ({server.returncode}); log {log_file}",
                         log_file.read_text()[-3000:])  # fmt: skip
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{side.port}/health", timeout=2) as up:
                if up.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise Failed(f"{side.key}: sijill serve did not answer /health within 90 s; log {log_file}")


def wrk(side: Side, ids_file: Path, seconds: int, what: str) -> dict | None:
    """`wrk -t1 -c32 -dNs --latency` of bench/api_get.lua, as bench_api.run_wrk runs it; its
    figures, but none for a warm-up (its whole output kept in logs/)."""
    command = [
        "wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
        "-s", BENCH / "api_get.lua", f"http://127.0.0.1:{side.port}",
        "--", ids_file, WORK / f"token-{side.key}.txt",
    ]  # fmt: skip
    out = run(f"{side.key}: wrk ({what})", command)
    log_path(f"wrk-{side.key}-{what.replace(' ', '-')}").write_text(out)
    if what.startswith("warm-up"):
        return None
    latency = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"^NON2XX (\d+)", out, re.M)
    if not (rps and requests and non2xx and "50" in latency and "99" in latency):
        raise Failed(f"{side.key}: wrk ({what}) printed no figures (no request answered?)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)),
        "requests": int(requests.group(1)),
        "p50": _ms(latency["50"]),
        "p99": _ms(latency["99"]),
        "non2xx": int(non2xx.group(1)),
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
        "output": out,
    }


def serve_and_load(
    side: Side,
    token: str,
    ids_file: Path,
    check: list[str],
    warmup: int,
    duration: int,
    servers: list,
    number: int,
) -> dict:
    env = side.env(
        SIJILL_HOST="127.0.0.1",
        SIJILL_PORT=str(side.port),
        SIJILL_ACCESS_TOKEN_MINUTES=str(TOKEN_MINUTES),
    )
    command = [str(side.sijill), "serve", "--workers", str(WORKERS)]
    server = start_server(side, command, env, servers)
    try:
        get_by_hand(side, token, check)
        load = os.getloadavg()[0]
        if warmup:
            wrk(side, ids_file, warmup, f"warm-up {number}")
        result = wrk(side, ids_file, duration, f"run {number}")
    finally:
        stop_group(server)
        servers.remove(server)
    result["load"] = load
    return result


# --- the report ----------------------------------------------------------------------------


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def ms(value: float) -> str:
    return f"{value:.1f} ms"


def verdict(ratio: float, lower_is_better: bool = True) -> str:
    worse = ratio - 1 if lower_is_better else 1 - ratio
    if abs(worse) <= LIMIT:
        return f"within {LIMIT:.0%}"
    if worse < 0:
        return f"{-worse:.1%} better, beyond the {LIMIT:.0%} band: look for noise before a gain"
    return f"**{worse:.1%} worse**, over the {LIMIT:.0%} limit"


def report(base: Side, head: Side, facts: dict) -> list[str]:
    n_h, n_p = facts["households"], facts["persons"]
    runs = len(base.imports)
    pg = facts["pg"]
    settings = ", ".join(f"{k}={v}" for k, v in pg["settings"].items())
    head_changed = (
        f" src/ changed during the run: at the end {facts['head_at_end']}."
        if facts["head_at_end"] != head.fingerprint
        else ""
    )
    lines = [
        f"Base: commit {base.label}, in a worktree of its own with its own virtualenv "
        f"(installed from its uv.lock). Head: {head.label}.{head_changed} Each side runs its own "
        "code for everything it measures: migration, users and tokens (its bench/common.py "
        "`bench_user`), import, server.",
        "",
        f"Synthetic country `sijill synth --households {facts['n']} --seed 1` ({facts['made']}): "
        f"{n_h:,} household rows and {n_p:,} person rows, read from its Parquet files. "
        f"PostgreSQL {pg['version']} on the same machine ({settings}). "
        f"Machine at the start: {facts['machine_state']}; load average "
        f"{facts['load_end']:.2f} at the end.",
        "",
        f"Import: each run drops, creates and migrates (`sijill db upgrade` of that side) the "
        f"side's own database, then times one `sijill import` process loading the whole folder "
        f"into the empty registry (an initial load); base and head alternate (the first of "
        f"each pair swapping, ABBA), "
        f"{plural(runs, 'run')} each. "
        "Time is the wall time of the whole process (GNU time), in brackets the importer's own "
        "clock (first batch to last commit) as it prints it; peak memory is the process's "
        "maximum resident set. Every row was added, none rejected.",
        "",
        "| code | import time | households/s | peak memory |",
        "|---|---|---|---|",
    ]

    def own_text(results: list) -> str:
        owns = [r["own"] for r in results]
        return f" ({median(owns):.1f} s)" if all(o is not None for o in owns) else ""

    for side in (base, head):
        wall = median([r["wall"] for r in side.imports])
        owns = [r["own"] for r in side.imports]
        rate = f"{n_h / wall:,.0f}" + (
            f" ({n_h / median(owns):,.0f})" if all(o is not None for o in owns) else ""
        )
        lines.append(
            f"| {side.key}: {side.name} | {wall:.1f} s{own_text(side.imports)} | {rate} | "
            f"{median([r['rss'] for r in side.imports]):,.0f} MB |"
        )
    wall_ratios = [h["wall"] / b["wall"] for b, h in zip(base.imports, head.imports, strict=True)]
    own_pairs = [(b["own"], h["own"]) for b, h in zip(base.imports, head.imports, strict=True)]
    own_ratios = [h / b for b, h in own_pairs if b is not None and h is not None]
    wall_ratio = median(wall_ratios)
    lines += [
        "",
        f"- Import, head ÷ base (median of the ratios of {plural(runs, 'pair')}): "
        f"**{wall_ratio:.3f}** on process wall time ({verdict(wall_ratio)})"
        + (
            f", {median(own_ratios):.3f} on the importer's own clock"
            if len(own_ratios) == runs
            else ""
        )
        + ".",
        "",
        f"GET: after the last imports, `VACUUM (ANALYZE)` of both registries ({facts['vacuum']}). "
        f"Each side serves its own registry with its own code, `sijill serve --workers "
        f"{WORKERS}` on 127.0.0.1, one server at a time, started afresh for each run: /health, "
        f"a few GETs checked by hand, {facts['warmup']} s warm-up, then `wrk -t{THREADS} "
        f"-c{CONNECTIONS} -d{facts['duration']}s --latency` (bench/api_get.lua), stopped; base and "
        f"head alternate (ABBA), {plural(len(base.gets), 'run')} each, medians. Requests: "
        f"`GET /households/{{id}}` "
        f"with an administrator's bearer token, a random one of the same {facts['sample']:,} "
        "households on both sides per request (source record keys sampled from the base "
        "registry, each side's own registry IDs for them). wrk, the 2 workers and PostgreSQL "
        "share the 2 cores.",
        "",
        "| code | req/s | p50 | p99 | non-2xx | socket errors |",
        "|---|---|---|---|---|---|",
    ]

    def m(side: Side, key: str) -> float:
        return median([r[key] for r in side.gets])

    for side in (base, head):
        lines.append(
            f"| {side.key}: {side.name} | {m(side, 'rps'):,.0f} | {ms(m(side, 'p50'))} | "
            f"{ms(m(side, 'p99'))} | {sum(r['non2xx'] for r in side.gets):,} of "
            f"{sum(r['requests'] for r in side.gets):,} | "
            f"{sum(r['socket_errors'] for r in side.gets):,} |"
        )
    p99, p50, rps = (m(head, k) / m(base, k) for k in ("p99", "p50", "rps"))
    lines += [
        "",
        f"- GET, head ÷ base of the medians: p99 **{p99:.3f}** ({verdict(p99)}), p50 {p50:.3f}, "
        f"req/s {rps:.3f} ({verdict(rps, lower_is_better=False)}).",
        "",
        "Runs, in the order measured (load average as each began):",
    ]
    for i, (b, h) in enumerate(zip(base.imports, head.imports, strict=True), 1):

        def one(r: dict) -> str:
            own = f" (own {r['own']:.1f} s)" if r["own"] is not None else ""
            return f"{r['wall']:.1f} s{own}, {r['rss']:,.0f} MB (load {r['load']:.1f})"

        lines.append(
            f"- import pair {i}: base {one(b)}; head {one(h)}; head ÷ base "
            f"{h['wall'] / b['wall']:.3f}"
            + (f" ({h['own'] / b['own']:.3f} own)" if b["own"] and h["own"] else "")
        )
    for i, (b, h) in enumerate(zip(base.gets, head.gets, strict=True), 1):

        def one_get(r: dict) -> str:
            return (
                f"{r['rps']:,.0f} req/s, p50 {ms(r['p50'])}, p99 {ms(r['p99'])} "
                f"(load {r['load']:.1f})"
            )

        lines.append(
            f"- GET pair {i}: base {one_get(b)}; head {one_get(h)}; head ÷ base p99 "
            f"{h['p99'] / b['p99']:.3f}, req/s {h['rps'] / b['rps']:.3f}"
        )
    return lines


# --- main ----------------------------------------------------------------------------------


def command_line(args: argparse.Namespace) -> str:
    command = "python bench/bench_compare.py"
    if args.baseline != DEFAULT_BASELINE:
        command += f" --baseline {args.baseline}"
    if args.head:
        command += f" --head {args.head}"
    if args.section != SECTION:
        command += f" --section '{args.section}'"
    for name, default in (("households", 1_000_000), ("runs", 3), ("duration", 20), ("warmup", 5)):
        if getattr(args, name) != default:
            command += f" --{name} {getattr(args, name)}"
    if args.get_runs != args.runs:
        command += f" --get-runs {args.get_runs}"
    return command


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="the commit before")
    parser.add_argument("--head", help="a commit instead of the working tree")
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--get-runs", type=int, help="GET runs of each side (default: --runs)")
    parser.add_argument("--duration", type=int, default=20, help="seconds of each GET run")
    parser.add_argument("--warmup", type=int, default=5, help="seconds before each GET run")
    parser.add_argument("--port", type=int, default=8781, help="base's port; head's is +1")
    parser.add_argument("--quiet-wait", type=float, default=10, help="minutes, at most")
    parser.add_argument("--keep", action="store_true", help="keep both databases")
    parser.add_argument("--no-record", action="store_true", help="leave BENCHMARKS.md alone")
    parser.add_argument("--section", default=SECTION, help="the BENCHMARKS.md section to write")
    args = parser.parse_args()
    args.get_runs = args.runs if args.get_runs is None else args.get_runs
    if args.runs < 1 or args.households < 1 or args.get_runs < 1:
        parser.error("--runs, --get-runs and --households must be at least 1")
    for tool in ("wrk", "/usr/bin/time"):
        if not shutil.which(tool):
            raise Failed(f"{tool} is not installed (apt-get install wrk time)")
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    full, short, label = commit_name(args.baseline)
    base = Side("base", short, label, worktree(full), "sijill_cmp_base", args.port)
    if args.head:
        full, short, label = commit_name(args.head)
        head = Side("head", short, label, worktree(full), "sijill_cmp_head", args.port + 1)
    else:
        dirty = git("status", "--porcelain", "--", "src")
        at = git("log", "-1", "--format=%h")
        name = f"working tree ({at}{' + changes' if dirty else ''})"
        head = Side("head", name, name, ROOT, "sijill_cmp_head", args.port + 1)
    for side in (base, head):
        check_code(side)
        side.fingerprint = src_digest(side.tree)
        side.key_file.unlink(missing_ok=True)  # each invocation's keyrings start afresh
    if not args.head:
        head.label = (
            f"the working tree {ROOT} at {at}"
            f"{' with uncommitted changes to src/' if dirty else ''} ({head.fingerprint})"
        )
    os.chdir(WORK)  # nothing run here picks up a stray .env
    print(f"base: {base.label}\nhead: {head.label}", flush=True)

    folder, households, persons, made = synth(base, args.households)
    print(f"country: {folder} ({households:,} households, {persons:,} persons; {made})", flush=True)
    facts = {
        "n": args.households,
        "households": households,
        "persons": persons,
        "made": made,
        "pg": pg_facts(),
        "duration": args.duration,
        "warmup": args.warmup,
    }
    facts["machine_state"] = wait_until_quiet(args.quiet_wait)
    print(f"machine: {facts['machine_state']}", flush=True)

    servers: list = []
    try:
        for i in range(1, args.runs + 1):
            # ABBA: the side that goes first swaps every pair, so a drift over the session
            # (caches warming, autovacuum) does not always favour the same side.
            for side in (base, head) if i % 2 else (head, base):
                result = import_once(side, folder, households, persons)
                side.imports.append(result)
                own = f" (own {result['own']:.1f} s)" if result["own"] is not None else ""
                print(
                    f"import {i}/{args.runs} {side.key}: {result['wall']:.1f} s{own}, "
                    f"{result['rss']:,.0f} MB, load {result['load']:.1f}",
                    flush=True,
                )
            b, h = base.imports[-1], head.imports[-1]
            print(f"import {i}/{args.runs} head ÷ base: {h['wall'] / b['wall']:.3f}", flush=True)

        vacuum = []
        for side in (base, head):
            began = time.perf_counter()
            with psycopg.connect(_libpq(side.url), autocommit=True) as connection:
                connection.execute("VACUUM (ANALYZE)")
            vacuum.append(f"{side.key} {time.perf_counter() - began:.0f} s")
        facts["vacuum"] = ", ".join(vacuum)
        print(f"VACUUM (ANALYZE): {facts['vacuum']}", flush=True)

        keys = sample_keys(base, SAMPLE)
        ids = {side.key: ids_for(side, keys) for side in (base, head)}
        keys = [k for k in keys if all(k in found for found in ids.values())]
        if len(keys) < min(SAMPLE, households) // 2:
            raise Failed(f"only {len(keys):,} sampled households are in both registries")
        facts["sample"] = len(keys)
        stamp = time.strftime("%Y%m%d%H%M%S")
        for side in (base, head):
            token = make_user(side, f"bench-cmp-{stamp}", service=False)
            (WORK / f"token-{side.key}.txt").write_text(token + "\n")
            (WORK / f"ids-{side.key}.txt").write_text(
                "\n".join(ids[side.key][k] for k in keys) + "\n"
            )
        print(f"GET: {len(keys):,} households sampled; tokens made", flush=True)

        for i in range(1, args.get_runs + 1):
            # ABBA: the side that goes first swaps every pair, so a drift over the session
            # (caches warming, autovacuum) does not always favour the same side.
            for side in (base, head) if i % 2 else (head, base):
                token = (WORK / f"token-{side.key}.txt").read_text().strip()
                check = [ids[side.key][k] for k in keys[:3]]
                result = serve_and_load(
                    side,
                    token,
                    WORK / f"ids-{side.key}.txt",
                    check,
                    args.warmup,
                    args.duration,
                    servers,
                    i,
                )
                side.gets.append(result)
                print(
                    f"GET {i}/{args.get_runs} {side.key}: {result['rps']:,.0f} req/s, p50 "
                    f"{ms(result['p50'])}, p99 {ms(result['p99'])}, non-2xx {result['non2xx']}, "
                    f"socket errors {result['socket_errors']}",
                    flush=True,
                )
                if result["non2xx"]:
                    print(result["output"][-1500:], flush=True)
    finally:
        for server in list(servers):
            stop_group(server)
        if not args.keep:
            for side in (base, head):
                try:
                    drop(side)
                except psycopg.Error as error:
                    print(f"could not drop {side.database}: {last_line(str(error))}", flush=True)

    facts["load_end"] = os.getloadavg()[0]
    facts["head_at_end"] = src_digest(head.tree)
    lines = report(base, head, facts)
    print("\n" + "\n".join(lines))
    if not args.no_record:
        record(args.section, command_line(args), lines)
        print(f"\nrecorded in {ROOT / 'BENCHMARKS.md'}, section '{args.section}'")
    print(f"done in {(time.perf_counter() - started) / 60:.1f} min", flush=True)


def _interrupted(signum: int, _frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


if __name__ == "__main__":
    # Stopped by Ctrl-C or kill (SIGTERM, SIGHUP), the cleanup still runs: servers stopped,
    # databases dropped. SIGINT too when started in the background, where it comes ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupted)
    try:
        main()
    except Failed as failure:
        detail = ""
        if failure.detail:
            path = log_path("error")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(failure.detail)
            detail = f": {last_line(failure.detail)} (whole output: {path})"
        print(f"bench_compare: {failure}{detail}", file=sys.stderr)
        sys.exit(1)
    except psycopg.OperationalError as error:
        print(f"bench_compare: PostgreSQL: {last_line(str(error))}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as stop:
        print(f"bench_compare: interrupted{f' ({stop})' if str(stop) else ''}", file=sys.stderr)
        sys.exit(130)
