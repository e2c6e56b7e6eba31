"""Persons of the registry as a Polars frame of the matching input columns, in bulk.

PostgreSQL hands the rows over by `COPY ... TO STDOUT` (CSV, streamed to a private temporary
file that Polars reads on all cores), never row by row through Python; SQLite, the embedded
default for small registries, through one query. Splink's own PostgreSQL backend would install
a DuckDB extension at run time, which an offline server cannot do: the rows go to DuckDB as
Arrow instead.

Current persons only, each with their open membership's household and its area; persons merged
into another record are left out (they are that record now). The national ID comes as its
blind index, for the "national_id" type only (a passport and a national ID with the same digits
are different documents).
"""

import tempfile
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from sijill.core.areas import Area, areas_within
from sijill.linkage.features import INPUT_COLUMNS, NAME_PARTS

_NAMES = ", ".join(f"p.{part}_name_{s}" for part in NAME_PARTS for s in ("ar", "lat"))
_QUERY = f"""
SELECT p.id AS unique_id, m.household_id, h.area_id, {_NAMES}, p.sex, p.birth_date,
    p.birth_date_precision,
    CASE WHEN p.national_id_type = 'national_id' THEN p.national_id_index END
        AS national_id_index
FROM person p
LEFT JOIN membership m ON m.person_id = p.id AND m.end_date IS NULL
LEFT JOIN household h ON h.id = m.household_id
WHERE {{where}}
ORDER BY p.id
"""
_READ_SCHEMA = {
    name: dtype
    for name, dtype in INPUT_COLUMNS.items()
    if name not in ("area_parent_id", "area_grandparent_id")
}


def _where(area_ids: list[int] | None) -> str:
    conditions = ["p.merged_into_id IS NULL"]
    if area_ids is not None:
        # Area IDs are integers from the area table, never user text.
        conditions.append(f"h.area_id IN ({', '.join(str(int(a)) for a in area_ids) or 'NULL'})")
    return " AND ".join(conditions)


def registry_persons(
    engine: Engine, *, area_id: int | None = None, work_dir: Path | None = None
) -> pl.DataFrame:
    """Every current person (or those living under `area_id`), as matching input columns."""
    with Session(engine) as session:
        areas = pl.DataFrame(
            session.execute(select(Area.id, Area.parent_id)).all(),
            schema={"area_id": pl.Int64, "area_parent_id": pl.Int64},
            orient="row",
        )
        within = None if area_id is None else areas_within(session, [area_id])
    query = _QUERY.format(where=_where(within))
    if engine.dialect.name == "postgresql":
        persons = _copy_out(engine, query, work_dir)
    else:
        with engine.connect() as connection:
            rows = connection.execute(text(query)).all()
        persons = pl.DataFrame(rows, schema=list(_READ_SCHEMA), orient="row")
        persons = persons.with_columns(
            pl.col("birth_date").cast(pl.String).str.to_date(strict=False)
        )
    grandparents = areas.rename(
        {"area_id": "area_parent_id", "area_parent_id": "area_grandparent_id"}
    )
    return (
        persons.cast(_READ_SCHEMA)
        .join(areas, on="area_id", how="left")
        .join(grandparents, on="area_parent_id", how="left")
    )


def _copy_out(engine: Engine, query: str, work_dir: Path | None) -> pl.DataFrame:
    if work_dir is not None:
        work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    connection = engine.raw_connection()
    try:
        with tempfile.NamedTemporaryFile(dir=work_dir, suffix=".csv") as spool:
            with connection.cursor() as cursor:
                copy_sql = f"COPY ({query}) TO STDOUT (FORMAT csv)"
                with cursor.copy(copy_sql) as copy:
                    for chunk in copy:
                        spool.write(chunk)
            spool.flush()
            return (
                pl.read_csv(
                    spool.name,
                    has_header=False,
                    new_columns=list(_READ_SCHEMA),
                    schema_overrides=_READ_SCHEMA,
                )
                if Path(spool.name).stat().st_size
                else pl.DataFrame(schema=_READ_SCHEMA)
            )
    finally:
        connection.rollback()
        connection.close()
