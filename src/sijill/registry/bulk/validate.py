"""Column-wise checks of one import batch. Every problem becomes a reject line a data clerk
can act on (row, field, value, message); what passes comes out typed, ready to write."""

import datetime as dt
from dataclasses import dataclass

import polars as pl

from sijill.identity.names import NAME_PARTS, search_name_column
from sijill.identity.national_id import Scheme
from sijill.registry.bulk.dates import parse_dates
from sijill.registry.bulk.fields import HOUSEHOLD_FIELDS, HOUSEHOLD_KEY, PERSON_FIELDS, PERSON_KEY
from sijill.registry.codes import (
    HOUSEHOLD_CODES,
    HOUSEHOLD_LISTS,
    LIVESTOCK,
    PERSON_CODES,
    WG_DOMAINS,
)
from sijill.security.consent import (
    CONSENT_PURPOSES,
    DATA_SHARING_PREFIX,
    SHARING_PURPOSE_PATTERN,
)

ROW = "_row"
REJECT_SCHEMA = {
    "row": pl.Int64,
    "record_key": pl.String,
    "field": pl.String,
    "value": pl.String,
    "message": pl.String,
}
_TRUE = ["true", "yes", "y", "1", "نعم", "oui", "vrai"]
_FALSE = ["false", "no", "n", "0", "لا", "non", "faux"]
_OTHER_ID_FORMATS = {
    "unhcr": r"^[0-9]{3}-[0-9]{2}[A-Z][0-9]{5}$",
    "passport": r"^[A-Z0-9]{6,12}$",
    "residence_permit": r"^[A-Z0-9-]{6,20}$",
}


@dataclass
class Context:
    areas: dict[str, int]
    scheme: Scheme
    date_order: str
    today: dt.date


class Rejects:
    """Collects (row, key, field, value, message) for the rows of one frame.

    Checks are gathered first and evaluated together: one pass computes every check's mask
    (Polars spreads them over the cores), and only the checks some row fails build reject lines.
    """

    def __init__(self, frame: pl.DataFrame, key: str):
        self.frame = frame
        self.key = key
        self._checks: list[tuple[pl.Expr, str, pl.Expr, str]] = []
        self._found: pl.DataFrame | None = None

    def add(self, bad: pl.Expr, field: str, message: pl.Expr | str, value: str | None = None):
        message_expr = pl.lit(message) if isinstance(message, str) else message
        self._checks.append((bad.fill_null(False), field, message_expr, value or field))
        self._found = None

    def _lines(self, mask: str, field: str, message: pl.Expr, value: str) -> pl.DataFrame:
        columns = self.frame.columns
        value_expr = pl.col(value).cast(pl.String) if value in columns else pl.lit(None)
        key_expr = pl.col(self.key) if self.key in columns else pl.lit(None, dtype=pl.String)
        return (
            self.frame.with_columns(self._masks[mask])
            .filter(pl.col(mask))
            .select(
                pl.col(ROW).alias("row"),
                key_expr.alias("record_key"),
                pl.lit(field).alias("field"),
                value_expr.alias("value"),
                message.cast(pl.String).alias("message"),
            )
            .cast(REJECT_SCHEMA)
        )

    def frame_of_rejects(self) -> pl.DataFrame:
        if self._found is None:
            names = [f"__check{i}" for i in range(len(self._checks))]
            masks = self.frame.select(
                [bad.alias(name) for name, (bad, *_) in zip(names, self._checks, strict=True)]
            )
            self._masks = masks
            failing = masks.select(pl.all().any()).row(0) if names else ()
            parts = [
                self._lines(name, field, message, value)
                for name, hit, (_, field, message, value) in zip(
                    names, failing, self._checks, strict=True
                )
                if hit
            ]
            self._found = pl.concat(parts) if parts else pl.DataFrame(schema=REJECT_SCHEMA)
        return self._found

    def rejected_rows(self) -> pl.Series:
        return self.frame_of_rejects()["row"].unique()


def _ensure(frame: pl.DataFrame, names) -> pl.DataFrame:
    missing = [pl.lit(None, dtype=pl.String).alias(n) for n in names if n not in frame.columns]
    return frame.with_columns(missing) if missing else frame


def _one_of(field: str, codes) -> str:
    shown = ", ".join(codes)
    return f"is not a valid {field.replace('_', ' ')} (expected one of: {shown})"


def _check_codes(rejects: Rejects, codes: dict[str, tuple[str, ...]]) -> None:
    for field, allowed in codes.items():
        column = pl.col(field)
        rejects.add(column.is_not_null() & ~column.is_in(allowed), field, _one_of(field, allowed))


def _check_duplicate_keys(rejects: Rejects, key: str) -> None:
    rejects.add(pl.col(key).is_null(), key, f"{key} is empty: every record needs its own key")
    first_row = pl.col(ROW).first().over(key)
    duplicate = pl.col(key).is_not_null() & pl.col(key).is_duplicated() & (pl.col(ROW) != first_row)
    message = pl.format("{} appears again (first at row {})", pl.lit(key), first_row)
    rejects.add(duplicate, key, message)


def _bool(column: str) -> pl.Expr:
    text = pl.col(column).str.to_lowercase()
    return pl.when(text.is_in(_TRUE)).then(True).when(text.is_in(_FALSE)).then(False)


def _check_bool(rejects: Rejects, field: str) -> None:
    rejects.add(
        pl.col(field).is_not_null() & _bool(field).is_null(),
        field,
        "is not yes/no (expected true/false, yes/no, 1/0, نعم/لا)",
    )


def _integer_in(rejects: Rejects, field: str, low: int, high: int) -> pl.Expr:
    number = pl.col(field).str.to_integer(strict=False)
    rejects.add(pl.col(field).is_not_null() & number.is_null(), field, "is not a whole number")
    rejects.add(
        number.is_not_null() & ~number.is_between(low, high),
        field,
        f"must be between {low} and {high}",
    )
    return number


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


def _check_list(rejects: Rejects, field: str, allowed, prefix: str | None = None) -> None:
    items = _list_items(field)
    ok = pl.element().is_in(allowed)
    if prefix:
        ok = ok | pl.element().str.contains(SHARING_PURPOSE_PATTERN)
    wrong = items.list.eval(pl.element().filter(~ok)).list.join(", ")
    rejects.add(
        pl.col(field).is_not_null() & (wrong != ""),
        field,
        pl.format(
            "has values that are not allowed: {} (allowed: {})",
            wrong,
            pl.lit(", ".join(allowed) + (f", {prefix}<agency>" if prefix else "")),
        ),
    )


def _livestock(rejects: Rejects) -> pl.Expr:
    items = _list_items("livestock")
    kind_ok = pl.element().str.extract(r"^([a-z_]+):\d{1,6}$", 1).is_in(LIVESTOCK)
    wrong = items.list.eval(pl.element().filter(~kind_ok.fill_null(False))).list.join(", ")
    rejects.add(
        pl.col("livestock").is_not_null() & (wrong != ""),
        "livestock",
        pl.format(
            "has entries that are not kind:count: {} (kinds: {})",
            wrong,
            pl.lit(", ".join(LIVESTOCK)),
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
    return (
        pl.when(items.list.len() > 0)
        .then(pl.concat_str([pl.lit("{"), pairs.list.join(","), pl.lit("}")]))
        .otherwise(pl.lit("{}"))
    )


def _dates(frame, rejects, name, ctx, allow_partial) -> pl.DataFrame:
    parsed = parse_dates(frame, name, ctx.date_order, allow_partial, ctx.today)
    rejects.frame = rejects.frame.with_columns(parsed)
    rejects.add(pl.col(f"{name}__error").is_not_null(), name, pl.col(f"{name}__error"))
    return rejects.frame


def check_households(frame: pl.DataFrame, ctx: Context) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = _ensure(frame, HOUSEHOLD_FIELDS)
    rejects = Rejects(frame, HOUSEHOLD_KEY)
    _check_duplicate_keys(rejects, HOUSEHOLD_KEY)
    area = pl.col("area_code")
    rejects.add(area.is_null(), "area_code", "area_code is empty: every household needs its area")
    area_ids = area.replace_strict(ctx.areas, default=None, return_dtype=pl.Int64)
    rejects.add(
        area.is_not_null() & area_ids.is_null(), "area_code", "is not an area of the registry"
    )
    _check_codes(rejects, {k: v for k, v in HOUSEHOLD_CODES.items()})
    rooms = _integer_in(rejects, "dwelling_rooms", 0, 50)
    latitude = pl.col("latitude").cast(pl.Float64, strict=False)
    longitude = pl.col("longitude").cast(pl.Float64, strict=False)
    rejects.add(
        pl.col("latitude").is_not_null() & ~latitude.is_between(-90, 90).fill_null(False),
        "latitude",
        "is not a latitude in decimal degrees (-90 to 90)",
    )
    rejects.add(
        pl.col("longitude").is_not_null() & ~longitude.is_between(-180, 180).fill_null(False),
        "longitude",
        "is not a longitude in decimal degrees (-180 to 180)",
    )
    for field, allowed in HOUSEHOLD_LISTS.items():
        _check_list(rejects, field, allowed)
    _check_list(rejects, "consent_purposes", CONSENT_PURPOSES, prefix=DATA_SHARING_PREFIX)
    livestock = _livestock(rejects)
    _check_bool(rejects, "consent_given")
    _dates(frame, rejects, "registration_date", ctx, allow_partial=False)
    _dates(rejects.frame, rejects, "consent_date", ctx, allow_partial=False)
    frame = rejects.frame
    bad = rejects.rejected_rows()
    clean = frame.filter(~pl.col(ROW).is_in(bad.implode())).select(
        pl.col(ROW),
        pl.col(HOUSEHOLD_KEY),
        area_ids.alias("area_id"),
        pl.col("address"),
        latitude.alias("latitude"),
        longitude.alias("longitude"),
        *[pl.col(c) for c in HOUSEHOLD_CODES if c != "registration_source"],
        rooms.cast(pl.Int16).alias("dwelling_rooms"),
        _json_list("assets").alias("assets"),
        livestock.alias("livestock"),
        _json_list("income_sources").alias("income_sources"),
        pl.col("registration_source").fill_null("agency_import"),
        pl.col("registration_date__date").alias("registration_date"),
        pl.col("enumerator"),
        _bool("consent_given").fill_null(False).alias("consent_given"),
        pl.col("consent_date__date").alias("consent_date"),
        _json_list("consent_purposes").alias("consent_purposes"),
    )
    return clean, rejects.frame_of_rejects()


def _phone() -> pl.Expr:
    # The same rule as sijill.registry.identifiers.normalise_phone: spaces and dashes only.
    compact = pl.col("phone").str.replace_all(r"[\s\-]", "").str.replace(r"^00", "+")
    return pl.when(compact.str.contains(r"^\+[1-9][0-9]{7,14}$")).then(compact)


def check_persons(frame: pl.DataFrame, ctx: Context) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = _ensure(frame, (*PERSON_FIELDS, HOUSEHOLD_KEY))
    frame = frame.with_columns(
        pl.col("sex").str.to_uppercase(),
        pl.col("nationality").str.to_uppercase(),
        pl.col("national_id").str.replace_all(r"[\s]", "").str.to_uppercase(),
    )
    rejects = Rejects(frame, PERSON_KEY)
    _check_duplicate_keys(rejects, PERSON_KEY)
    rejects.add(
        pl.col(HOUSEHOLD_KEY).is_null(), HOUSEHOLD_KEY, "household_key is empty: whose member?"
    )
    rejects.add(
        pl.col("relationship").is_null(),
        "relationship",
        "relationship to the head is empty (head, spouse, child, ...)",
    )
    _check_codes(rejects, PERSON_CODES)
    rejects.add(
        pl.all_horizontal(pl.col("given_name_ar").is_null(), pl.col("given_name_lat").is_null()),
        "given_name_ar",
        "no given name in Arabic or Latin script",
    )
    _dates(frame, rejects, "birth_date", ctx, allow_partial=True)
    frame = rejects.frame
    rejects.add(
        pl.col("nationality").is_not_null() & ~pl.col("nationality").str.contains("^[A-Z]{3}$"),
        "nationality",
        "is not an ISO 3166 three-letter country code",
    )
    for domain in WG_DOMAINS:
        _integer_in(rejects, domain, 1, 4)
    _check_bool(rejects, "enrolled")
    rejects.add(
        pl.col("phone").is_not_null() & _phone().is_null(),
        "phone",
        "is not a phone number in international form (+ and 8 to 15 digits)",
    )
    id_type, number = pl.col("national_id_type"), pl.col("national_id")
    rejects.add(
        number.is_not_null() & id_type.is_null(),
        "national_id_type",
        "is empty but an ID number is given: say which document it is",
    )
    citizens_ids = frame["national_id"].filter(frame["national_id_type"] == "national_id")
    valid = ctx.scheme.valid_column(citizens_ids.rename("national_id"))
    is_national = (id_type == "national_id") & number.is_not_null()
    national_ok = pl.lit(True)
    if citizens_ids.len():
        bad_numbers = citizens_ids.filter(~valid).implode()
        national_ok = ~number.is_in(bad_numbers)
    rejects.add(
        is_national & ~national_ok,
        "national_id",
        f"is not a valid national ID number ({ctx.scheme.name}): check digits do not match",
    )
    for kind, pattern in _OTHER_ID_FORMATS.items():
        rejects.add(
            (id_type == kind) & number.is_not_null() & ~number.str.contains(pattern),
            "national_id",
            f"is not in the format of a {kind.replace('_', ' ')} number",
        )
    frame = rejects.frame
    bad = rejects.rejected_rows()
    wg = [pl.col(d).str.to_integer(strict=False).cast(pl.Int16).alias(d) for d in WG_DOMAINS]
    clean = frame.filter(~pl.col(ROW).is_in(bad.implode())).select(
        pl.col(ROW),
        pl.col(PERSON_KEY),
        pl.col(HOUSEHOLD_KEY),
        pl.col("relationship"),
        *[pl.col(name) for name in NAME_PARTS],
        search_name_column(frame).alias("search_name"),
        pl.col("sex"),
        pl.col("birth_date__date").alias("birth_date"),
        pl.col("birth_date__precision").alias("birth_date_precision"),
        pl.col("marital_status"),
        pl.col("nationality"),
        pl.col("residency_status"),
        pl.col("national_id_type"),
        pl.col("national_id"),
        _phone().alias("phone"),
        *wg,
        pl.col("education_level"),
        _bool("enrolled").alias("enrolled"),
        pl.col("employment_status"),
        pl.col("employment_sector"),
    )
    return clean, rejects.frame_of_rejects()
