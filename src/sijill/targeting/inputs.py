"""The feature view's four input tables, from the registry as of a date
(`registry_sql` says which rows) or from an exchange-format folder (a survey's households and
persons).

From the registry, in bulk and never row by row through Python: on PostgreSQL, households,
memberships, persons and facts are read side by side as Arrow, in one snapshot of the
database (`core.pg_arrow`), and each member joined to their person here; on SQLite, the
embedded default, by one query per table. Households that have not consented to
`eligibility_assessment` are left out and counted: a run reports how many it did not assess.
"""

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

import polars as pl
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sijill.core.areas import Area, areas_within
from sijill.core.clock import utcnow
from sijill.core.errors import InvalidInput
from sijill.core.pg_arrow import read_tables, spool_tables
from sijill.core.pg_copy import read_query
from sijill.registry.codes import LIVESTOCK
from sijill.targeting.features import WASHINGTON_GROUP, Inputs
from sijill.targeting.registry_sql import DWELLING, queries

PERSON_TEXT = (
    "relationship",
    "sex",
    "residency_status",
    "education_level",
    "employment_status",
    "employment_sector",
    "orphanhood",
)
HOUSEHOLD_SCHEMA = {
    "household_id": pl.String,
    "area_code": pl.String,
    **dict.fromkeys(DWELLING, pl.String),
    "dwelling_rooms": pl.Int32,
    "assets": pl.List(pl.String),
    "income_sources": pl.List(pl.String),
    **{f"livestock_{kind}": pl.Int64 for kind in LIVESTOCK},
}
PERSON_SCHEMA = {
    "household_id": pl.String,
    "person_id": pl.String,
    **dict.fromkeys(PERSON_TEXT, pl.String),
    "birth_date": pl.Date,
    "death_date": pl.Date,
    **{f"wg_{domain}": pl.Int8 for domain in WASHINGTON_GROUP},
    "enrolled": pl.Boolean,
    "school_grade": pl.Int8,
    "contributory_pension": pl.Boolean,
    "monthly_income": pl.Int64,  # minor units
}
# Booleans are read as 1/0 (PostgreSQL's COPY writes t/f) and cast back.
_BOOLEANS = ("enrolled", "contributory_pension")
AREA_SCHEMA = {
    "code": pl.String,
    "district_code": pl.String,
    "governorate_code": pl.String,
    "urban": pl.Boolean,
}
FACT_SCHEMA = {
    "household_id": pl.String,
    "person_id": pl.String,
    "kind": pl.String,
    "valid_from": pl.Date,
}


Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


@dataclass(frozen=True)
class RegistryInputs:
    inputs: Inputs
    households_without_consent: int


def flat_areas(areas: pl.DataFrame) -> pl.DataFrame:
    """Each area with the codes of its district and governorate (itself when it is one):
    from a frame of code, parent_code, level, urban."""
    parent = dict(zip(areas["code"], areas["parent_code"], strict=True))
    level = dict(zip(areas["code"], areas["level"], strict=True))

    def ancestor(code: str, wanted: str) -> str | None:
        seen = set()
        while code is not None and code not in seen:
            seen.add(code)
            if level.get(code) == wanted:
                return code
            code = parent.get(code)
        return None

    codes = areas["code"].to_list()
    return pl.DataFrame(
        {
            "code": codes,
            "district_code": [ancestor(c, "district") for c in codes],
            "governorate_code": [ancestor(c, "governorate") for c in codes],
            "urban": areas["urban"],
        },
        schema=AREA_SCHEMA,
    )


def registry_areas(session: Session) -> pl.DataFrame:
    rows = session.execute(select(Area.id, Area.code, Area.parent_id, Area.level, Area.urban))
    rows = rows.all()
    code_of = {row.id: row.code for row in rows}
    frame = pl.DataFrame(
        {
            "code": [row.code for row in rows],
            "parent_code": [code_of.get(row.parent_id) for row in rows],
            "level": [row.level for row in rows],
            "urban": [row.urban for row in rows],
        },
        schema={
            "code": pl.String,
            "parent_code": pl.String,
            "level": pl.String,
            "urban": pl.Boolean,
        },
    )
    return flat_areas(frame)


# --- the registry -----------------------------------------------------------------------------


# Each read's columns in the order its statement gives them. IDs are read as the integers
# they are and joined as such (string keys made joining 4.6 million members to their persons
# three times slower); they become the feature view's text IDs last.
MEMBERSHIP_SCHEMA = {"household_id": pl.Int64, "person_id": pl.Int64, "relationship": pl.String}
PERSON_ROW_SCHEMA = {
    "person_id": pl.Int64,
    **{
        name: (pl.Int8 if name in _BOOLEANS else dtype)
        for name, dtype in PERSON_SCHEMA.items()
        if name not in ("household_id", "person_id", "relationship")
    },
}
FACT_ROW_SCHEMA = {"person_id": pl.Int64, "kind": pl.String, "valid_from": pl.Date}
_IDS_AS_TEXT = {"household_id": pl.String, "person_id": pl.String}
_MEMBER_SCHEMA = {**PERSON_SCHEMA, **PERSON_ROW_SCHEMA, "household_id": pl.Int64}
_MEMBER_FACT_SCHEMA = {**FACT_SCHEMA, "household_id": pl.Int64, "person_id": pl.Int64}


def _members(
    memberships: pl.LazyFrame, persons: pl.LazyFrame, facts: pl.LazyFrame
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Each membership with its person's row (a merged person has none: no member) and each
    member's facts, under the household they are a member of on the day."""
    members = persons.join(memberships, on="person_id", how="inner").select(list(PERSON_SCHEMA))
    member_facts = (
        facts.join(memberships.select("household_id", "person_id"), on="person_id", how="inner")
        .join(persons.select("person_id"), on="person_id", how="semi")
        .select(list(FACT_SCHEMA))
    )
    return members, member_facts


@dataclass(frozen=True)
class RegistryFiles:
    """The whole registry's households, members and their facts, read in one pass and one
    snapshot of the database into private Parquet files, for a snapshot taken in partitions.

    Each partition takes its households and members from these: read from the database
    partition by partition, each partition saw the registry at another moment than the
    members did (a household added meanwhile had no members), and each read of the members
    hashed the whole person table again (at 10 million households, 84 s in the database for
    each of six partitions, against 245 s for one read of all 46 million members)."""

    households: Path
    persons: Path
    facts: Path


def read_registry(engine: Engine, as_of: date, folder: Path, streams: int) -> RegistryFiles:
    """Every household of the registry as of `as_of` and its members (consenting or not: the
    partitions keep their consenting households' own), into `folder`; the parts of the read
    at most `streams` at a time. Households, memberships, persons and facts are spooled as
    read, in one snapshot, then the members joined in one streamed pass."""
    reads = queries(engine.dialect.name, _state_date(as_of), None, as_of, person_parts=streams)
    wanted = {
        "households": [reads.households],
        "memberships": [reads.memberships],
        "persons": reads.persons,
        "facts": [reads.facts],
    }
    spool = folder / "read"
    spool.mkdir(mode=0o700)
    if engine.dialect.name == "postgresql":
        spooled = spool_tables(engine, wanted, spool, streams)
    else:
        spooled = {}
        for name, frame in _read(engine, wanted, folder, streams).items():
            spooled[name] = [spool / f"{name}.parquet"]
            frame.write_parquet(spooled[name][0])
    scanned = {
        name: pl.concat([_named(pl.scan_parquet(path), _SCHEMAS[name]) for path in paths])
        for name, paths in spooled.items()
    }
    members, member_facts = _members(scanned["memberships"], scanned["persons"], scanned["facts"])
    files = RegistryFiles(
        folder / "households.parquet", folder / "members.parquet", folder / "member_facts.parquet"
    )
    scanned["households"].sink_parquet(files.households)
    members.sink_parquet(files.persons)
    member_facts.sink_parquet(files.facts)
    shutil.rmtree(spool)
    return files


def _state_date(as_of: date) -> date | None:
    """The date whose history a read takes (None: the current rows, for today)."""
    today = utcnow().date()
    if as_of > today:
        raise InvalidInput(f"as_of {as_of.isoformat()} is in the future (today is {today})")
    return None if as_of == today else as_of


def _registry_within(
    files: RegistryFiles, id_range: tuple[int, int] | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The households in [low, high) of `id_range`, their members and their facts."""

    def within(path: Path, schema: dict) -> pl.LazyFrame:
        read = pl.scan_parquet(path).cast(schema)
        if id_range is not None:
            low, high = (int(bound) for bound in id_range)
            read = read.filter(pl.col("household_id").is_between(low, high, closed="left"))
        return read

    households, persons, facts = pl.collect_all([
        within(files.households, _HOUSEHOLD_RAW),
        within(files.persons, _MEMBER_SCHEMA),
        within(files.facts, _MEMBER_FACT_SCHEMA),
    ])  # fmt: skip
    return households, persons, facts


_HOUSEHOLD_RAW = {
    **{k: v for k, v in HOUSEHOLD_SCHEMA.items() if not k.startswith("livestock_")},
    "household_id": pl.Int64,
    "assets": pl.String,
    "income_sources": pl.String,
    "livestock": pl.String,
    "consented": pl.Int8,
}
_SCHEMAS = {
    "households": _HOUSEHOLD_RAW,
    "memberships": MEMBERSHIP_SCHEMA,
    "persons": PERSON_ROW_SCHEMA,
    "facts": FACT_ROW_SCHEMA,
}


def _read(
    engine: Engine, wanted: dict[str, list[str]], work_dir: Path | None, streams: int
) -> dict[str, pl.DataFrame]:
    """Each named read's rows (its parts together), read side by side in one snapshot of the
    database on PostgreSQL, one after the other on SQLite."""
    if engine.dialect.name == "postgresql":
        tables = read_tables(engine, wanted, streams)
        parts = {name: [pl.from_arrow(table) for table in read] for name, read in tables.items()}
    else:
        parts = {
            name: [read_query(engine, query, _SCHEMAS[name], work_dir) for query in read]
            for name, read in wanted.items()
        }
    return {
        name: pl.concat([_named(frame, _SCHEMAS[name]) for frame in frames])
        for name, frames in parts.items()
    }


def _named(frame: Frame, schema: dict) -> Frame:
    """A read's rows with the schema's names (in order) and types, read or to be read."""
    columns = frame.collect_schema().names()
    return frame.rename(dict(zip(columns, schema, strict=True))).cast(schema)


def from_registry(
    engine: Engine,
    as_of: date,
    *,
    area_id: int | None = None,
    work_dir: Path | None = None,
    id_range: tuple[int, int] | None = None,
    registry: RegistryFiles | None = None,
    streams: int = 1,
) -> RegistryInputs:
    """The inputs for every consenting household of the registry (or of `area_id` and the
    areas below it) as of `as_of`; only the household IDs in [low, high) given `id_range`,
    taken from `registry` when given (read by `read_registry` on the same date). The
    database is read by at most `streams` connections at a time."""
    state_date = _state_date(as_of)
    with Session(engine) as session:
        areas = registry_areas(session)
        within = None if area_id is None else areas_within(session, [area_id])
    reads = queries(engine.dialect.name, state_date, within, as_of, id_range, person_parts=streams)
    if registry is None:
        read = _read(
            engine,
            {
                "households": [reads.households],
                "memberships": [reads.memberships],
                "persons": reads.persons,
                "facts": [reads.facts],
            },
            work_dir,
            streams,
        )
        raw = read["households"]
        persons, facts = pl.collect_all(
            _members(read["memberships"].lazy(), read["persons"].lazy(), read["facts"].lazy())
        )
    else:
        raw, persons, facts = _registry_within(registry, id_range)
    consented = raw.filter(pl.col("consented") == 1)
    kept = consented.select("household_id")
    persons = persons.join(kept, on="household_id", how="semi")
    persons = persons.cast({**_IDS_AS_TEXT, **dict.fromkeys(_BOOLEANS, pl.Boolean)})
    facts = facts.join(kept, on="household_id", how="semi").cast(_IDS_AS_TEXT)
    return RegistryInputs(
        Inputs(_decode_household_json(consented), persons, areas, facts),
        households_without_consent=raw.height - consented.height,
    )


def _decode_household_json(raw: pl.DataFrame) -> pl.DataFrame:
    livestock = pl.Struct({kind: pl.Int64 for kind in LIVESTOCK})
    return (
        raw.with_columns(
            pl.col("assets").str.json_decode(pl.List(pl.String)),
            pl.col("income_sources").str.json_decode(pl.List(pl.String)),
            pl.col("livestock")
            .str.json_decode(livestock)
            .struct.rename_fields([f"livestock_{kind}" for kind in LIVESTOCK]),
        )
        .unnest("livestock")
        .select(list(HOUSEHOLD_SCHEMA))
        .cast(HOUSEHOLD_SCHEMA)
    )
