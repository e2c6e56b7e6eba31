"""The targeting stage's tables: feature snapshots, PMT models, scoring runs and their scores.

A feature snapshot is the feature view of the registry as of a date, written once as a Parquet
file in the private work folder (60-odd columns for millions of households do not belong in
row storage) and recorded here with its checksum, so every score, and later every eligibility
decision, names exactly the values it was decided from. A score row is narrow (run, household,
score, poor or not): the run holds the model version, the snapshot and the date.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from sijill.core.db import Base, Json, Timestamp

_ID = BigInteger().with_variant(Integer, "sqlite")


class FeatureSnapshot(Base):
    __tablename__ = "feature_snapshot"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    catalogue_version: Mapped[str] = mapped_column(String(32))  # digest of the features' SQL
    area_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("area.id"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    households: Mapped[int] = mapped_column(BigInteger)
    households_without_consent: Mapped[int] = mapped_column(BigInteger)
    file_name: Mapped[str] = mapped_column(String(200))  # inside the work folder's snapshots
    sha256: Mapped[str] = mapped_column(String(64))


class PmtModel(Base):
    """A fitted proxy means test, as the artifact a program officer reads and approves. Only an
    approved model scores the registry, and its approver is not the one who fitted it."""

    __tablename__ = "pmt_model"

    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    method: Mapped[str] = mapped_column(String(16))  # wls | quantile
    body: Mapped[dict] = mapped_column(Json)
    survey: Mapped[str] = mapped_column(String(200))  # the survey file's name
    fitted_by: Mapped[str] = mapped_column(String(64))
    fitted_at: Mapped[datetime] = mapped_column(Timestamp)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(Timestamp)


class TargetingRun(Base):
    __tablename__ = "targeting_run"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # pmt | mpi
    snapshot_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("feature_snapshot.id"))
    model_version: Mapped[str | None] = mapped_column(String(32), ForeignKey("pmt_model.version"))
    config_digest: Mapped[str | None] = mapped_column(String(64))  # the MPI config's sha256
    config: Mapped[dict | None] = mapped_column(Json)  # the MPI config as it was read
    as_of: Mapped[date] = mapped_column(Date)
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    run_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    households_scored: Mapped[int] = mapped_column(BigInteger, default=0)
    households_without_consent: Mapped[int] = mapped_column(BigInteger, default=0)
    summary: Mapped[dict | None] = mapped_column(Json)  # e.g. H, A, M0 of an MPI run


class HouseholdScore(Base):
    __tablename__ = "household_score"

    # No foreign keys: millions of rows go in by COPY, written by their run itself in its own
    # transaction, about households it read; a key on the run, checked row by row, made that
    # write three to four times slower (migration 0020).
    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    household_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # A score, not an amount: predicted log consumption (PMT) or a deprivation share (MPI).
    score: Mapped[float] = mapped_column(Float)
    poor: Mapped[bool] = mapped_column(Boolean)
