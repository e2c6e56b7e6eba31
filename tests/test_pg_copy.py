"""Binary COPY laid out by numpy reads back exactly, NULLs and every type it lays out."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from sijill.core.db import make_engine
from sijill.core.pg_copy import binary_ready, copy_frame

_PROBE = Table(
    "copy_probe",
    MetaData(),
    Column("a", BigInteger),
    Column("b", SmallInteger),
    Column("c", Integer),
    Column("d", Float),
    Column("e", Boolean),
    Column("f", Date),
    Column("g", String(16)),
    Column("h", DateTime(timezone=True)),
)


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "a": pl.Series([1, None, -3, 2**62], dtype=pl.Int64),
            "b": pl.Series([None, 7, -32768, 32767], dtype=pl.Int16),
            "c": pl.Series([2**31 - 1, -(2**31), None, 0], dtype=pl.Int32),
            "d": pl.Series([0.5, None, -1e300, 3.25], dtype=pl.Float64),
            "e": pl.Series([True, False, None, True], dtype=pl.Boolean),
            "f": pl.Series([date(2026, 11, 30), None, date(1999, 12, 31), date(2000, 1, 1)]),
            "g": pl.Series(["notified", "", None, "محمد بن علي"]),
            "h": pl.Series(
                [
                    datetime(2026, 12, 3, 17, 5, 1, 250, tzinfo=UTC),
                    None,
                    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                    datetime(2026, 6, 1, 12, tzinfo=ZoneInfo("Africa/Tunis")),
                ]
            ),
        }
    )


def test_binary_only_where_the_column_takes_the_values_bytes_as_its_own():
    frame = _frame()
    assert binary_ready(frame, _PROBE) and binary_ready(frame.drop("g"), _PROBE)
    unlike = {
        "a": pl.col("a").cast(pl.Int32, strict=False),  # four bytes for a bigint
        "c": pl.col("c").cast(pl.Int64),  # eight for an integer
        "h": pl.col("h").dt.replace_time_zone(None),  # a wall time, not an instant
        "g": pl.col("g").cast(pl.Categorical),
    }
    for name, unlike_column in unlike.items():
        assert not binary_ready(frame.with_columns(unlike_column), _PROBE), name
    text_into_json = Table("p", MetaData(), Column("g", JSON().with_variant(JSONB(), "postgresql")))
    assert not binary_ready(frame.select("g"), text_into_json)
    real = Table("p", MetaData(), Column("d", Float(precision=24)))
    assert not binary_ready(frame.select("d"), real)


@pytest.mark.parametrize("rows_per_piece", [65_536, 3])
def test_a_frame_written_by_binary_copy_reads_back_the_same(
    migrated_url, monkeypatch, rows_per_piece
):
    """In one piece or in several (a piece ending on a NULL included), the same rows back;
    and by CSV, the same again, where a column's type is not the frame's."""
    monkeypatch.setattr("sijill.core.pg_copy._CHUNK", rows_per_piece)
    engine = make_engine(migrated_url)
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    frame = _frame()
    fixed = frame.drop("g")
    widened = frame.with_columns(pl.col("c").cast(pl.Int64))  # not binary: CSV
    try:
        with engine.begin() as connection:
            _PROBE.create(connection)
            driver = connection.connection.driver_connection
            copy_frame(driver, _PROBE, frame)  # text makes rows of unequal length
            copy_frame(driver, _PROBE, fixed)  # the same rows, all of one length
            copy_frame(driver, _PROBE, widened)
            rows = connection.execute(text("SELECT * FROM copy_probe ORDER BY ctid")).all()
        without_text = fixed.with_columns(g=pl.lit(None, pl.String)).select(frame.columns)
        assert [tuple(row) for row in rows] == frame.rows() + without_text.rows() + frame.rows()
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS copy_probe"))
        engine.dispose()


def test_reads_side_by_side_see_one_snapshot_and_their_own_types(migrated_url):
    """Rows committed after the reads' snapshot was taken are not seen by any of them, however
    late a read starts; integers, dates, booleans and NULLs come back as such."""
    from sijill.core.pg_arrow import read_table, read_tables, shared_snapshot

    engine = make_engine(migrated_url)
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE snapshot_probe (a bigint, d date, e boolean)"))
            connection.execute(
                text("INSERT INTO snapshot_probe VALUES (1, '2026-12-03', true), (2, NULL, NULL)")
            )
        with shared_snapshot(engine) as snapshot:
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO snapshot_probe VALUES (3, NULL, false)"))
            seen = read_table(engine, "SELECT * FROM snapshot_probe ORDER BY a", snapshot)
        assert seen.to_pylist() == [
            {"a": 1, "d": date(2026, 12, 3), "e": True},
            {"a": 2, "d": None, "e": None},
        ]
        parts = read_tables(
            engine,
            {
                "low": ["SELECT a FROM snapshot_probe WHERE a < 2"],
                "high": [
                    "SELECT a FROM snapshot_probe WHERE a = 2",
                    "SELECT a FROM snapshot_probe WHERE a = 3",
                ],
            },
            streams=2,
        )
        assert {
            name: [t.column("a").to_pylist() for t in read] for name, read in parts.items()
        } == {
            "low": [[1]],
            "high": [[2], [3]],
        }
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS snapshot_probe"))
        engine.dispose()
