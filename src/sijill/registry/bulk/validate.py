"""Column-wise checks of one import batch. Every problem becomes a reject line a data clerk
can act on (row, field, value, message); what passes comes out typed, ready to write.

Each field is checked as the field catalogue (`registry.fields`) declares it: by its kind, code
list and bounds, one handler per kind below. Identifiers are read by the rules of
`sijill.identity` (one function per column beside the one per value the API uses), so the two
paths accept the same numbers.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from sijill.identity import national_id as documents
from sijill.identity.names import search_name_column
from sijill.identity.national_id import Scheme
from sijill.identity.phones import phone_column
from sijill.identity.text import DISALLOWED, RULES, checked_text_column
from sijill.registry.bulk.dates import parse_dates
from sijill.registry.bulk.rejects import NOT_SHOWN, ROW, Rejects
from sijill.registry.fields import (
    COUNTRY_PATTERN,
    HOUSEHOLD,
    HOUSEHOLD_KEY,
    PERSON,
    PERSON_KEY,
    Catalogue,
    Field,
    Kind,
)
from sijill.security.consent import DATA_SHARING_PREFIX, SHARING_PURPOSE_PATTERN

_TRUE = ["true", "yes", "y", "1", "نعم", "oui", "vrai"]
_FALSE = ["false", "no", "n", "0", "لا", "non", "faux"]


@dataclass
class Context:
    areas: dict[str, int]
    scheme: Scheme
    date_order: str
    today: dt.date


def _ensure(frame: pl.DataFrame, names) -> pl.DataFrame:
    missing = [pl.lit(None, dtype=pl.String).alias(n) for n in names if n not in frame.columns]
    return frame.with_columns(missing) if missing else frame


def _bool(column: str) -> pl.Expr:
    text = pl.col(column).str.to_lowercase()
    return pl.when(text.is_in(_TRUE)).then(True).when(text.is_in(_FALSE)).then(False)


def _list_items(field: str) -> pl.Expr:
    return (
        pl.col(field)
        .str.split(";")
        .list.eval(pl.element().str.strip_chars())
        .list.eval(pl.element().filter(pl.element() != ""))
    )


def _json_list(field: str) -> pl.Expr:
    # Items are checked code values (letters, digits, '_' and ':'), so quoting them is safe.
    items = _list_items(field)
    joined = items.list.join('","')
    return (
        pl.when(items.list.len() > 0)
        .then(pl.concat_str([pl.lit('["'), joined, pl.lit('"]')]))
        .otherwise(pl.lit("[]"))
    )


# --- one handler per kind: add the field's checks, return its columns as written ------------

Handler = Callable[[Rejects, Field, Context], list[pl.Expr]]


def _key(rejects: Rejects, field: Field, ctx: Context) -> list[pl.Expr]:
    key = pl.col(field.name)
    if field.name == rejects.key:  # the record's own key (another record's: only required)
        rejects.add(
            key.is_null(), field.name, f"{field.name} is empty: every record needs its own key"
        )
        first_row = pl.col(ROW).first().over(field.name)
        again = key.is_not_null() & key.is_duplicated() & (pl.col(ROW) != first_row)
        message = pl.format("{} appears again (first at row {})", pl.lit(field.name), first_row)
        rejects.add(again, field.name, message)
    return [key]


def _area(rejects: Rejects, field: Field, ctx: Context) -> list[pl.Expr]:
    area = pl.col(field.name)
    area_ids = area.replace_strict(ctx.areas, default=None, return_dtype=pl.Int64)
    rejects.add(
        area.is_not_null() & area_ids.is_null(), field.name, "is not an area of the registry"
    )
    return [area_ids.alias("area_id")]


def _text(rejects: Rejects, field: Field, ctx: Context) -> list[pl.Expr]:
    # The API's characters rule (`identity.text`); a refused value is not repeated: it spoofs.
    written, refused = checked_text_column(rejects.frame, field.name, field.text_kind)
    allowed = RULES[field.text_kind].allowed
    message = f"{DISALLOWED}: holds a character that is not allowed here (allowed: {allowed})"
    rejects.add(refused, field.name, message, value=NOT_SHOWN)
    if field.max_length:
        rejects.add(
            written.str.len_chars() > field.max_length,
            field.name,
            f"is longer than {field.max_length} characters",
        )
    return [written.alias(field.name)]


def _code(rejects: Rejects, field: Field, ctx: Context) -> list[pl.Expr]:
    column, shown = pl.col(field.name), ", ".join(field.codes)
    message = f"is not a valid {field.name.replace('_', ' ')} (expected one of: {shown})"
    rejects.add(column.is_not_null() & ~column.is_in(field.codes), field.name, message)
    if field.import_default is not None:
        column = column.fill_null(field.import_default)
    return [column]


def _code_list(rejects: Rejects, field: Field, ctx: Context) -> list[pl.Expr]:
    name, allowed = field.name, ", ".join(field.codes)
    ok = pl.element().is_in(field.codes)
    if field.kind is Kind.PURPOSES:  # and sharing with a named agency
        ok = ok | pl.element().str.contains(SHARING_PURPOSE_PATTERN)
        allowed += f", {DATA_SHARING_PREFIX}<agency>"
    wrong = _list_items(name).list.eval(pl.element().filter(~ok)).list.join(", ")
    message = pl.format("has values that are not allowed: {} (allowed: {})", wrong, pl.lit(allowed))
    rejects.add(pl.col(name).is_not_null() & (wrong != ""), name, message)
    return [_json_list(name).alias(name)]


def _counts(rejects: Rejects, field: Field, ctx: Context) -> list[pl.Expr]:
    """`kind:count;...` checked (known kinds, counts within the field's bounds) and written as
    a JSON object."""
    name, kinds = field.name, field.codes
    low, high = int(field.minimum), int(field.maximum)
    items = _list_items(name)
    parts = pl.element().str.extract_groups(rf"^([a-z_]+):(\d{{1,{len(str(high))}}})$")
    count = parts.struct.field("2").cast(pl.Int64)
    ok = parts.struct.field("1").is_in(kinds) & count.is_between(low, high)
    wrong = items.list.eval(pl.element().filter(~ok.fill_null(False))).list.join(", ")
    rejects.add(
        pl.col(name).is_not_null() & (wrong != ""),
        name,
        pl.format(
            "has entries that are not kind:count: {} (kinds: {}; counts {} to {})",
            wrong,
            pl.lit(", ".join(kinds)),
            pl.lit(low),
            pl.lit(high),
        ),
    )
    pairs = items.list.eval(
        pl.concat_str(
            [
                pl.lit('"'),
                pl.element().str.extract(r"^([a-z_]+):", 1),
                pl.lit('":'),
                pl.element().str.extract(r":0*(\d+)$", 1).str.replace(r"^$", "0"),
            ]
        )
    )
    written = (
        pl.when(items.list.len() > 0)
        .then(pl.concat_str([pl.lit("{"), pairs.list.join(","), pl.lit("}")]))
        .otherwise(pl.lit("{}"))
    )
    return [written.alias(name)]


def _integer(rejects: Rejects, field: Field, ctx: Context) -> list[pl.Expr]:
    name, low, high = field.name, int(field.minimum), int(field.maximum)
    number = pl.col(name).str.to_integer(strict=False)
    rejects.add(pl.col(name).is_not_null() & number.is_null(), name, "is not a whole number")
    rejects.add(~number.is_between(low, high), name, f"must be between {low} and {high}")
    wide = field.columns[0].type == "big_integer"
    return [number.cast(pl.Int64 if wide else pl.Int16).alias(name)]


def _decimal(rejects: Rejects, field: Field, ctx: Context) -> list[pl.Expr]:
    value = pl.col(field.name).cast(pl.Float64, strict=False)
    low, high = field.minimum, field.maximum
    rejects.add(
        pl.col(field.name).is_not_null() & ~value.is_between(low, high).fill_null(False),
        field.name,
        f"is not a {field.name} in {field.unit} ({low:g} to {high:g})",
    )
    return [value.alias(field.name)]


def _boolean(rejects: Rejects, field: Field, ctx: Context) -> list[pl.Expr]:
    value = _bool(field.name)
    rejects.add(
        pl.col(field.name).is_not_null() & value.is_null(),
        field.name,
        "is not yes/no (expected true/false, yes/no, 1/0, نعم/لا)",
    )
    if field.default is not None:
        value = value.fill_null(field.default)
    return [value.alias(field.name)]


def _date(rejects: Rejects, field: Field, ctx: Context) -> list[pl.Expr]:
    """A date, or for a partial date the date and its precision (`Field.columns`)."""
    name, partial = field.name, field.kind is Kind.PARTIAL_DATE
    parsed = parse_dates(rejects.frame, name, ctx.date_order, partial, ctx.today)
    rejects.frame = rejects.frame.with_columns(parsed)
    rejects.add(pl.col(f"{name}__error").is_not_null(), name, pl.col(f"{name}__error"))
    parts = ("date", "precision")[: len(field.columns)]
    return [
        pl.col(f"{name}__{part}").alias(column.name)
        for part, column in zip(parts, field.columns, strict=True)
    ]


def _country(rejects: Rejects, field: Field, ctx: Context) -> list[pl.Expr]:
    column = pl.col(field.name)
    rejects.add(
        column.is_not_null() & ~column.str.contains(COUNTRY_PATTERN),
        field.name,
        "is not an ISO 3166 three-letter country code",
    )
    return [column]


def _phone(rejects: Rejects, field: Field, ctx: Context) -> list[pl.Expr]:
    # The rule of sijill.identity.phones, the API's own, column-wise.
    phone = phone_column(pl.col(field.name))
    rejects.add(
        pl.col(field.name).is_not_null() & phone.is_null(),
        field.name,
        "is not a phone number in international form (+ and 8 to 15 digits)",
    )
    return [phone.alias(field.name)]


def _document_number(rejects: Rejects, field: Field, ctx: Context) -> list[pl.Expr]:
    """A document number, checked for the document type given beside it (`<name>_type`) by the
    rules of sijill.identity.national_id, the API's own, column-wise."""
    type_name = f"{field.name}_type"
    id_type, number = pl.col(type_name), pl.col(field.name)
    frame = rejects.frame
    normalised = frame.select(
        documents.normalise_number_column(ctx.scheme, id_type, number).alias(field.name)
    )[field.name]
    valid = documents.valid_numbers(ctx.scheme, frame[type_name], normalised)
    rejects.frame = frame.with_columns(normalised, valid.alias(f"{field.name}__valid"))
    rejects.add(
        number.is_not_null() & id_type.is_null(),
        type_name,
        "is empty but an ID number is given: say which document it is",
    )
    wrong = ~pl.col(f"{field.name}__valid")
    rejects.add(
        wrong & (id_type == "national_id"),
        field.name,
        f"is not a valid national ID number ({ctx.scheme.name}): check digits do not match",
    )
    known_other = id_type.is_in(list(documents.OTHER_FORMATS))
    rejects.add(
        wrong & known_other,
        field.name,
        pl.format("is not in the format of a {} number", id_type.str.replace_all("_", " ")),
    )
    return [number]


_HANDLERS: dict[Kind, Handler] = {
    Kind.KEY: _key,
    Kind.AREA: _area,
    Kind.TEXT: _text,
    Kind.NAME: _text,
    Kind.CODE: _code,
    Kind.CODES: _code_list,
    Kind.PURPOSES: _code_list,
    Kind.COUNTS: _counts,
    Kind.INTEGER: _integer,
    Kind.DECIMAL: _decimal,
    Kind.BOOLEAN: _boolean,
    Kind.DATE: _date,
    Kind.PARTIAL_DATE: _date,
    Kind.COUNTRY: _country,
    Kind.PHONE: _phone,
    Kind.DOCUMENT_NUMBER: _document_number,
}


def _prepare(frame: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """Every exchange column present (missing ones empty), those read in upper case so."""
    frame = _ensure(frame, catalogue.exchange)
    upper = [pl.col(field.name).str.to_uppercase() for field in catalogue if field.upper]
    return frame.with_columns(upper) if upper else frame


def _check_fields(rejects: Rejects, catalogue: Catalogue, ctx: Context) -> list[pl.Expr]:
    """Add every exchange field's checks; return the columns that will be written."""
    written: list[pl.Expr] = []
    for field in catalogue:
        if not field.exchange:
            continue
        if field.required and field.when_empty:
            rejects.add(pl.col(field.name).is_null(), field.name, field.when_empty)
        written += _HANDLERS[field.kind](rejects, field, ctx)
        if field.only_when:
            _only_when(rejects, field, catalogue)
    return written


def _only_when(rejects: Rejects, field: Field, catalogue: Catalogue) -> None:
    """The API's rule (`Field.only_when`): given only when the other field has that value."""
    other, value = field.only_when
    given = _bool(other) if catalogue[other].kind is Kind.BOOLEAN else pl.col(other)
    elsewhere = (given != value).fill_null(True)
    rejects.add(pl.col(field.name).is_not_null() & elsewhere, field.name, field.only_when_message)


def _clean(rejects: Rejects, written: list[pl.Expr]) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = rejects.frame
    bad = rejects.rejected_rows()
    clean = frame.filter(~pl.col(ROW).is_in(bad.implode())).select(pl.col(ROW), *written)
    return clean, rejects.frame_of_rejects()


def check_households(frame: pl.DataFrame, ctx: Context) -> tuple[pl.DataFrame, pl.DataFrame]:
    rejects = Rejects(_prepare(frame, HOUSEHOLD), HOUSEHOLD_KEY)
    written = _check_fields(rejects, HOUSEHOLD, ctx)
    return _clean(rejects, written)


def check_persons(frame: pl.DataFrame, ctx: Context) -> tuple[pl.DataFrame, pl.DataFrame]:
    rejects = Rejects(_prepare(frame, PERSON), PERSON_KEY)
    written = _check_fields(rejects, PERSON, ctx)
    rejects.add(
        pl.all_horizontal(pl.col("given_name_ar").is_null(), pl.col("given_name_lat").is_null()),
        "given_name_ar",
        "no given name in Arabic or Latin script",
    )
    return _clean(rejects, [*written, search_name_column(rejects.frame).alias("search_name")])
