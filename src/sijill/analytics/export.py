"""Pseudonymised exports for analysts: the registry as Parquet files, without who is who.

`export_pseudonymised` writes three files:

- `households.parquet`: one row per current household that consented to research, in the
  principal's areas: a pseudonym, the governorate, district and locality codes, the dwelling,
  assets, livestock (one count column per kind), income sources, registration source and
  year, consent purposes and the number of current members.
- `persons.parquet`: one row per current member of those households: a pseudonym, the
  household's pseudonym, relationship, sex, year of birth (with the precision the date was
  known to), year of death, marital status, nationality, residency status, the Washington
  Group answers, education, enrolment and employment.
- `summary.parquet`: households and persons per locality and per governorate.

Never exported: names (nor their search form), national ID numbers and their type, phone
numbers, addresses, coordinates, enumerators, registry IDs, exact dates. Name and identifier
columns are not even selected: they never leave the database.

What happens to each field is declared in the field catalogue (`registry.fields`, each field's
`export`: kept, pseudonymised, coarsened to the year or to area codes, or dropped); this module
builds its queries and its files' columns from those declarations, so a new field is dropped
until its entry says otherwise.

Pseudonyms are a keyed HMAC of the registry ID (`Keyring.pseudonym`): the same household has
the same pseudonym in every export, so an analyst can follow it over time, and without the
key nobody can tell which registry record a pseudonym stands for. Rows are written in
pseudonym order, not in registry order, so the position of a row does not hint at its ID.

Consent: the export's purpose is research, so only households whose consent lists "research"
are exported; the others are counted (`ExportReport.left_out_no_consent`) and nothing more.
The summary counts the exported households only, so it cannot be set against the files to
learn about households that did not consent.

Small cells: the summary's cells (governorates and localities) and the area codes in the
microdata follow one suppression pattern computed for the whole country over the exported
(consented) households, primary and complementary (`sijill.analytics.disclosure`, which says
why it is sufficient against recovery by subtraction). A hidden cell has its counts null and
`suppressed` true, and its code is removed from its households' rows, since the microdata
could be counted instead; a district's code likewise when the district's cell is hidden.
Because the pattern does not depend on the analyst's areas, two analysts with overlapping
areas see the same cells hidden.

Residual risks, which the analyst's agreement has to cover:

- The sum of the hidden localities of a shown district is known (the district minus its
  shown localities); the pattern keeps that sum at `min_cell` or more where the data allows.
- Differencing between exports taken at different times: registrations in between change
  the cells, and two exports can be subtracted from each other.
- An analyst's own total is the row count of their files, shown even when their areas make
  a small cell (their microdata holds those households anyway).
- The microdata itself: a rare combination (a large household of a rare nationality in a
  small district, a person born in 1921) can single a household out to someone who knows it.
  Pseudonymised data is personal data: it is shared under an agreement, not published.
"""

import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, Integer, cast, extract, func, select
from sqlalchemy.orm import Session

from sijill.analytics.disclosure import scope_roots, subtree_totals, suppression_pattern
from sijill.core.areas import Area
from sijill.core.errors import Conflict, InvalidInput
from sijill.registry import fields
from sijill.registry.fields import Export, Field, Kind
from sijill.registry.models import Household, Membership, Person
from sijill.registry.search import consent_covers
from sijill.security.keys.keyring import Keyring, current_keyring
from sijill.security.principal import Principal, Scope
from sijill.security.roles import ROLE_PERMISSIONS, Permission
from sijill.security.users.models import RoleGrant

HOUSEHOLDS_FILE = "households.parquet"
PERSONS_FILE = "persons.parquet"
SUMMARY_FILE = "summary.parquet"
FILES = (HOUSEHOLDS_FILE, PERSONS_FILE, SUMMARY_FILE)
PURPOSE = "research"
# Rows fetched, transformed and written at a time: a Parquet row group each; memory stays at
# a few chunks whatever the registry's size.
CHUNK_ROWS = 50_000

Progress = Callable[[int, int], None]

_TEXT_LIST = pl.List(pl.Utf8)
_AREA_CODES = ("governorate_code", "district_code", "locality_code")


def _integer_type(low: float, high: float) -> pl.DataType:
    """The smallest integer type holding ten times a field's bounds: a bound widened later
    does not change the files' schema under the analysts' feet."""
    for dtype, bits in ((pl.Int8, 8), (pl.Int16, 16), (pl.Int32, 32)):
        if -(2 ** (bits - 1)) <= 10 * low and 10 * high < 2 ** (bits - 1):
            return dtype
    return pl.Int64


def _year(field: Field) -> str:
    return field.name.removesuffix("_date") + "_year"


def _pseudonym(field: Field) -> str:
    return field.name.removesuffix("_id") + "_pid"


def _exported(field: Field) -> dict[str, pl.DataType]:
    """The columns a field becomes in the export, with their types (none when dropped)."""
    if field.export is Export.PSEUDONYMISE:
        return {_pseudonym(field): pl.Utf8}
    if field.export is Export.AREAS:
        return dict.fromkeys(_AREA_CODES, pl.Utf8)
    if field.export is Export.YEAR:
        precision = {column.name: pl.Utf8 for column in field.columns[1:]}
        return {_year(field): pl.Int16, **precision}
    if field.export is not Export.KEEP:
        return {}
    if field.kind is Kind.COUNTS:
        count = _integer_type(field.minimum, field.maximum)
        return {f"{field.name}_{kind}": count for kind in field.codes}
    if field.kind in (Kind.CODES, Kind.PURPOSES):
        return {field.name: _TEXT_LIST}
    if field.kind is Kind.INTEGER:
        return {field.name: _integer_type(field.minimum, field.maximum)}
    return {
        field.name: {Kind.BOOLEAN: pl.Boolean, Kind.DECIMAL: pl.Float64}.get(field.kind, pl.Utf8)
    }


def _schema(catalogue: fields.Catalogue, **after_pseudonym: pl.DataType) -> dict:
    columns: dict[str, pl.DataType] = {}
    for field in catalogue:
        columns.update(_exported(field))
        if field.export is Export.PSEUDONYMISE:
            columns.update(after_pseudonym)
    return columns


HOUSEHOLD_SCHEMA = pl.Schema({**_schema(fields.HOUSEHOLD), "members": pl.Int16})
# Each person also carries their household's pseudonym.
PERSON_SCHEMA = pl.Schema(_schema(fields.PERSON, household_pid=pl.Utf8))
_COUNTS = fields.HOUSEHOLD.of_kind(Kind.COUNTS)
_SETS = tuple(
    field.name
    for field in fields.HOUSEHOLD.of_kind(Kind.CODES, Kind.PURPOSES)
    if field.export is Export.KEEP
)
# Columns read from the database under another name or type than they are written with.
_READ_TYPES = {
    "household_id": pl.Int64,
    "person_id": pl.Int64,
    "area_id": pl.Int64,
    **{field.name: pl.Struct(dict.fromkeys(field.codes, pl.Int32)) for field in _COUNTS},
}
SUMMARY_SCHEMA = pl.Schema(
    {
        "level": pl.Utf8,
        "area_code": pl.Utf8,
        "governorate_code": pl.Utf8,
        "households": pl.Int64,
        "persons": pl.Int64,
        "suppressed": pl.Boolean,
    }
)


@dataclass(frozen=True)
class ExportReport:
    out_dir: Path
    households: int
    persons: int
    left_out_no_consent: int  # households in scope without consent to research
    summary_rows: int
    cells_suppressed: int
    min_cell: int


def export_pseudonymised(
    engine: Engine,
    principal: Principal,
    out_dir: Path,
    *,
    min_cell: int,
    force: bool = False,
    progress: Progress | None = None,
) -> ExportReport:
    """Write the pseudonymised export of the principal's areas into `out_dir` (see above).

    The files are written into a hidden directory beside `out_dir` and moved into place when
    all three are complete: an interrupted export leaves nothing at `out_dir`. An existing
    `out_dir` must be empty, or hold an earlier export and `force` be given.
    """
    permission = Permission.EXPORT_PSEUDONYMISED
    principal.require(permission)
    if min_cell < 1:
        raise InvalidInput(f"The minimum cell size must be at least 1, not {min_cell}")
    out_dir = Path(out_dir)
    _check_target(out_dir, force=force)
    keyring = current_keyring()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.partial-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        with _snapshot(engine) as connection:
            report = _write(connection, principal, keyring, staging, min_cell, progress)
        _move_into_place(staging, out_dir)
    except BaseException:
        # Ctrl-C included: nothing half-written stays behind.
        shutil.rmtree(staging, ignore_errors=True)
        raise
    principal.audit(permission.value, "ok", "export", out_dir.name[:64])
    return ExportReport(out_dir=out_dir, **report)


# --- the target directory ------------------------------------------------------------------


def _check_target(out_dir: Path, *, force: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise InvalidInput(f"{out_dir} is a file, not a directory")
    present = sorted(entry.name for entry in out_dir.iterdir())
    if not present:
        return
    if not force:
        raise Conflict(
            f"{out_dir} is not empty: choose a new directory, or --force to replace the "
            "export in it"
        )
    # --force replaces an earlier export, never a directory the user keeps other things in.
    foreign = [name for name in present if name not in FILES]
    if foreign:
        raise Conflict(
            f"{out_dir} holds files that are not part of an export ({', '.join(foreign[:5])}): "
            "--force only replaces an earlier export; choose a new directory"
        )


def _move_into_place(staging: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    previous = out_dir.parent / f".{out_dir.name}.replaced-{secrets.token_hex(4)}"
    out_dir.rename(previous)
    try:
        staging.rename(out_dir)
    except BaseException:
        previous.rename(out_dir)
        raise
    shutil.rmtree(previous, ignore_errors=True)


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """One read-only transaction for every query, so the three files describe the same
    registry even while others write to it."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        else:
            # pysqlite opens no transaction for reads: each statement would see the database
            # as it is at that moment.
            connection.exec_driver_sql("BEGIN")
        try:
            yield connection
        finally:
            connection.rollback()


# --- reading and writing -------------------------------------------------------------------


def _write(
    connection: Connection,
    principal: Principal,
    keyring: Keyring,
    staging: Path,
    min_cell: int,
    progress: Progress | None,
) -> dict:
    permission = Permission.EXPORT_PSEUDONYMISED
    session = Session(bind=connection)
    scope = principal.scope(session, permission)
    scoped = scope.condition(Household.area_id)
    consented = consent_covers(session, PURPOSE)
    members = (
        select(Membership.household_id, func.count().label("members"))
        .where(Membership.end_date.is_(None))
        .group_by(Membership.household_id)
        .subquery()
    )

    in_scope = connection.scalar(select(func.count()).select_from(Household).where(scoped))
    # Counted for the whole country: the suppression pattern must not depend on who asks.
    national = {
        area_id: (int(households), int(persons))
        for area_id, households, persons in connection.execute(
            select(
                Household.area_id,
                func.count(),
                func.coalesce(func.sum(members.c.members), 0),
            )
            .outerjoin(members, members.c.household_id == Household.id)
            .where(consented)
            .group_by(Household.area_id)
        )
    }
    per_area = {area_id: cell for area_id, cell in national.items() if scope.allows(area_id)}
    households_total = sum(h for h, _ in per_area.values())
    persons_total = sum(p for _, p in per_area.values())
    total = households_total + persons_total
    areas = _Areas(connection)
    summary, shown_codes = _summary(
        areas, national, per_area, scope, _exporters_roots(session, principal, areas), min_cell
    )

    done = 0

    def advance(rows: int) -> None:
        nonlocal done
        done += rows
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    household_rows = select(
        *_selected(fields.HOUSEHOLD, Household),
        func.coalesce(members.c.members, 0).label("members"),
    )
    household_rows = household_rows.outerjoin(
        members, members.c.household_id == Household.id
    ).where(scoped, consented)
    geography = pl.DataFrame(
        [(area_id, *codes) for area_id, codes in shown_codes.items()],
        schema={
            "area_id": pl.Int64,
            "governorate_code": pl.Utf8,
            "district_code": pl.Utf8,
            "locality_code": pl.Utf8,
        },
        orient="row",
    )
    households = _stream(
        connection,
        household_rows,
        staging / HOUSEHOLDS_FILE,
        HOUSEHOLD_SCHEMA,
        lambda chunk: _households(chunk, keyring, geography),
        advance,
    )

    person_rows = (
        select(*_selected(fields.PERSON, Person, household_id=Membership.household_id))
        .join(Membership, Membership.person_id == Person.id)
        .join(Household, Household.id == Membership.household_id)
        .where(Membership.end_date.is_(None), scoped, consented)
    )
    persons = _stream(
        connection,
        person_rows,
        staging / PERSONS_FILE,
        PERSON_SCHEMA,
        lambda chunk: _persons(chunk, keyring),
        advance,
    )
    summary.write_parquet(staging / SUMMARY_FILE)
    return {
        "households": households,
        "persons": persons,
        "left_out_no_consent": int(in_scope or 0) - households_total,
        "summary_rows": summary.height,
        "cells_suppressed": int(summary["suppressed"].sum()),
        "min_cell": min_cell,
    }


def _stream(
    connection: Connection,
    statement,
    path: Path,
    schema: pl.Schema,
    transform: Callable[[pl.DataFrame], pl.DataFrame],
    advance: Callable[[int], None],
) -> int:
    """Run `statement` with a server-side cursor where there is one and write its rows to
    `path` a chunk at a time; the number of rows written."""
    arrow_schema = pl.DataFrame(schema=schema).to_arrow().schema
    result = connection.execution_options(yield_per=CHUNK_ROWS).execute(statement)
    names = list(result.keys())
    types = {name: _arrow_type(_READ_TYPES.get(name) or schema[name]) for name in names}
    written = 0
    with pq.ParquetWriter(path, arrow_schema, compression="zstd") as writer:
        for rows in result.partitions():
            # Column by column through Arrow: its converters build list and struct columns
            # in C, where Polars would make a Series of every household's asset list.
            columns = zip(*rows, strict=True)
            chunk = pl.from_arrow(
                pa.table(
                    {
                        name: pa.array(values, type=types[name])
                        for name, values in zip(names, columns, strict=True)
                    }
                )
            )
            out = transform(chunk).select(schema.names()).cast(dict(schema))
            writer.write_table(out.to_arrow().cast(arrow_schema))
            written += out.height
            advance(out.height)
    return written


def _arrow_type(dtype: pl.DataType) -> pa.DataType:
    return pl.Series(dtype=dtype).to_arrow().type


def _pseudonyms(keyring: Keyring, kind: str, ids: pl.Series) -> pl.Series:
    pseudonym = keyring.pseudonym
    return pl.Series([pseudonym(kind, str(i)) for i in ids.to_list()], dtype=pl.Utf8)


def _selected(catalogue: fields.Catalogue, model: type, **after_id) -> list:
    """The columns to read for the export: only those of fields it does not drop, coarsened
    in the query where it can (a date's year), so what is dropped never leaves the database."""
    selected = []
    for field in catalogue:
        if field.export is Export.PSEUDONYMISE:
            selected.append(model.id.label(field.name))
            selected += [column.label(name) for name, column in after_id.items()]
        elif field.export is Export.AREAS:
            selected.append(model.area_id)
        elif field.export is Export.YEAR:
            stored = getattr(model, field.name)
            selected.append(cast(extract("year", stored), Integer).label(_year(field)))
            selected += [getattr(model, column.name) for column in field.columns[1:]]
        elif field.export is Export.KEEP:
            table = Membership if field.membership else model
            selected.append(getattr(table, field.name))
    return selected


def _households(chunk: pl.DataFrame, keyring: Keyring, geography: pl.DataFrame) -> pl.DataFrame:
    return (
        chunk.with_columns(
            _pseudonyms(keyring, "household", chunk["household_id"]).alias("household_pid"),
            *(pl.col(name).list.sort() for name in _SETS),
        )
        .with_columns(
            pl.col(field.name).struct.field(kind).fill_null(0).alias(f"{field.name}_{kind}")
            for field in _COUNTS
            for kind in field.codes
        )
        .join(geography, on="area_id", how="left")
        .sort("household_pid")
    )


def _persons(chunk: pl.DataFrame, keyring: Keyring) -> pl.DataFrame:
    # A chunk holds few members per household: each household's pseudonym is made once.
    households = chunk["household_id"].unique()
    household_pids = pl.DataFrame(
        {
            "household_id": households,
            "household_pid": _pseudonyms(keyring, "household", households),
        }
    )
    return (
        chunk.with_columns(person_pid=_pseudonyms(keyring, "person", chunk["person_id"]))
        .join(household_pids, on="household_id", how="left")
        .sort("person_pid")
    )


# --- areas and small cells -----------------------------------------------------------------


def _exporters_roots(session: Session, principal: Principal, areas: "_Areas") -> set[int]:
    """The areas whose totals some user can learn from an export's row count: the country's
    top and every area a user who may export holds a grant in (this user's included)."""
    roles = [
        role
        for role, allowed in ROLE_PERMISSIONS.items()
        if Permission.EXPORT_PSEUDONYMISED in allowed
    ]
    granted = session.scalars(
        select(RoleGrant.area_id).where(RoleGrant.role.in_(roles), RoleGrant.area_id.is_not(None))
    )
    own = principal.scope(session, Permission.EXPORT_PSEUDONYMISED).area_ids
    roots = [area for area, up in areas.parent.items() if up is None]
    return {*roots, *granted, *(scope_roots(own, areas.parent) if own is not None else ())}


class _Areas:
    """The area tree (thousands of rows, read once): each area's governorate and district."""

    def __init__(self, connection: Connection):
        rows = connection.execute(select(Area.id, Area.code, Area.level, Area.parent_id)).all()
        self.code = {row.id: row.code for row in rows}
        self.level = {row.id: row.level for row in rows}
        self.parent = {row.id: row.parent_id for row in rows}

    def ancestor(self, area_id: int, level: str) -> int | None:
        current: int | None = area_id
        while current is not None and self.level.get(current) != level:
            current = self.parent.get(current)
        return current


def _summary(
    areas: _Areas,
    national: dict[int, tuple[int, int]],
    per_area: dict[int, tuple[int, int]],
    scope: Scope,
    known_roots: set[int],
    min_cell: int,
) -> tuple[pl.DataFrame, dict[int, tuple[str | None, str | None, str | None]]]:
    """The summary table, and for each area holding exported households the governorate,
    district and locality codes its rows may show (None where the cell is hidden).

    Cells are hidden by one pattern for the whole country (`disclosure`), the same for every
    analyst. The total of an export is its row count: the country's, and that of each area
    an analyst holds a grant in, are known to someone, so they are never relied on to hide
    a cell (`known_roots`, the grants of every user who may export)."""
    cells = subtree_totals(areas.parent, national)
    households = {area: cell[0] for area, cell in cells.items()}
    small = suppression_pattern(areas.parent, households, min_cell, known=known_roots)
    listed: set[int] = set()
    for area_id in per_area:
        for level in ("governorate", "locality"):
            key = areas.ancestor(area_id, level)
            if key is not None and scope.allows(key):
                listed.add(key)
    rows = []
    for key in sorted(listed, key=lambda k: (areas.level[k] != "governorate", areas.code[k])):
        households, persons = cells[key]
        hidden = key in small
        rows.append(
            (
                areas.level[key],
                areas.code[key],
                areas.code.get(areas.ancestor(key, "governorate")),
                None if hidden else households,
                None if hidden else persons,
                hidden,
            )
        )
    summary = pl.DataFrame(rows, schema=SUMMARY_SCHEMA, orient="row")

    def shown(level: str, key: int | None) -> str | None:
        return None if key is None or key in small else areas.code[key]

    codes = {
        area_id: (
            shown("governorate", areas.ancestor(area_id, "governorate")),
            shown("district", areas.ancestor(area_id, "district")),
            shown("locality", areas.ancestor(area_id, "locality")),
        )
        for area_id in per_area
    }
    return summary, codes
