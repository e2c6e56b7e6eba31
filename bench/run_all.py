"""`make bench`: every benchmark, one after another (never two at once), into BENCHMARKS.md.

    .venv/bin/python bench/run_all.py

Takes about three hours on a 2-core machine. bench_import.py restarts the local PostgreSQL twice
(to tune it for bulk loading and to reset it), so it needs root; it leaves the 1,000,000-household
registry `sijill_bench` that bench_api.py serves.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = (
    "bench_synth.py",
    "bench_import.py",
    "bench_api.py",
    "bench_security.py",
    "bench_rotation.py",
    "bench_audit.py",
    "bench_demo.py",
)


def main() -> None:
    for step in STEPS:
        print(f"== {step}", flush=True)
        subprocess.run([sys.executable, str(HERE / step)], check=True, cwd=HERE.parent)


if __name__ == "__main__":
    main()
