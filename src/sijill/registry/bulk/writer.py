"""Writing validated batches: one transaction per batch, the same SQL on SQLite and PostgreSQL.

A batch is loaded into temporary staging tables (PostgreSQL `COPY`, SQLite `executemany`), then
moved into the registry with `INSERT ... SELECT ... ON CONFLICT DO NOTHING`, so the database's
unique keys make re-imports idempotent (on the source's record key) even when two imports race.
A fresh random registry ID that happens to collide with an existing one is detected and drawn
again before the batch commits.
"""

import datetime as dt
import io
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Engine

from sijill.core.ids import new_ids
from sijill.identity.names import NAME_PARTS
from sijill.registry.codes import WG_DOMAINS

HOUSEHOLD_COLUMNS = (
    "id",
    "source_key",
    "area_id",
    "address",
    "latitude",
    "longitude",
    "dwelling_tenure",
    "dwelling_walls",
    "dwelling_roof",
    "dwelling_floor",
    "dwelling_rooms",
    "water_source",
    "sanitation",
    "cooking_fuel",
    "electricity",
    "assets",
    "livestock",
    "income_sources",
    "registration_source",
    "registration_date",
    "enumerator",
    "consent_given",
    "consent_date",
    "consent_purposes",
    "version",
    "valid_from",
    "recorded_by",
)
PERSON_COLUMNS = (
    "id",
    "source_key",
    *NAME_PARTS,
    "search_name",
    "sex",
    "birth_date",
    "birth_date_precision",
    "marital_status",
    "nationality",
    "residency_status",
    "national_id_type",
    "national_id",
    "phone",
    *WG_DOMAINS,
    "education_level",
    "enrolled",
    "employment_status",
    "employment_sector",
    "version",
    "valid_from",
    "recorded_by",
)
STAGE_PERSON_EXTRA = ("household_source_key", "relationship", "start_date")
_MAX_ID_DRAWS = 20


@dataclass
class BatchCounts:
    households_added: int = 0
    households_present: int = 0
    persons_added: int = 0
    persons_present: int = 0

    def __iadd__(self, other: "BatchCounts") -> "BatchCounts":
        self.households_added += other.households_added
        self.households_present += other.households_present
        self.persons_added += other.persons_added
        self.persons_present += other.persons_present
        return self


def _cols(names) -> str:
    return ", ".join(names)


class BatchWriter:
    """Owns one raw DBAPI connection; `write` commits a whole batch or nothing."""

    def __init__(self, engine: Engine):
        self.dialect = engine.dialect.name
        self.connection = engine.raw_connection()
        self._staged = False

    def close(self) -> None:
        self.connection.close()

    def _execute(self, cursor, sql: str, params=()):
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        cursor.execute(sql, params)
        return cursor

    def _create_staging(self, cursor) -> None:
        temp = "CREATE TEMP TABLE"
        empty = "WHERE 1 = 0"
        # Pooled connections keep their temporary tables; start from the current schema.
        self._execute(cursor, "DROP TABLE IF EXISTS stage_household")
        self._execute(cursor, "DROP TABLE IF EXISTS stage_person")
        self._execute(cursor, f"{temp} stage_household AS SELECT * FROM household {empty}")
        self._execute(
            cursor,
            f"{temp} stage_person AS SELECT p.*, h.source_key AS household_source_key, "
            "m.relationship, m.start_date FROM person p, household h, membership m " + empty,
        )
        self.connection.commit()
        self._staged = True

    def write(self, households: pl.DataFrame, persons: pl.DataFrame) -> BatchCounts:
        cursor = self.connection.cursor()
        if not self._staged:
            self._create_staging(cursor)
        try:
            counts = self._write(cursor, households, persons)
            self.connection.commit()
            return counts
        except BaseException:
            self.connection.rollback()
            raise
        finally:
            cursor.close()

    def _write(self, cursor, households: pl.DataFrame, persons: pl.DataFrame) -> BatchCounts:
        self._execute(cursor, "DELETE FROM stage_household")
        self._execute(cursor, "DELETE FROM stage_person")
        households = households.with_columns(
            pl.Series("id", new_ids("household", households.height))
        )
        persons = persons.with_columns(pl.Series("id", new_ids("person", persons.height)))
        self._load(cursor, "stage_household", households, HOUSEHOLD_COLUMNS)
        self._load(cursor, "stage_person", persons, PERSON_COLUMNS + STAGE_PERSON_EXTRA)
        counts = BatchCounts()
        counts.households_added, counts.households_present = self._insert_new(
            cursor, "household", HOUSEHOLD_COLUMNS
        )
        counts.persons_added, counts.persons_present = self._insert_new(
            cursor, "person", PERSON_COLUMNS
        )
        self._execute(
            cursor,
            "INSERT INTO membership (household_id, person_id, relationship, start_date, "
            "recorded_at) SELECT h.id, p.id, s.relationship, s.start_date, p.valid_from "
            "FROM stage_person s JOIN person p ON p.id = s.id AND p.source_key = s.source_key "
            "JOIN household h ON h.source_key = s.household_source_key",
        )
        return counts

    def _insert_new(self, cursor, table: str, columns) -> tuple[int, int]:
        """Insert staged rows whose source key is new; returns (added, already present)."""
        stage = f"stage_{table}"
        for _ in range(_MAX_ID_DRAWS):
            self._execute(
                cursor,
                f"INSERT INTO {table} ({_cols(columns)}) SELECT {_cols(columns)} FROM {stage} "
                "WHERE 1 = 1 ON CONFLICT DO NOTHING",
            )
            # A staged row that left no row with its source key lost a registry-ID collision.
            lost = self._execute(
                cursor,
                f"SELECT s.source_key FROM {stage} s LEFT JOIN {table} t "
                "ON t.source_key = s.source_key WHERE t.id IS NULL",
            ).fetchall()
            if not lost:
                break
            fresh = new_ids("household" if table == "household" else "person", len(lost))
            for (source_key,), new_id in zip(lost, fresh.tolist(), strict=True):
                self._execute(
                    cursor, f"UPDATE {stage} SET id = ? WHERE source_key = ?", (new_id, source_key)
                )
        else:
            raise RuntimeError(f"could not draw free registry IDs for {table} rows")
        added = self._execute(
            cursor,
            f"SELECT count(*) FROM {stage} s JOIN {table} t ON t.id = s.id "
            "AND t.source_key = s.source_key",
        ).fetchone()[0]
        staged = self._execute(cursor, f"SELECT count(*) FROM {stage}").fetchone()[0]
        return added, staged - added

    def _load(self, cursor, table: str, frame: pl.DataFrame, columns) -> None:
        frame = frame.select(list(columns))
        if self.dialect == "postgresql":
            buffer = io.BytesIO()
            pacsv.write_csv(
                frame.to_arrow(),
                buffer,
                write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"),
            )
            with cursor.copy(f"COPY {table} ({_cols(columns)}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(buffer.getbuffer())
        else:
            placeholders = ", ".join("?" for _ in columns)
            cursor.executemany(
                f"INSERT INTO {table} ({_cols(columns)}) VALUES ({placeholders})",
                _sqlite_rows(frame),
            )


def _sqlite_rows(frame: pl.DataFrame):
    # sqlite3 stores dates and timestamps as ISO text, which is what SQLAlchemy reads back.
    # Timestamps are written the way SQLAlchemy's SQLite dialect writes them (naive UTC).
    converted = frame.with_columns(
        [pl.col(n).cast(pl.String) for n, t in frame.schema.items() if t == pl.Date]
        + [
            pl.col(n).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S.%6f")
            for n, t in frame.schema.items()
            if isinstance(t, pl.Datetime)
        ]
    )
    return converted.iter_rows()


def stamp(frame: pl.DataFrame, now: dt.datetime, actor: str) -> pl.DataFrame:
    return frame.with_columns(
        pl.lit(1).alias("version"),
        pl.lit(now).alias("valid_from"),
        pl.lit(actor).alias("recorded_by"),
    )


__all__ = ["BatchCounts", "BatchWriter", "stamp", "pa"]
