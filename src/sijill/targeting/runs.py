"""Scoring the registry: a PMT run and an MPI run over a feature snapshot.

Each run scores every household of its snapshot (so every consenting household in the user's
scope on the snapshot's date), records one narrow row per household (score, poor or not) and
the run itself: the snapshot it read (the feature values), the model version or the MPI
configuration as read, the date, who ran it, and how many households were not assessed for
want of consent.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from sijill.core.errors import NotFound
from sijill.core.settings import Settings
from sijill.security.principal import Principal
from sijill.security.roles import Permission
from sijill.targeting import mpi, pmt_models, pmt_sql
from sijill.targeting.models import FeatureSnapshot, TargetingRun
from sijill.targeting.mpi_config import load_config
from sijill.targeting.service import (
    Snapshot,
    load_snapshot,
    record_run,
    score_sql,
    take_snapshot,
    timer,
)

PMT, MPI = "pmt", "mpi"
# The MPI decompositions every run records (areas and the groups the evaluation splits by).
MPI_GROUPS = ("governorate_code", "urban", "female_head", "has_disability", "has_refugee")


@dataclass
class RunReport:
    run_id: int
    kind: str
    snapshot_id: int
    as_of: date
    households_scored: int
    households_without_consent: int
    poor: int
    model_version: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _snapshot(
    engine: Engine,
    settings: Settings,
    principal: Principal,
    snapshot_id: int | None,
    as_of: date | None,
    area_code: str | None,
    stage: Callable[[str], None],
) -> Snapshot:
    if snapshot_id is None:
        return take_snapshot(
            engine, settings, principal=principal, as_of=as_of, area_code=area_code, stage=stage
        )
    with Session(engine) as session:
        return load_snapshot(session, settings, principal, snapshot_id)


def score_pmt(
    engine: Engine,
    settings: Settings,
    *,
    principal: Principal,
    model_version: str,
    as_of: date | None = None,
    area_code: str | None = None,
    snapshot_id: int | None = None,
    job_id: int | None = None,
    stage: Callable[[str], None] = lambda _: None,
) -> RunReport:
    """Every household of the snapshot scored by an approved PMT: the predicted log
    consumption per person, and poor when it is below the log of the model's poverty line."""
    started, began = timer()
    with Session(engine) as session:
        model = pmt_models.load_approved(session, model_version)
        artifact = model.body
    snapshot = _snapshot(engine, settings, principal, snapshot_id, as_of, area_code, stage)
    stage("scoring")
    line = Decimal(artifact["poverty_line"]["per_person_per_year"])
    cut = repr(math.log(line))
    view = snapshot.columns(["household_id", *_model_features(artifact)])
    scores = score_sql(view, pmt_sql.score_sql(artifact), f"score < {cut}")
    stage("recording the scores")
    run = record_run(
        engine,
        principal,
        snapshot,
        scores,
        kind=PMT,
        started=started,
        model_version=model_version,
        summary={"poverty_line": str(line), "log_poverty_line": float(cut)},
        job_id=job_id,
    )
    return _report(run, scores, snapshot, began)


def run_mpi(
    engine: Engine,
    settings: Settings,
    *,
    principal: Principal,
    config: Path | None = None,
    as_of: date | None = None,
    area_code: str | None = None,
    snapshot_id: int | None = None,
    job_id: int | None = None,
    stage: Callable[[str], None] = lambda _: None,
) -> RunReport:
    """Every household of the snapshot's deprivation score and MPI status (Alkire-Foster, the
    shipped global-MPI configuration unless `config` names another), with H, A, M0, each
    indicator's contribution and the decompositions by area and group."""
    started, began = timer()
    configuration = load_config(config)  # before the bulk read: a bad file stops at once
    snapshot = _snapshot(engine, settings, principal, snapshot_id, as_of, area_code, stage)
    stage("scoring")
    read = {c for indicator in configuration.indicators for c in indicator.deprived_when.columns}
    view = snapshot.columns(["household_id", mpi.SIZE, *sorted(read), *MPI_GROUPS])
    result = mpi.compute(
        view,
        configuration,
        min_households=settings.min_cell_size,
        by=[column for column in MPI_GROUPS if column in view.columns],
    )
    scored = result.households.filter(pl.col(mpi.SCORE).is_not_null()).select(
        "household_id",
        pl.col(mpi.SCORE).alias("score"),
        pl.col(mpi.POOR).alias("poor"),
    )
    stage("recording the scores")
    summary = result.to_dict()
    run = record_run(
        engine,
        principal,
        snapshot,
        scored,
        kind=MPI,
        started=started,
        config=configuration.document,
        config_digest=configuration.digest,
        summary=summary,
        job_id=job_id,
    )
    return _report(run, scored, snapshot, began, summary)


def _model_features(artifact: dict) -> list[str]:
    """The features a PMT model's SQL reads: its terms', its regions' and their column."""
    models = [artifact, *((artifact.get("regions") or {}).get("models") or [])]
    names = [term["feature"] for model in models for term in model["terms"]]
    if artifact.get("regions"):
        names.append(artifact["regions"]["column"])
    return names


def _report(run, scores: pl.DataFrame, snapshot: Snapshot, began: float, summary=None):
    return RunReport(
        run_id=run.id,
        kind=run.kind,
        snapshot_id=snapshot.record.id,
        as_of=snapshot.record.as_of,
        households_scored=scores.height,
        households_without_consent=snapshot.record.households_without_consent,
        poor=int(scores["poor"].sum() or 0),
        model_version=run.model_version,
        summary=summary if summary is not None else (run.summary or {}),
        seconds=time.perf_counter() - began,
    )


def fit_survey(
    engine: Engine,
    *,
    principal: Principal,
    survey: Path,
    poverty_line: Decimal,
    method: str = "wls",
    regions: bool = False,
    folds: int = 5,
    as_of: date | None = None,
    stage: Callable[[str], None] = lambda _: None,
) -> dict:
    """Fit a PMT on a survey (its households and persons beside it) and store it, unapproved,
    as fitted by `principal`; the artifact."""
    from sijill.core import clock
    from sijill.security.audit.service import append
    from sijill.security.roles import Permission
    from sijill.targeting.inputs import registry_areas
    from sijill.targeting.pmt import fit
    from sijill.targeting.survey import read_survey, survey_features

    principal.require(Permission.TARGETING_FIT)
    stage("reading the survey")
    read = read_survey(survey)
    with Session(engine) as session:
        areas = registry_areas(session)
    stage("computing the survey's features")
    frame = survey_features(read, areas, as_of or clock.utcnow().date())
    stage("fitting and validating")
    artifact = fit(frame, read, poverty_line=poverty_line, method=method, regions=regions,
                   folds=folds)  # fmt: skip
    with Session(engine) as session, session.begin():
        stored = pmt_models.save_model(session, artifact, principal.username, read.name)
        principal.audit(
            "targeting.pmt_fit", "ok", "pmt_model", stored.version,
            permission=Permission.TARGETING_FIT,
        )  # fmt: skip
        append(session, principal.take_audit())
    return artifact


def visible_run(session: Session, principal: Principal, run_id: int) -> TargetingRun:
    """A scoring run, for a user whose scope holds the area its snapshot covers (the whole
    country for a national run); any other answers as a run that does not exist."""
    run = session.get(TargetingRun, run_id)
    snapshot = session.get(FeatureSnapshot, run.snapshot_id) if run is not None else None
    scope = principal.scope(session, Permission.TARGETING_RUN)
    allowed = snapshot is not None and (
        scope.national if snapshot.area_id is None else scope.allows(snapshot.area_id)
    )
    if not allowed:
        raise NotFound(f"There is no targeting run {run_id} in your scope")
    return run
