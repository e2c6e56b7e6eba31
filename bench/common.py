"""Shared by the benchmarks: machine description, child-process timing, BENCHMARKS.md."""

import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"
PYTHON = ROOT / ".venv" / "bin" / "python"
SIJILL = ROOT / ".venv" / "bin" / "sijill"
# The keyring of the registry bench_import.py leaves in `sijill_bench`: bench_api.py serves that
# registry, so it must use the same keys (a server with other keys is refused at start).
BENCH_KEY_FILE = Path("/tmp/sijill-bench/keys.json")
PG_ADMIN_URL = os.environ.get(
    "SIJILL_BENCH_PG", "postgresql+psycopg://sijill:sijill@localhost:5432/postgres"
)


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    output: str


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kb / 1024 / 1024:.0f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def run_measured(command: list[str], env: dict | None = None) -> Run:
    """Run a command; its wall time and its own peak resident memory (GNU time)."""
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        started = time.perf_counter()
        process = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", timing.name, *command],
            env=_measured_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        seconds = time.perf_counter() - started
        peak_kb = int(timing.read().strip().splitlines()[-1])
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{process.stdout[-3000:]}")
    return Run(seconds, peak_kb / 1024, process.stdout)


def _measured_env(env: dict | None) -> dict:
    # Without cached bytecode every process compiles its imports afresh: seconds of start-up
    # that a deployed Sijill never pays.
    merged = {**os.environ, **(env or {})}
    merged.pop("PYTHONDONTWRITEBYTECODE", None)
    return merged


def median(values: list[float]) -> float:
    return statistics.median(values)


def record(section: str, command: str, lines: list[str]) -> None:
    """Replace `section` in BENCHMARKS.md with fresh figures."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        f"## {section}",
        "",
        f"- Machine: {machine()}",
        f"- Date: {stamp}",
        f"- Command: `{command}`",
        "",
        *lines,
        "",
    ]
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n\n"
    sections = text.split("\n## ")
    head, rest = sections[0], sections[1:]
    rest = [s for s in rest if not s.startswith(section + "\n")]
    parts = [head.rstrip("\n") + "\n"] + ["## " + s.rstrip("\n") + "\n" for s in rest]
    parts.append("\n".join(body))
    BENCHMARKS.write_text("\n".join(parts))


def bench_user(
    url: str,
    key_file: Path,
    username: str,
    role: str,
    area_code: str | None = None,
    *,
    service: bool = False,
    token_minutes: int = 240,
) -> str:
    """A user made through the service layer, as an administrator would; their access token
    (valid `token_minutes`, signed with the keyring at `key_file`), or a service account's
    `user:key` for SIJILL_SERVICE_KEY."""
    from sijill.core.db import make_engine, session_factory, transaction
    from sijill.core.settings import Settings
    from sijill.security.audit.service import append
    from sijill.security.keys.keyring import install_keyring
    from sijill.security.principal import Principal
    from sijill.security.users import tokens
    from sijill.security.users.accounts import GrantSpec, create_user, user_grants
    from sijill.security.users.models import User

    settings = Settings(
        database_url=url, key_file=key_file, access_token_minutes=token_minutes, _env_file=None
    )
    install_keyring(settings)
    engine = make_engine(url)
    sessions = session_factory(engine)
    principal = Principal.system("bench")
    try:
        with transaction(sessions) as session:
            secret = create_user(
                session, principal, username, [GrantSpec(role, area_code)], service=service
            )
            append(session, principal.take_audit())
        if service:
            return f"{username}:{secret}"
        with sessions() as session:
            user = session.query(User).filter_by(username=username).one()
            grants = user_grants(session, user.id)
            return tokens.issue(settings, username, user.token_version, grants).access_token
    finally:
        engine.dispose()
