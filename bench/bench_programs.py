"""Programs measured: eligibility, ranking and decision records of every example program over
a national registry, against a plain per-household Python loop and a plain COPY.

    .venv/bin/python bench/bench_programs.py scale [--households 1000000] [--runs 3]
        [--loop-sample 100000] [--multiply 1] [--reuse] [--drop-database] [--baseline TREE]
        [--parallel N]
    .venv/bin/python bench/bench_programs.py entitlements [--households 1000000] [--runs 3]
        [--reuse]

The registry is the targeting benchmark's (`bench_targeting.py`: `sijill synth` imported into
PostgreSQL, a PMT fitted on its survey by one program officer and approved by another). Features
and scores are precomputed, as the figure asks: each run takes a feature snapshot, a PMT run
and an MPI run first (not timed), empties the enrollment tables (so every run notifies the same
households), then times `sijill programs run SPEC --snapshot N` for every spec in
`examples/programs/`, each its own process: wall time and peak memory; their sum is the figure.

`--multiply K` measures K times the registry: the snapshot's feature view and its two scoring
runs are copied K times under fresh household IDs (IDs past the registry's ten digits) and
recorded as a snapshot and runs of their own, so the programs read K × N households of real
synthetic features without importing K × N households (which is the targeting benchmark's
work, not this one's).

In the same run:
- a plain COPY: every decision row the programs wrote, exported as CSV and copied into an
  empty table of the same definition (primary key included) by `COPY ... FROM STDIN`; the
  runs' own time to write their decisions over that is the ratio;
- a plain per-household Python loop on a sample: each household's features and scores as a
  dict, every program's clauses evaluated in Python (the spec's expressions compiled to Python
  closures), ranked with `sorted`, and one INSERT per decision; its time per household times
  the households, over the bulk figure, is the ratio.
"""

import argparse
import hashlib
import json
import math
import operator
import subprocess
import time
import uuid
from datetime import date
from pathlib import Path

import polars as pl
import psycopg
from bench_targeting import WORK, _country, _fit, _json, _pg, _registry
from common import PG_ADMIN_URL, ROOT, SIJILL, median, record, run_measured
from sqlglot import exp

from sijill.programs.clauses import with_values
from sijill.programs.spec import load_spec

EXAMPLES = ROOT / "examples" / "programs"
DATABASE = "sijill_targeting"


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(_pg(url))


def _prepare(url: str, officer: dict, version: str, multiply: int, baseline: Path | None) -> int:
    """A snapshot with a PMT and an MPI run on it (the registry's, or K copies of it), and
    enrollment emptied, with the indexes of the code about to run (`baseline`: a checkout)."""
    with _connect(url) as connection:
        _schema_of(connection, ROOT)  # back from the baseline's, for this code's commands
    snap = _json(officer, "features", "snapshot")["snapshot_id"]
    _json(officer, "pmt", "score", "--model", version, "--snapshot", str(snap))
    _json(officer, "mpi", "--snapshot", str(snap))
    if multiply > 1:
        snap = _multiplied(url, snap, multiply)
    with _connect(url) as connection:
        connection.execute("TRUNCATE enrollment, enrollment_event")
        _schema_of(connection, baseline or ROOT)
    return snap


def _schema_of(connection, tree: Path) -> None:
    """The schema of the code in `tree` (this checkout or the baseline's), as far as the
    programs' writes go: migration 0021 dropped an index that older code wrote through, and
    the code checks the database's revision before it runs."""
    revision, current = _head(tree), _head(ROOT)
    if revision != current and (current, revision) != ("0021", "0020"):
        raise SystemExit(f"the way from schema {current} back to {revision} is not known here")
    connection.execute("DROP INDEX IF EXISTS ix_enrollment_status")
    if revision == "0020":
        connection.execute("CREATE INDEX ix_enrollment_status ON enrollment (status)")
    connection.execute("UPDATE alembic_version SET version_num = %s", (revision,))


def _head(tree: Path) -> str:
    versions = sorted((tree / "src/sijill/migrations/versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    return versions[-1].name[:4]


def _multiplied(url: str, snapshot_id: int, k: int) -> int:
    folder = WORK / "work" / "targeting" / "snapshots"
    with _connect(url) as connection:
        row = connection.execute(
            "SELECT as_of, catalogue_version, created_by, households, "
            "households_without_consent, file_name FROM feature_snapshot WHERE id = %s",
            (snapshot_id,),
        ).fetchone()
        view = pl.read_parquet(folder / row[5])
        ids = view["household_id"].cast(pl.Int64)
        copies = pl.concat([view.with_columns(household_id=(ids + i * 10**10)) for i in range(k)])
        name = f"{uuid.uuid4().hex}.parquet"
        copies.write_parquet(folder / name, compression="zstd")
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        new_id = connection.execute(
            "INSERT INTO feature_snapshot (as_of, catalogue_version, created_by, created_at, "
            "households, households_without_consent, file_name, sha256) "
            "VALUES (%s, %s, %s, now(), %s, %s, %s, %s) RETURNING id",
            (row[0], row[1], row[2], row[3] * k, row[4] * k, name, digest),
        ).fetchone()[0]
        runs = connection.execute(
            "SELECT id FROM targeting_run WHERE snapshot_id = %s",
            (snapshot_id,),
        ).fetchall()
        for (run_id,) in runs:
            copied = connection.execute(
                "INSERT INTO targeting_run (kind, snapshot_id, model_version, as_of, run_by, "
                "started_at, finished_at, households_scored, households_without_consent) "
                "SELECT kind, %s, model_version, as_of, run_by, now(), now(), "
                "households_scored * %s, households_without_consent * %s FROM targeting_run "
                "WHERE id = %s RETURNING id",
                (new_id, k, k, run_id),
            ).fetchone()[0]
            connection.execute(
                "INSERT INTO household_score (run_id, household_id, score, poor) "
                "SELECT %s, household_id + g * 10000000000, score, poor "
                "FROM household_score, generate_series(0, %s) AS g WHERE run_id = %s",
                (copied, k - 1, run_id),
            )
        print(f"multiplied snapshot {snapshot_id} x{k} -> {new_id}", flush=True)
        return new_id


def _forget_copies(url: str, snapshot_id: int, multiply: int) -> None:
    """The decisions and enrollment events of the runs on a multiplied snapshot, once
    measured: a hundred million rows a time about households that exist only in its file
    (the disk holds a few such sets, not one per run)."""
    if multiply == 1:
        return
    with psycopg.connect(_pg(url), autocommit=True) as connection:
        runs = "SELECT id FROM program_run WHERE snapshot_id = %s"
        for table in ("eligibility_decision", "enrollment_event"):
            connection.execute(f"DELETE FROM {table} WHERE run_id IN ({runs})", (snapshot_id,))
            connection.execute(f"VACUUM {table}")  # their room to the next runs' rows


def _plain_copy(url: str, run_ids: list[int]) -> tuple[float, int]:
    """Seconds for a plain CSV COPY of these runs' decision rows into an empty table of the
    same definition, and the rows."""
    spool = WORK / "decisions.csv"
    with _connect(url) as connection:
        with spool.open("wb") as out, connection.cursor() as cursor:
            listed = ", ".join(str(r) for r in run_ids)
            query = f"SELECT * FROM eligibility_decision WHERE run_id IN ({listed})"
            with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
                for chunk in copy:
                    out.write(chunk)
        connection.execute("DROP TABLE IF EXISTS decision_copy")
        connection.execute("CREATE TABLE decision_copy (LIKE eligibility_decision INCLUDING ALL)")
        connection.commit()
        started = time.perf_counter()
        with (
            spool.open("rb") as source,
            connection.cursor() as cursor,
            cursor.copy("COPY decision_copy FROM STDIN (FORMAT csv)") as copy,
        ):
            while block := source.read(1 << 20):
                copy.write(block)
        connection.commit()
        seconds = time.perf_counter() - started
        rows = connection.execute("SELECT count(*) FROM decision_copy").fetchone()[0]
        connection.execute("DROP TABLE decision_copy")
    spool.unlink()
    return seconds, rows


# --- the per-household loop -------------------------------------------------------------------

_COMPARE = {
    exp.EQ: operator.eq, exp.NEQ: operator.ne, exp.GT: operator.gt, exp.GTE: operator.ge,
    exp.LT: operator.lt, exp.LTE: operator.le,
}  # fmt: skip
_ARITHMETIC = {
    exp.Add: operator.add, exp.Sub: operator.sub, exp.Mul: operator.mul,
    exp.Div: operator.truediv, exp.Mod: operator.mod,
}  # fmt: skip


def to_python(node: exp.Expression):
    """An expression of the whitelisted language as a Python closure over a dict (SQL's NULL
    as None: a comparison with NULL is None, NOT None is None, AND/OR three-valued)."""
    if isinstance(node, exp.Paren):
        return to_python(node.this)
    if isinstance(node, exp.Column):
        name = node.name
        return lambda row: row.get(name)
    if isinstance(node, exp.Literal):
        value = node.this if node.is_string else float(node.this)
        return lambda row: value
    if isinstance(node, exp.Boolean):
        value = node.this
        return lambda row: value
    if isinstance(node, exp.Null):
        return lambda row: None
    for kind, op in {**_COMPARE, **_ARITHMETIC}.items():
        if isinstance(node, kind):
            left, right = to_python(node.this), to_python(node.expression)

            def binary(row, left=left, right=right, op=op):
                a, b = left(row), right(row)
                if a is None or b is None:
                    return None
                if op is operator.truediv and b == 0:
                    return None
                return op(a, b)

            return binary
    if isinstance(node, exp.And | exp.Or):
        left, right = to_python(node.this), to_python(node.expression)
        conjunction = isinstance(node, exp.And)

        def logic(row):
            a, b = left(row), right(row)
            if conjunction:
                return False if a is False or b is False else (None if None in (a, b) else True)
            return True if a is True or b is True else (None if None in (a, b) else False)

        return logic
    if isinstance(node, exp.Not):
        inner = to_python(node.this)
        return lambda row: None if inner(row) is None else not inner(row)
    if isinstance(node, exp.Neg):
        inner = to_python(node.this)
        return lambda row: None if inner(row) is None else -inner(row)
    if isinstance(node, exp.Is):
        inner = to_python(node.this)
        return lambda row: inner(row) is None
    if isinstance(node, exp.In):
        inner, values = to_python(node.this), [to_python(v) for v in node.expressions]
        return lambda row: None if inner(row) is None else inner(row) in {v(row) for v in values}
    if isinstance(node, exp.Between):
        inner, low, high = (to_python(node.this), to_python(node.args["low"]),
                            to_python(node.args["high"]))  # fmt: skip

        def between(row):
            a, lo, hi = inner(row), low(row), high(row)
            return None if None in (a, lo, hi) else lo <= a <= hi

        return between
    if isinstance(node, exp.Case):
        branches = [(to_python(b.this), to_python(b.args["true"])) for b in node.args["ifs"]]
        default = to_python(node.args["default"]) if node.args.get("default") else None

        def case(row):
            for condition, result in branches:
                if condition(row) is True:
                    return result(row)
            return default(row) if default else None

        return case
    functions = {
        exp.Coalesce: lambda xs: next((x for x in xs if x is not None), None),
        exp.Least: lambda xs: None if None in xs else min(xs),
        exp.Greatest: lambda xs: None if None in xs else max(xs),
        exp.Abs: lambda xs: None if xs[0] is None else abs(xs[0]),
        exp.Floor: lambda xs: None if xs[0] is None else math.floor(xs[0]),
        exp.Ceil: lambda xs: None if xs[0] is None else math.ceil(xs[0]),
        exp.Round: lambda xs: None if xs[0] is None else round(xs[0], int(xs[1] or 0)),
        exp.Exp: lambda xs: None if xs[0] is None else math.exp(xs[0]),
        exp.Ln: lambda xs: None if xs[0] is None or xs[0] <= 0 else math.log(xs[0]),
    }
    for kind, function in functions.items():
        if isinstance(node, kind):
            parts = [node.this, *node.expressions]
            if isinstance(node, exp.Round):
                parts = [node.this, node.args.get("decimals") or exp.Literal.number(0)]
            compiled = [to_python(p) for p in parts]
            return lambda row, f=function, c=compiled: f([part(row) for part in c])
    raise ValueError(f"not in the language: {node.sql()}")


LOOP_TABLE = "loop_decision"


def _loop(url: str, snapshot_id: int, specs: list[Path], sample: int, as_of: date) -> float:
    """Seconds per household of the plain loop (every program per household)."""
    folder = WORK / "work" / "targeting" / "snapshots"
    with _connect(url) as connection:
        name = connection.execute(
            "SELECT file_name FROM feature_snapshot WHERE id = %s", (snapshot_id,)
        ).fetchone()[0]
        runs = dict(
            connection.execute(
                "SELECT kind, max(id) FROM targeting_run WHERE snapshot_id = %s GROUP BY kind",
                (snapshot_id,),
            ).fetchall()
        )
        view = pl.read_parquet(folder / name).head(sample)
        ids = view["household_id"].cast(pl.Int64).to_list()
        scores = {
            kind: dict(
                connection.execute(
                    "SELECT household_id, score FROM household_score WHERE run_id = %s "
                    "AND household_id = ANY(%s)",
                    (run_id, ids),
                ).fetchall()
            )
            for kind, run_id in runs.items()
        }
        connection.execute(f"DROP TABLE IF EXISTS {LOOP_TABLE}")
        connection.execute(f"CREATE TABLE {LOOP_TABLE} (LIKE eligibility_decision INCLUDING ALL)")
        connection.commit()
    programs = []
    for path in specs:
        spec = load_spec(path)
        values = spec.values_on(as_of)
        clauses = [to_python(with_values(c.expression, values)) for c in spec.clauses]
        ranking = to_python(with_values(spec.ranking, values)) if spec.ranking else None
        score_kinds = {score.name: score.kind for score in spec.scores}
        programs.append((spec, clauses, ranking, score_kinds))
    started = time.perf_counter()
    with _connect(url) as connection, connection.cursor() as cursor:
        for number, (spec, clauses, ranking, score_kinds) in enumerate(programs):
            judged = []
            for row in view.iter_rows(named=True):
                household = int(row["household_id"])
                for score, kind in score_kinds.items():
                    row[score] = scores[kind].get(household)
                passed = sum(1 << i for i, clause in enumerate(clauses) if clause(row) is True)
                value = ranking(row) if ranking else None
                judged.append((household, passed, value))
            full = (1 << len(clauses)) - 1
            eligible = sorted(
                (j for j in judged if j[1] == full),
                key=lambda j: (j[2] is None, (j[2] or 0) * (1 if spec.ascending else -1), j[0]),
            )
            ranks = {j[0]: i + 1 for i, j in enumerate(eligible)}
            quota = spec.quota.households if spec.quota and spec.quota.households else None
            for household, passed, _ in judged:
                rank = ranks.get(household) if ranking else None
                status = 0 if passed != full else (1 if quota is None or rank <= quota else 2)
                cursor.execute(
                    f"INSERT INTO {LOOP_TABLE} (run_id, household_id, status, passed, rank) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (number, household, status, passed, rank),
                )
        connection.commit()
    seconds = time.perf_counter() - started
    with _connect(url) as connection:
        connection.execute(f"DROP TABLE {LOOP_TABLE}")
    return seconds / view.height


def scale(args) -> None:
    folder = _country(args.households, 1)
    url, fitter, officer = _registry(folder, reuse=args.reuse)
    manifest = json.loads((folder / "manifest.json").read_text())
    fitted = _fit(folder, fitter, officer, "wls", manifest["reference_date"])
    specs = sorted(EXAMPLES.glob("*.yaml"))
    households = args.households * args.multiply
    totals, peaks, writes, copies, ratios_copy, loops, per_program = [], [], [], [], [], [], {}
    baseline, baseline_totals = _baseline(args.baseline), []
    for i in range(args.runs):
        if baseline is not None:  # the other code first, on a snapshot of its own
            snapshot = _prepare(url, officer, fitted["version"], args.multiply, baseline[0])
            env = {**officer, "PYTHONPATH": str(baseline[0] / "src")}
            baseline_totals.append(_all_programs(specs, snapshot, env))
            print(f"run {i + 1}: baseline {baseline[1]} {baseline_totals[-1]:.1f} s", flush=True)
            _forget_copies(url, snapshot, args.multiply)  # both codes write into one table
        snapshot = _prepare(url, officer, fitted["version"], args.multiply, None)
        total, peak, written, run_ids = 0.0, 0.0, 0.0, []
        if args.parallel > 1:  # one command, N runs at a time: its wall time is the total
            run = run_measured(
                [str(SIJILL), "programs", "run", *map(str, specs), "--snapshot", str(snapshot),
                 "--parallel", str(args.parallel), "-o", "json"], env=officer,
            )  # fmt: skip
            reports = json.loads(run.output[run.output.index("\n[") :])  # after the progress
            total, peak = run.seconds, run.peak_rss_mb
            timed = [(report, report["seconds"]["total"], run.peak_rss_mb) for report in reports]
        else:
            timed = []
            for spec in specs:
                run = run_measured(
                    [str(SIJILL), "programs", "run", str(spec), "--snapshot", str(snapshot),
                     "-o", "json"], env=officer,
                )  # fmt: skip
                report = json.loads(run.output.strip().splitlines()[-1])
                total += run.seconds
                peak = max(peak, run.peak_rss_mb)
                timed.append((report, run.seconds, run.peak_rss_mb))
        for report, seconds, peak_mb in timed:
            written += report["seconds"].get("writing_decisions", 0.0)
            run_ids.append(report["run_id"])
            per_program.setdefault(report["program"], []).append(
                (seconds, peak_mb, report["selected"], report["seconds"])
            )
        copy_seconds, rows = _plain_copy(url, run_ids)
        _forget_copies(url, snapshot, args.multiply)
        totals.append(total)
        peaks.append(peak)
        writes.append(written)
        copies.append(copy_seconds)
        ratios_copy.append(written / copy_seconds)
        print(f"run {i + 1}: {len(specs)} programs on {households:,} households {total:.1f} s "
              f"(peak {peak:,.0f} MB); decisions written {written:.1f} s, plain COPY of the "
              f"same {rows:,} rows {copy_seconds:.1f} s", flush=True)  # fmt: skip
    per_household = _loop(url, snapshot, specs, args.loop_sample, date.today())
    loops.append(per_household)
    loop_total = per_household * households
    lines = [
        f"Registry on PostgreSQL: `sijill synth --households {args.households:,}` imported"
        + (
            f", its feature view and scores copied {args.multiply} times under fresh IDs"
            if args.multiply > 1
            else ""
        )
        + f" ({households:,} households; features, PMT and MPI precomputed). "
        f"{len(specs)} example programs (`examples/programs/`), "
        + (
            f"all in one `sijill programs run --snapshot --parallel {args.parallel}` (a "
            "program's time is its run's own, beside others; the total is the command's)"
            if args.parallel > 1
            else "each `sijill programs run --snapshot` in its own process"
        )
        + f"; {args.runs} runs, enrollment emptied before each.",
        "",
        "| program | wall time (median) | peak memory (max) | selected | evaluate "
        "| write decisions |",
        "|---|---|---|---|---|---|",
        *(
            f"| {name} | {median([r[0] for r in runs]):.1f} s | "
            f"{max(r[1] for r in runs):,.0f} MB | {runs[-1][2]:,} | "
            f"{median([r[3].get('evaluating', 0) for r in runs]):.1f} s | "
            f"{median([r[3].get('writing_decisions', 0) for r in runs]):.1f} s |"
            for name, runs in per_program.items()
        ),
        f"| **all {len(specs)} programs** | **{median(totals):.1f} s** | "
        f"**{max(peaks):,.0f} MB** | | | **{median(writes):.1f} s** |",
        "",
        f"- Decision rows written by the runs (binary COPY built in numpy): "
        f"{median(writes):.1f} s; a plain CSV `COPY` of the same rows into an empty table of "
        f"the same definition: {median(copies):.1f} s; ratio **{median(ratios_copy):.2f}**.",
        f"- Plain per-household Python loop (features and scores as dicts, clauses compiled to "
        f"Python, `sorted`, one INSERT per decision) on {args.loop_sample:,} households: "
        f"{per_household * 1e3:.2f} ms per household for all programs, "
        f"{loop_total / 60:.0f} min for {households:,}; ratio loop ÷ bulk "
        f"**{loop_total / median(totals):.0f}×**.",
    ]
    if baseline is not None:
        lines.append(
            f"- Baseline in the same run: the same programs by {baseline[1]} (a worktree, its "
            f"`src` first on PYTHONPATH, each run on a snapshot of its own): "
            f"{median(baseline_totals):.1f} s; this code {median(totals):.1f} s; ratio "
            f"**{median(baseline_totals) / median(totals):.2f}x**."
        )
    print("\n".join(lines))
    record(
        f"Programs: eligibility of the example programs on {households:,} households"
        + (f", {args.parallel} at a time" if args.parallel > 1 else ""),
        f"python bench/bench_programs.py scale --households {args.households} --runs "
        f"{args.runs} --loop-sample {args.loop_sample}"
        + (f" --multiply {args.multiply}" if args.multiply > 1 else "")
        + (f" --parallel {args.parallel}" if args.parallel > 1 else "")
        + (f" --baseline <worktree of {baseline[1]}>" if baseline else ""),
        lines,
    )
    if args.drop_database:
        with psycopg.connect(_pg(PG_ADMIN_URL), autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {DATABASE}")


def _baseline(folder: str | None) -> tuple[Path, str] | None:
    """A checkout of other code (`git worktree add /tmp/base <commit>`) and its commit."""
    if folder is None:
        return None
    tree = Path(folder).resolve()
    if not (tree / "src" / "sijill").is_dir():
        raise SystemExit(f"--baseline {folder}: no src/sijill there (give a git worktree)")
    commit = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return tree, commit


def _all_programs(specs: list[Path], snapshot: int, env: dict) -> float:
    """Seconds for every spec run on the snapshot, each in its own process."""
    return sum(
        run_measured(
            [str(SIJILL), "programs", "run", str(spec), "--snapshot", str(snapshot), "-o", "json"],
            env=env,
        ).seconds
        for spec in specs
    )


ALLOWANCE = """\
program: bench-allowance
version: 1
name: {ar: منحة الأسرة, fr: allocation familiale, en: household allowance}
owner: Benchmark
currency: XSJ
cycle: monthly
parameters:
  base: {description: Per household, unit: XSJ, reference: bench, values: {2020-01-01: 100}}
  per_child:
    {description: Per child up to three, unit: XSJ, reference: bench, values: {2020-01-01: 12.5}}
eligibility: "hh_size >= 1"
benefit:
  components:
    - {name: base, amount: base}
    - {name: children, amount: per_child, per: "LEAST(n_children_0_17, 3)"}
recipient: female_caregiver
"""


def entitlements(args) -> None:
    """Entitlement generation for every household of a universal allowance (every consenting
    household of the registry: about a million at 1M), enrolled in bulk by SQL beforehand."""
    folder = _country(args.households, 1)
    url, fitter, officer = _registry(folder, reuse=args.reuse)
    spec = WORK / "bench-allowance.yaml"
    spec.write_text(ALLOWANCE)
    snap = _json(officer, "features", "snapshot")["snapshot_id"]
    with _connect(url) as connection:
        connection.execute("DELETE FROM enrollment WHERE program = 'bench-allowance'")
    ran = _json(officer, "programs", "run", str(spec), "--snapshot", str(snap))
    today = date.today()
    cycle = f"{today.year}-{today.month:02d}"
    with _connect(url) as connection:
        # The households' answers, in bulk: what caseworkers record one by one.
        enrolled = connection.execute(
            "UPDATE enrollment SET status = 'enrolled', since = %s "
            "WHERE program = 'bench-allowance'",
            (date(today.year - 1, 1, 1),),
        ).rowcount
    seconds, peaks, households = [], [], 0
    for i in range(args.runs):
        with _connect(url) as connection:
            connection.execute(
                "DELETE FROM entitlement WHERE program = 'bench-allowance'; "
                "DELETE FROM entitlement_cycle WHERE program = 'bench-allowance'"
            )
        run = run_measured(
            [str(SIJILL), "entitlements", "generate", "--program", "bench-allowance", "--cycle",
             cycle, "--spec", str(spec), "-o", "json"], env=officer,
        )  # fmt: skip
        report = json.loads(run.output.strip().splitlines()[-1])
        households = report["households"]
        seconds.append(run.seconds)
        peaks.append(run.peak_rss_mb)
        print(f"run {i + 1}: {households:,} entitlements in {run.seconds:.1f} s "
              f"(peak {run.peak_rss_mb:,.0f} MB)", flush=True)  # fmt: skip
    lines = [
        f"Registry on PostgreSQL: `sijill synth --households {args.households:,}` imported; a "
        f"universal household allowance (`bench_programs.py`'s ALLOWANCE: base + per child, "
        f"paid to the female caregiver) run over it (run {ran['run_id']}: "
        f"{ran['selected']:,} selected), its {enrolled:,} households enrolled in bulk by SQL, "
        f"then `sijill entitlements generate --cycle {cycle}` in its own process, "
        f"{args.runs} runs (the cycle's rows deleted before each).",
        "",
        f"- Entitlements written: {households:,}; wall time (median) **"
        f"{median(seconds):.1f} s**; peak memory (max) **{max(peaks):,.0f} MB**.",
    ]
    print("\n".join(lines))
    record(
        f"Programs: entitlement generation for {households:,} beneficiaries",
        f"python bench/bench_programs.py entitlements --households {args.households} "
        f"--runs {args.runs}",
        lines,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("scale")
    s.add_argument("--households", type=int, default=1_000_000)
    s.add_argument("--runs", type=int, default=3)
    s.add_argument("--loop-sample", type=int, default=100_000)
    s.add_argument("--multiply", type=int, default=1, help="copy the feature view K times")
    s.add_argument("--reuse", action="store_true", help="keep the registry a previous run left")
    s.add_argument("--drop-database", action="store_true", help="drop the registry at the end")
    s.add_argument("--baseline", help="a worktree of other code, run first in every run")
    s.add_argument("--parallel", type=int, default=1, help="all programs in one command, N at once")
    s.set_defaults(run=scale)
    e = commands.add_parser("entitlements")
    e.add_argument("--households", type=int, default=1_000_000)
    e.add_argument("--runs", type=int, default=3)
    e.add_argument("--reuse", action="store_true", help="keep the registry a previous run left")
    e.set_defaults(run=entitlements)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
