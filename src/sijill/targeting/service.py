"""Targeting runs on the registry: the feature snapshot, PMT scoring and MPI, in bulk.

A snapshot is the feature view of every consenting household in the user's scope (or an
area of it) as of a date, written once to a Parquet file in the private work folder and
recorded with its checksum and how many households were not assessed for want of consent.
A scoring run reads a snapshot (a new one by default), scores every household in DuckDB with
the approved model's SQL (PMT) or the configured deprivation conditions (MPI), and writes one
narrow row per household by COPY, in one transaction with the run and its audit record: a run
writes all its scores or none.
"""

import contextlib
import hashlib
import itertools
import math
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.parquet as pq
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from sijill.core import clock
from sijill.core.errors import InvalidInput, NotFound
from sijill.core.pg_copy import copy_frame
from sijill.core.settings import Settings
from sijill.registry.models import Household
from sijill.security.area_scope import run_area
from sijill.security.audit.service import append
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.targeting import features
from sijill.targeting.inputs import from_registry, read_registry
from sijill.targeting.models import FeatureSnapshot, HouseholdScore, TargetingRun

SNAPSHOT_RECORD = "feature_snapshot"
# Snapshot rows are sorted by household and written in row groups this long: an explanation
# reads one household's row, from the one group whose range holds it (snapshot_rows.py;
# measured on 1,006,719 households: ~2-3 ms for a few columns instead of ~130 ms for a scan,
# the file 18% larger than unsorted in one group).
SNAPSHOT_ROW_GROUP = 10_000
RUN_RECORD = "targeting_run"
Stage = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def resolve_area(session: Session, principal: Principal, area_code: str | None) -> int | None:
    """The area a run is limited to (None: the whole registry), inside the user's scope."""
    return run_area(
        session, principal, Permission.TARGETING_RUN, area_code,
        whole_registry="Scoring the whole registry",
    )  # fmt: skip


def snapshot_folder(settings: Settings) -> Path:
    return settings.work_dir / "targeting" / "snapshots"


@dataclass
class Snapshot:
    record: FeatureSnapshot
    path: Path
    _view: pl.DataFrame | None = None

    @property
    def view(self) -> pl.DataFrame:
        """The whole feature view, read once from the snapshot's file."""
        if self._view is None:
            self._view = pl.read_parquet(self.path)
        return self._view

    def columns(self, names: list[str]) -> pl.DataFrame:
        """Only these columns: what a run reads of a national snapshot."""
        wanted = [name for name in dict.fromkeys(names) if name in self.record_columns()]
        return pl.read_parquet(self.path, columns=wanted)

    def record_columns(self) -> list[str]:
        return list(pq.read_schema(self.path).names)


# Household IDs are ten digits (core.ids): the partitions split that range evenly, and random
# IDs fill each about equally.
_FIRST_ID, _END_ID = 10**9, 10**10


def _partitions(engine: Engine, settings: Settings) -> list[tuple[int, int] | None]:
    with Session(engine) as session:
        households = session.scalar(select(func.count()).select_from(Household)) or 0
    parts = math.ceil(households / settings.targeting_partition_households)
    if parts <= 1:
        return [None]
    bounds = [_FIRST_ID + (_END_ID - _FIRST_ID) * i // parts for i in range(parts + 1)]
    bounds[0], bounds[-1] = 0, _END_ID
    return list(itertools.pairwise(bounds))


def take_snapshot(
    engine: Engine,
    settings: Settings,
    *,
    principal: Principal,
    as_of: date | None = None,
    area_code: str | None = None,
    stage: Stage = _quiet,
) -> Snapshot:
    """The feature view of the registry as of `as_of` (default today), written and recorded.

    Read and computed a partition of household IDs at a time and appended to one Parquet
    file, so memory stays that of one partition (`targeting_partition_households`)."""
    as_of = as_of or clock.utcnow().date()
    with Session(engine) as session:
        area_id = resolve_area(session, principal, area_code)
    folder = snapshot_folder(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}.parquet"
    partial = folder / f".{name}.partial"
    households = without_consent = 0
    writer: pq.ParquetWriter | None = None
    parts = _partitions(engine, settings) if area_id is None else [None]
    try:
        with contextlib.ExitStack() as spooled:
            registry = None
            if len(parts) > 1:
                stage("reading the registry")
                settings.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                spool = spooled.enter_context(tempfile.TemporaryDirectory(dir=settings.work_dir))
                registry = read_registry(engine, as_of, Path(spool), settings.bulk_read_streams)
            for number, part in enumerate(parts, start=1):
                shown = f" ({number} of {len(parts)})" if len(parts) > 1 else ""
                stage(f"selecting the households{shown}" if registry else "reading the registry")
                read = from_registry(
                    engine,
                    as_of,
                    area_id=area_id,
                    work_dir=settings.work_dir,
                    id_range=part,
                    registry=registry,
                    streams=settings.bulk_read_streams,
                )
                stage(f"computing the features{shown}")
                table = features.compute(read.inputs, as_of).to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(partial, table.schema, compression="zstd")
                table = table.sort_by("household_id").cast(writer.schema)
                writer.write_table(table, row_group_size=SNAPSHOT_ROW_GROUP)
                households += table.num_rows
                without_consent += read.households_without_consent
        writer.close()
        os.chmod(partial, 0o600)
        digest = _sha256(partial)
        partial.rename(folder / name)
    except BaseException:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
        raise
    with Session(engine, expire_on_commit=False) as session, session.begin():
        record = FeatureSnapshot(
            as_of=as_of,
            catalogue_version=features.catalogue_version(),
            area_id=area_id,
            created_by=principal.username,
            created_at=clock.utcnow(),
            households=households,
            households_without_consent=without_consent,
            file_name=name,
            sha256=digest,
        )
        session.add(record)
        session.flush()
        principal.audit(
            "targeting.features",
            "ok",
            SNAPSHOT_RECORD,
            str(record.id),
            permission=Permission.TARGETING_RUN,
        )
        append(session, principal.take_audit())
    return Snapshot(record, folder / name)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_snapshot(
    session: Session, settings: Settings, principal: Principal, snapshot_id: int
) -> Snapshot:
    """A stored snapshot, if it lies in the user's scope and its file is the one recorded."""
    record = session.get(FeatureSnapshot, snapshot_id)
    scope = principal.scope(session, Permission.TARGETING_RUN)
    allowed = record is not None and (
        scope.national if record.area_id is None else scope.allows(record.area_id)
    )
    if not allowed:
        raise NotFound(f"There is no feature snapshot {snapshot_id} in your scope")
    return open_snapshot(settings, record)


# Files whose checksum this process has verified, by what any change to the file changes
# (its inode, size, modification and status-change times): a page explaining one decision
# must not hash a snapshot of a million households on every request.
_verified: dict[tuple[str, int, int, int, int], str] = {}
_VERIFIED_KEPT = 64


def _verified_sha256(path: Path) -> str | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    key = (str(path), status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
    digest = _verified.get(key)
    if digest is None:
        digest = _sha256(path)
        if len(_verified) >= _VERIFIED_KEPT:
            _verified.pop(next(iter(_verified)))
        _verified[key] = digest
    return digest


def open_snapshot(settings: Settings, record: FeatureSnapshot) -> Snapshot:
    """A snapshot whose file is the one recorded (checksum). The caller has checked scope:
    `load_snapshot` by the snapshot's area, an explanation by its household's."""
    return Snapshot(record, snapshot_file(settings, record.id, record.file_name, record.sha256))


def snapshot_file(settings: Settings, snapshot_id: int, file_name: str, sha256: str) -> Path:
    """The path of a snapshot's file, checked to be the one its record names (checksum)."""
    path = snapshot_folder(settings) / file_name
    if _verified_sha256(path) != sha256:
        raise InvalidInput(
            f"feature snapshot {snapshot_id}: its file is missing or not the one recorded; "
            "take a new snapshot"
        )
    return path


# --- scores ---------------------------------------------------------------------------------


def score_statement(expression: str, poor_when: str | None) -> str:
    """The statement a scoring run executes over the feature view (`features`): household_id,
    score and, given a condition on `score`, poor."""
    scored = f"SELECT household_id, CAST({expression} AS DOUBLE) AS score FROM features"
    if poor_when is None:
        return scored
    return f"SELECT household_id, score, {poor_when} AS poor FROM ({scored}) AS scored"


def score_sql(view: pl.DataFrame, expression: str, poor_when: str | None) -> pl.DataFrame:
    """household_id, score and poor for every row of the view, by DuckDB."""
    connection = duckdb.connect()
    try:
        connection.register("features", view.to_arrow())
        statement = score_statement(expression, poor_when)
        return pl.from_arrow(connection.sql(statement).to_arrow_table())
    finally:
        connection.close()


def record_run(
    engine: Engine,
    principal: Principal,
    snapshot: Snapshot,
    scores: pl.DataFrame,
    *,
    kind: str,
    started,
    model_version: str | None = None,
    config: dict | None = None,
    config_digest: str | None = None,
    summary: dict | None = None,
    job_id: int | None = None,
) -> TargetingRun:
    """The run, its scores (household_id, score, poor) and its audit record, in one
    transaction."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        run = TargetingRun(
            kind=kind,
            snapshot_id=snapshot.record.id,
            model_version=model_version,
            config=config,
            config_digest=config_digest,
            as_of=snapshot.record.as_of,
            job_id=job_id,
            run_by=principal.username,
            started_at=started,
            households_scored=scores.height,
            households_without_consent=snapshot.record.households_without_consent,
            summary=summary,
        )
        session.add(run)
        session.flush()
        _write_scores(session, run.id, scores)
        run.finished_at = clock.utcnow()
        principal.audit(
            f"targeting.{kind}", "ok", RUN_RECORD, str(run.id), permission=Permission.TARGETING_RUN
        )
        append(session, principal.take_audit())
    return run


def _write_scores(session: Session, run_id: int, scores: pl.DataFrame) -> None:
    # In key order: each row then lands on the primary key's rightmost page, not a random one.
    rows = scores.select(
        pl.lit(run_id, pl.Int64).alias("run_id"),
        pl.col("household_id").cast(pl.Int64),
        pl.col("score").cast(pl.Float64),
        pl.col("poor").cast(pl.Boolean),
    ).sort("household_id")
    if session.bind.dialect.name != "postgresql":
        if rows.height:
            session.execute(insert(HouseholdScore), rows.to_dicts())
        return
    copy_frame(session.connection().connection.driver_connection, HouseholdScore.__table__, rows)


def timer() -> tuple[Any, float]:
    return clock.utcnow(), time.perf_counter()
