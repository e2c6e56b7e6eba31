"""The demo from a fresh clone: `make demo` until the API answers, then the demo alone.

    .venv/bin/python bench/bench_demo.py [--runs 3] [--port 8766]

1. `git clone /work/main /tmp/sijill-bench/demo-clone` (what is committed), then `make demo`
   in it, timed from the start until `GET /health` answers 200: virtualenv, `pip install uv`,
   `uv sync --frozen` of the pinned uv.lock, a 20,000-household synthetic country, its import
   into SQLite, the summary, and the API starting. Run with this machine's uv cache as it is
   (warm or not, the script says how big it was), then again from a new clone with
   `UV_CACHE_DIR` and `PIP_CACHE_DIR` pointed at empty folders: a cold install from PyPI.
2. The demo after install: `sijill demo --no-serve` with the clone's virtualenv, each run on a
   fresh SQLite file and a fresh data folder (so it generates and imports); median of `--runs`.

The served API (`make demo` ends by serving in the foreground) is stopped with its whole
process group as soon as /health answers, and the port is checked free afterwards.
SIJILL_PORT is set to `--port` so a server the machine already runs on 8000 is not disturbed.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from common import ROOT, median, record, run_measured

WORK = Path("/tmp/sijill-bench")
CLONE = WORK / "demo-clone"
TIMEOUT = 1800  # a cold install on a slow network included


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIJILL_", "VIRTUAL_ENV"))}
    return {**env, **extra}


def clone() -> str:
    shutil.rmtree(CLONE, ignore_errors=True)
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(CLONE)], check=True)
    return subprocess.run(
        ["git", "-C", str(CLONE), "rev-parse", "--short", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def du_mb(path: Path) -> float:
    if not path.exists():
        return 0.0
    out = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True).stdout
    return float(out.split()[0]) if out else 0.0


def make_demo(port: int, env: dict[str, str], log: Path) -> dict:
    """`make demo` in the clone until /health answers; then stop everything it started."""
    if not port_free(port):
        raise RuntimeError(f"port {port} is taken: choose another with --port")
    with log.open("w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            ["make", "demo"],
            cwd=CLONE,
            env={**env, "SIJILL_PORT": str(port), "COLUMNS": "120"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"make demo exited:\n{log.read_text()[-3000:]}")
                if time.perf_counter() - started > TIMEOUT:
                    raise RuntimeError(f"no /health after {TIMEOUT} s")
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/health", timeout=1
                    ) as answer:
                        if answer.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                time.sleep(0.2)
            seconds = time.perf_counter() - started
        finally:
            stop(process)
    if not port_free(port):
        raise RuntimeError(f"something still listens on {port} after stopping the demo")
    text = log.read_text()
    ready = re.search(r"Demo ready in ([\d.]+) s", text)
    return {"seconds": seconds, "demo": float(ready.group(1)) if ready else None}


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # uvicorn may outlive make for a moment: nothing of the group may remain.
    for _ in range(50):
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)


def demo_once(index: int) -> dict:
    folder = WORK / "demo-runs" / str(index)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    run = run_measured(
        [
            str(CLONE / ".venv" / "bin" / "sijill"),
            "demo",
            "--no-serve",
            "--data",
            str(folder / "country"),
        ],
        env={**clean_env(), "SIJILL_DATABASE_URL": f"sqlite:///{folder}/sijill.db"},
    )
    ready = re.search(r"Demo ready in ([\d.]+) s", run.output)
    imported = re.search(r"Imported ([\d,]+) households and ([\d,]+) persons", run.output)
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "seconds": run.seconds,
        "own": float(ready.group(1)),
        "rss": run.peak_rss_mb,
        "households": imported.group(1),
        "persons": imported.group(2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)

    uv_cache = Path(os.environ.get("UV_CACHE_DIR", Path.home() / ".cache" / "uv"))
    pip_cache = Path(os.environ.get("PIP_CACHE_DIR", Path.home() / ".cache" / "pip"))
    cache_before = (du_mb(uv_cache), du_mb(pip_cache))
    commit = clone()
    warm = make_demo(args.port, clean_env(), WORK / "make-demo-warm.log")
    print(f"make demo, machine caches: {warm['seconds']:.1f} s to /health", flush=True)

    cold = None
    if not args.skip_cold:
        empty = WORK / "empty-caches"
        shutil.rmtree(empty, ignore_errors=True)
        (empty / "uv").mkdir(parents=True)
        (empty / "pip").mkdir(parents=True)
        clone()
        cold = make_demo(
            args.port,
            clean_env(UV_CACHE_DIR=str(empty / "uv"), PIP_CACHE_DIR=str(empty / "pip")),
            WORK / "make-demo-cold.log",
        )
        print(f"make demo, empty caches: {cold['seconds']:.1f} s to /health", flush=True)
        shutil.rmtree(empty, ignore_errors=True)

    venv_python = subprocess.run(
        [str(CLONE / ".venv" / "bin" / "python"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    runs = []
    for index in range(args.runs):
        runs.append(demo_once(index))
        print(f"sijill demo --no-serve: {runs[-1]['seconds']:.1f} s", flush=True)
    wall = median([r["seconds"] for r in runs])
    own = median([r["own"] for r in runs])

    def install_row(label: str, result: dict) -> str:
        demo = result["demo"]
        rest = f"{result['seconds'] - demo:.1f} s" if demo is not None else "?"
        return f"| {label} | {result['seconds']:.1f} s | {demo:.1f} s | {rest} |"

    lines = [
        f"Fresh `git clone /work/main` (commit {commit}, committed state only) into "
        f"/tmp/sijill-bench/demo-clone; `make demo` with `SIJILL_PORT={args.port}`, timed from "
        "the start until `GET /health` answers 200, then the served API is stopped (its whole "
        f"process group; port checked free). {venv_python} (`python3`); "
        "one process at a time.",
        "",
        '| `make demo` from a fresh clone | until /health | of which "Demo ready in" | '
        "install, start-up and serving (the rest) |",
        "|---|---|---|---|",
        install_row(
            f"machine's caches as found (uv cache {cache_before[0]:,.0f} MB: **warm**; pip cache "
            f"{cache_before[1]:,.0f} MB)",
            warm,
        ),
    ]
    if cold:
        lines.append(
            install_row(
                "**cold**: `UV_CACHE_DIR` and `PIP_CACHE_DIR` empty, everything from PyPI", cold
            )
        )
    lines += [
        "",
        f"The demo after install: `sijill demo --no-serve` with the clone's virtualenv, each run "
        f"on a fresh SQLite file and a fresh `--data` folder (so it generates "
        f"{runs[0]['households']} households / {runs[0]['persons']} persons and imports them); "
        f"median of {args.runs}: **{wall:.1f} s** process wall time ({own:.1f} s as the demo "
        f"prints it), peak memory {median([r['rss'] for r in runs]):,.0f} MB. Target under "
        f"60 s: **{'met' if wall < 60 else 'not met'}**.",
        "",
        "Runs (s): " + ", ".join(f"{r['seconds']:.1f}" for r in runs) + ".",
    ]
    record("Demo from a fresh clone", "python bench/bench_demo.py", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
