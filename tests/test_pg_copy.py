"""Binary COPY laid out by numpy reads back exactly, NULLs and every fixed-width type."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from sqlalchemy import text

from sijill.core.db import make_engine
from sijill.core.pg_copy import binary_ready, copy_frame


@pytest.mark.parametrize("rows_per_piece", [65_536, 3])
def test_a_frame_written_by_binary_copy_reads_back_the_same(
    migrated_url, monkeypatch, rows_per_piece
):
    """In one piece or in several (a piece ending on a NULL included), the same rows back."""
    monkeypatch.setattr("sijill.core.pg_copy._CHUNK", rows_per_piece)
    engine = make_engine(migrated_url)
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    frame = pl.DataFrame(
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
    fixed = frame.drop("g")
    assert binary_ready(frame) and binary_ready(fixed)
    assert not binary_ready(frame.with_columns(pl.col("h").dt.replace_time_zone(None)))
    assert not binary_ready(frame.with_columns(pl.col("g").cast(pl.Categorical)))
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "CREATE TABLE copy_probe (a bigint, b smallint, c integer, "
                    "d double precision, e boolean, f date, g varchar(16), h timestamptz)"
                )
            )
            driver = connection.connection.driver_connection
            copy_frame(driver, "copy_probe", frame)  # text makes rows of unequal length
            copy_frame(driver, "copy_probe", fixed)  # the same rows, all of one length
            rows = connection.execute(text("SELECT * FROM copy_probe ORDER BY ctid")).all()
        assert [tuple(row) for row in rows] == frame.rows() + fixed.with_columns(
            g=pl.lit(None, pl.String)
        ).select(frame.columns).rows()
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
