"""The scores a program's rules read: each named score's run on the run's feature snapshot
(the latest one, or one made then), and its scores read once and kept."""

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import polars as pl
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from sijill.core.errors import InvalidInput
from sijill.core.pg_copy import read_query
from sijill.core.settings import Settings
from sijill.programs.spec import ProgramSpec
from sijill.security.principal import Principal
from sijill.targeting.models import PmtModel, TargetingRun
from sijill.targeting.runs import run_mpi, score_pmt
from sijill.targeting.service import Snapshot

Stage = Callable[[str], None]


# Two runs on one snapshot that need a score it lacks would each score it (and then read
# different runs, so that neither is the same run again): finding one or scoring is one at a
# time, between threads here (the API's job pool, `programs run --parallel`) and, on
# PostgreSQL, between processes (an advisory lock on a connection of its own).
_SCORING = threading.Lock()
_SCORING_LOCK = 0x51_4A_1C_02


@contextmanager
def _scoring_turn(engine: Engine) -> Iterator[None]:
    with _SCORING:
        if engine.dialect.name != "postgresql":
            yield
            return
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f"SELECT pg_advisory_lock({_SCORING_LOCK})"))
            try:
                yield
            finally:
                connection.execute(text(f"SELECT pg_advisory_unlock({_SCORING_LOCK})"))


def _latest_run(engine: Engine, snapshot: Snapshot, kind: str, model: str | None) -> int | None:
    query = select(TargetingRun.id).where(
        TargetingRun.snapshot_id == snapshot.record.id,
        TargetingRun.kind == kind,
        TargetingRun.finished_at.is_not(None),
    )
    if model is not None:
        query = query.where(TargetingRun.model_version == model)
    with Session(engine) as session:
        return session.scalar(query.order_by(TargetingRun.id.desc()).limit(1))


def find_score_runs(
    engine: Engine,
    settings: Settings,
    principal: Principal,
    spec: ProgramSpec,
    snapshot: Snapshot,
    stage: Stage,
) -> dict[str, int]:
    """Each named score's run on this snapshot: the latest one, or a new one."""
    found: dict[str, int] = {}
    for score in spec.scores:
        model = score.model
        if score.kind == "pmt" and model is None:
            with Session(engine) as session:
                model = session.scalar(
                    select(PmtModel.version)
                    .where(PmtModel.approved_at.is_not(None))
                    .order_by(PmtModel.approved_at.desc())
                    .limit(1)
                )
            if model is None:
                raise InvalidInput(
                    f"score {score.name}: there is no approved PMT model yet "
                    "(sijill pmt fit, then sijill pmt approve)"
                )
        run_id = _latest_run(engine, snapshot, score.kind, model)
        if run_id is None:
            with _scoring_turn(engine):
                # Another run may have scored it while this one waited for its turn.
                run_id = _latest_run(engine, snapshot, score.kind, model)
                if run_id is None:
                    stage(f"scoring {score.name}")
                    scorer = score_pmt if score.kind == "pmt" else run_mpi
                    extra = {"model_version": model} if score.kind == "pmt" else {}
                    run_id = scorer(
                        engine, settings, principal=principal, snapshot_id=snapshot.record.id,
                        **extra,
                    ).run_id  # fmt: skip
        found[score.name] = run_id
    return found


def read_scores(engine: Engine, settings: Settings, run_id: int) -> pl.DataFrame:
    """A scoring run's scores. A finished run's scores never change, so the first read (by
    COPY) is kept as Parquet in the private work folder and every later program reads that:
    ten programs on one national snapshot read the registry's scores once."""
    with Session(engine) as session:
        started = session.scalar(select(TargetingRun.started_at).where(TargetingRun.id == run_id))
    folder = settings.work_dir / "targeting" / "scores"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The start time tells a run from another of the same number in a registry made afresh.
    path = folder / f"run-{run_id}-{started:%Y%m%dT%H%M%S%f}.parquet"
    if path.is_file():
        return pl.read_parquet(path)
    query = f"SELECT household_id, score FROM household_score WHERE run_id = {int(run_id)}"
    schema = {"household_id": pl.Int64, "score": pl.Float64}
    scores = read_query(engine, query, schema, settings.work_dir)
    # A file of its own: two runs may read the same scores at once, and each renames its own.
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        scores.write_parquet(partial)
        partial.chmod(0o600)
        partial.rename(path)
    finally:
        partial.unlink(missing_ok=True)
    return scores
