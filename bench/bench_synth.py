"""Benchmark `sijill synth`: generate a synthetic country several times, report the median.

Each run is a fresh Python process (so imports and memory are counted as a user sees them),
writing to a temporary folder under /tmp/sijill-bench that is deleted afterwards. The figures
are written to BENCHMARKS.md (section "Synthetic country") by `common.record`.

    .venv/bin/python bench/bench_synth.py                  # 1,000,000 households, 3 runs
    .venv/bin/python bench/bench_synth.py --households 100000 --runs 5
"""

import argparse
import json
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import record

WORK = Path("/tmp/sijill-bench")

CHILD = """
import json, resource, sys
from pathlib import Path
from sijill.synth.service import generate
manifest = generate(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_kib": peak_kib, "sizes": manifest["sizes"],
                  "bytes": sum(f["bytes"] for f in manifest["files"])}))
"""


def run_once(households: int, seed: int) -> dict:
    WORK.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-synth-", dir=WORK))
    try:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(households), str(seed), str(folder / "out")],
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    runs = []
    for i in range(args.runs):
        result = run_once(args.households, args.seed)
        runs.append(result)
        print(
            f"run {i + 1}: {result['wall_s']:.1f} s, peak RSS {result['peak_kib'] / 1024:.0f} MiB",
            flush=True,
        )
    sizes = runs[0]["sizes"]
    wall = statistics.median(r["wall_s"] for r in runs)
    peak = statistics.median(r["peak_kib"] for r in runs) / 1024
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"\nsijill synth --households {args.households:,} (seed {args.seed}), {args.runs} runs\n"
        f"machine: {platform.machine()}, {platform.processor() or '?'}, "
        f"{len(__import__('os').sched_getaffinity(0))} CPUs, Python {platform.python_version()}\n"
        f"output: {sizes['households']:,} households, {sizes['persons']:,} persons "
        f"({sizes['duplicate_persons']:,} duplicates), {runs[0]['bytes'] / 1e9:.2f} GB\n"
        f"median wall time: {wall:.1f} s ({sizes['persons'] / wall:,.0f} persons/s)\n"
        f"median peak RSS: {peak:.0f} MiB (max over runs, RUSAGE_CHILDREN: {children_peak:.0f} MiB)"
    )
    command = "python bench/bench_synth.py"
    if (args.households, args.runs, args.seed) != (1_000_000, 3, 1):
        command += f" --households {args.households} --runs {args.runs} --seed {args.seed}"
    record(
        "Synthetic country",
        command,
        [
            f"`sijill synth` (the `generate` function in a fresh Python process, output written "
            f"to /tmp/sijill-bench) for {args.households:,} households, seed {args.seed}; "
            f"median of {args.runs} runs, one after another, single process.",
            "",
            "| output | median wall time | persons/s | median peak RSS |",
            "|---|---|---|---|",
            f"| {sizes['households']:,} households, {sizes['persons']:,} person rows "
            f"({sizes['duplicate_persons']:,} injected duplicates), "
            f"{runs[0]['bytes'] / 1e9:.2f} GB of files | {wall:.1f} s | "
            f"{sizes['persons'] / wall:,.0f} | {peak:,.0f} MiB |",
            "",
            "Runs: "
            + "; ".join(f"{r['wall_s']:.1f} s / {r['peak_kib'] / 1024:,.0f} MiB" for r in runs)
            + ".",
        ],
    )


if __name__ == "__main__":
    main()
