"""`sijill targeting evaluate`: how wrong each targeting design is, and for whom.

Reference welfare (a survey's consumption, or the synthetic country's true consumption) is
matched to registry households by their source key (the `household_key` an import gave them).
Every design ranks the same households of one feature snapshot: each PMT model named (approved
or not: a design is evaluated before it is adopted), the MPI's deprivation score, and the hybrid
designs of a file (which read the first PMT's score and the MPI's). The evaluation and its
report are `targeting.evaluation` and `targeting.report`; the run is audited with its counts.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sijill.core.errors import FieldError, InvalidInput
from sijill.core.files import ROW, read_table
from sijill.core.pg_copy import read_query
from sijill.core.settings import Settings
from sijill.security.audit.service import append
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.targeting import hybrid, mpi, pmt_models, pmt_sql
from sijill.targeting.evaluation import DesignColumn, evaluate
from sijill.targeting.expressions import column_types
from sijill.targeting.mpi_config import load_config
from sijill.targeting.report import write_report
from sijill.targeting.selection import Rule
from sijill.targeting.service import load_snapshot, score_sql, take_snapshot

KEY, WELFARE, WEIGHT = "household_key", "consumption_pc", "weight"
_UNRANKED = float("inf")  # a household a design cannot rank comes last


@dataclass(frozen=True)
class EvaluationReport:
    folder: Path
    files: tuple[str, ...]
    snapshot_id: int
    households: int  # in the snapshot and the reference both
    reference_rows: int
    unmatched: int  # reference rows with no household in the snapshot
    designs: list[dict[str, Any]]


def read_reference(path: Path) -> pl.DataFrame:
    """household_key, welfare, weight (1 when the file has none): checked, every problem at
    once, with the file, column and rows, never a value."""
    frames = []
    for batch in read_table(path, 200_000):
        if batch.rejects.height:
            first = batch.rejects.row(0, named=True)
            raise InvalidInput(f"{path.name}: line {first['row']}: {first['message']}")
        frames.append(batch.rows)
    rows = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    missing = [c for c in (KEY, WELFARE) if c not in rows.columns]
    if missing:
        raise InvalidInput(f"{path.name}: the column(s) {', '.join(missing)} are missing")
    if WEIGHT not in rows.columns:
        rows = rows.with_columns(pl.lit("1").alias(WEIGHT))
    frame = rows.select(
        pl.col(KEY).str.strip_chars().alias(KEY),
        pl.col(WELFARE).str.strip_chars().cast(pl.Float64, strict=False).alias("welfare"),
        pl.col(WEIGHT).str.strip_chars().cast(pl.Float64, strict=False).alias("weight"),
        ROW,
    )
    problems = []
    for column, name, condition in (
        (KEY, KEY, pl.col(KEY).is_null() | (pl.col(KEY) == "")),
        (WELFARE, "welfare", pl.col("welfare").is_null() | ~pl.col("welfare").is_finite()),
        (WELFARE, "welfare", pl.col("welfare") < 0),
        (WEIGHT, "weight", pl.col("weight").is_null() | (pl.col("weight") <= 0)),
        (KEY, KEY, pl.col(KEY).is_duplicated()),
    ):
        bad = frame.filter(condition.fill_null(True))[ROW].head(5).to_list()
        if bad:
            what = {
                KEY: "is empty or repeated",
                "welfare": "is not a number of zero or more",
                "weight": "is not a number above zero",
            }[name]
            problems.append(FieldError(column, f"{what} (rows {', '.join(map(str, bad))})"))
    if problems:
        raise InvalidInput(
            f"{path.name}: " + "; ".join(f"column '{p.field}' {p.message}" for p in problems[:3]),
            problems,
        )
    return frame.drop(ROW)


def _source_keys(
    engine: Engine, ids: pl.Series, work_dir: Path, source: str | None
) -> pl.DataFrame:
    """Registry household ID -> the key its source gave it, for the snapshot's households (in
    bulk). An import records `<source>:<household_key>`; without `source`, a key two sources
    share is refused rather than guessed."""
    query = "SELECT CAST(id AS TEXT), source_key FROM household WHERE source_key IS NOT NULL"
    keys = read_query(engine, query, {"household_id": pl.String, "source_key": pl.String}, work_dir)
    parts = pl.col("source_key").str.splitn(":", 2)
    keys = keys.filter(pl.col("household_id").is_in(ids.implode())).select(
        "household_id",
        parts.struct.field("field_0").alias("source"),
        parts.struct.field("field_1").alias(KEY),
    )
    if source is not None:
        return keys.filter(pl.col("source") == source).drop("source")
    shared = keys.filter(pl.col(KEY).is_duplicated()).height
    if shared:
        raise InvalidInput(
            f"{shared} household keys belong to households of several import sources: name the "
            "source the reference's keys come from (--source)"
        )
    return keys.drop("source")


def run_evaluation(
    engine: Engine,
    settings: Settings,
    *,
    principal: Principal,
    reference: Path,
    out_dir: Path,
    pmt_versions: list[str],
    use_mpi: bool = True,
    mpi_config: Path | None = None,
    designs_file: Path | None = None,
    coverage: float | None = None,
    budget: Decimal | None = None,
    transfer: Decimal = Decimal(1),
    per_person: bool = False,
    poverty_line: Decimal | None = None,
    as_of: date | None = None,
    area_code: str | None = None,
    snapshot_id: int | None = None,
    source: str | None = None,
    force: bool = False,
    stage: Callable[[str], None] = lambda _: None,
) -> EvaluationReport:
    principal.require(Permission.TARGETING_RUN)
    rule = Rule(transfer=transfer, coverage=coverage, budget=budget, per_person=per_person)
    stage("reading the reference welfare")
    welfare = read_reference(reference)
    artifacts = []
    with Session(engine) as session:
        for version in pmt_versions:
            artifacts.append(pmt_models.get_model(session, version).body)
    config = load_config(mpi_config) if (use_mpi or designs_file) else None
    if snapshot_id is None:
        snapshot = take_snapshot(
            engine, settings, principal=principal, as_of=as_of, area_code=area_code, stage=stage
        )
    else:
        with Session(engine) as session:
            snapshot = load_snapshot(session, settings, principal, snapshot_id)
    view = snapshot.view
    stage("matching the reference to the registry")
    keys = _source_keys(engine, view["household_id"], settings.work_dir, source)
    frame = view.join(keys, on="household_id").join(welfare, on=KEY)
    if frame.height == 0:
        raise InvalidInput(
            f"{reference.name}: no household_key matches a household of the snapshot "
            "(keys are the source keys the registry's import recorded)"
        )
    columns: list[DesignColumn] = []
    described: list[dict[str, Any]] = []
    stage("scoring the designs")
    for artifact in artifacts:
        name = f"PMT {artifact['method']} {artifact['version']}"
        scores = score_sql(frame, pmt_sql.score_sql(artifact), None)
        column = f"pmt_{len(columns)}"
        frame = frame.with_columns(scores["score"].alias(column))
        columns.append(DesignColumn(name, column))
        described.append({"name": name, "kind": "pmt", "model_version": artifact["version"]})
    if artifacts:
        frame = frame.with_columns(pl.col(columns[0].column).alias(hybrid.PMT))
    if config is not None:
        scored = mpi.household_scores(frame, config).select("household_id", mpi.SCORE)
        frame = frame.join(scored, on="household_id", how="left")
        if use_mpi:
            frame = frame.with_columns((-pl.col(mpi.SCORE)).fill_null(_UNRANKED).alias("mpi_rank"))
            columns.append(DesignColumn(f"MPI {config.name}", "mpi_rank"))
            described.append({"name": f"MPI {config.name}", "kind": "mpi",
                              "config_digest": config.digest})  # fmt: skip
    if designs_file is not None:
        if not artifacts:
            raise InvalidInput("hybrid designs read a PMT score: name a PMT model too")
        for design in hybrid.load_designs(designs_file, column_types(frame)):
            result = hybrid.apply_design(frame, design)
            column = f"hybrid_{len(columns)}"
            ranks = result.frame.select(
                "household_id", pl.col("rank").cast(pl.Float64).fill_null(_UNRANKED).alias(column)
            )
            frame = frame.join(ranks, on="household_id", how="left")
            columns.append(DesignColumn(design.name, column))
            described.append({**design.describe(), "kind": f"hybrid {design.kind}"})
    if not columns:
        raise InvalidInput("name at least one design: a PMT model, the MPI, or a designs file")
    stage("evaluating")
    result = evaluate(
        frame, columns, rule, min_cell=settings.min_cell_size, poverty_line=poverty_line
    )
    stage("writing the report")
    files = write_report(result, out_dir, force=force)
    with Session(engine) as session, session.begin():
        principal.audit(
            "targeting.evaluate", "ok", "feature_snapshot", str(snapshot.record.id),
            permission=Permission.TARGETING_RUN,
        )  # fmt: skip
        append(session, principal.take_audit())
    return EvaluationReport(
        folder=files.folder,
        files=files.files,
        snapshot_id=snapshot.record.id,
        households=frame.height,
        reference_rows=welfare.height,
        unmatched=welfare.height - frame.height,
        designs=described,
    )
