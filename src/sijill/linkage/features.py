"""The matching frame: one row per person record, the columns the linkage model compares.

Every source (the registry, an agency's list, a benchmark file) is first brought to the same
input columns (`INPUT_COLUMNS`: the exchange format's names, dates and identifiers); this module
derives the rest in bulk with Polars, so the model never sees a stored spelling, only keys:

- per name part (given, father, grandfather, family): the Arabic fold, the Latin fold, the
  Latin phonetic key and the cross-script skeleton (`identity.match_keys`), the skeleton taken
  from the Arabic spelling when there is one (the more regular script) and from the Latin one
  otherwise, so that a record written only in Latin meets one written only in Arabic;
- the family name's particles (ben, ould, ait, abu, al ...) apart from the name: "Ben Salah"
  and "Salah" share the family name key and differ only in `family_particles`;
- the date of birth as year, month and day, each only as far as the precision says; a
  1 January birth date is the placeholder registrations use for "born that year", and counts
  as the year only;
- the area and the two levels above it, for "same locality / district / governorate";
- the household context: the skeletons of the other members' given names (parents, siblings,
  children), compared by how many two records share.

The national ID enters only as its blind index (exact comparison): no number is decrypted.
"""

import polars as pl

from sijill.identity.match_keys import match_keys_frame

NAME_PARTS = ("given", "father", "grandfather", "family")
INPUT_COLUMNS = {
    "unique_id": pl.Int64,
    "household_id": pl.Int64,
    "area_id": pl.Int64,
    "area_parent_id": pl.Int64,
    "area_grandparent_id": pl.Int64,
    **{f"{part}_name_{script}": pl.String for part in NAME_PARTS for script in ("ar", "lat")},
    "sex": pl.String,
    "birth_date": pl.Date,
    "birth_date_precision": pl.String,
    "national_id_index": pl.String,
}
# What the model reads, and so what a saved model expects of a frame.
MATCH_COLUMNS = (
    "unique_id",
    *(f"{part}_{key}" for part in NAME_PARTS for key in ("ar", "lat", "ph", "sk")),
    "family_particles",
    "sex",
    "birth_y",
    "birth_m",
    "birth_d",
    "national_id_index",
    "area_id",
    "area_parent_id",
    "area_grandparent_id",
    "others",
)


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with every input column, in order and type (absent ones as nulls); a clear
    error for a column of the wrong kind."""
    columns = []
    for name, dtype in INPUT_COLUMNS.items():
        if name not in frame.columns:
            columns.append(pl.Series(name, [None] * frame.height, dtype=dtype))
            continue
        try:
            columns.append(frame[name].cast(dtype, strict=True))
        except pl.exceptions.InvalidOperationError as error:
            raise ValueError(f"column {name} cannot be read as {dtype}") from error
    return pl.DataFrame(columns)


def _birth() -> list[pl.Expr]:
    precision = pl.col("birth_date_precision").fill_null("day")
    placeholder = (pl.col("birth_date").dt.month() == 1) & (pl.col("birth_date").dt.day() == 1)
    month_known = precision.is_in(["day", "month"]) & ~(placeholder & (precision == "day"))
    day_known = (precision == "day") & ~placeholder
    return [
        pl.col("birth_date").dt.year().alias("birth_y"),
        pl.when(month_known).then(pl.col("birth_date").dt.month()).alias("birth_m"),
        pl.when(day_known).then(pl.col("birth_date").dt.day()).alias("birth_d"),
    ]


def match_frame(persons: pl.DataFrame) -> pl.DataFrame:
    """The matching frame of `persons` (any frame `conform` accepts)."""
    persons = conform(persons)
    keys = []
    for part in NAME_PARTS:
        arabic = match_keys_frame(persons[f"{part}_name_ar"])
        latin = match_keys_frame(persons[f"{part}_name_lat"])
        keys += [
            arabic["fold"].alias(f"{part}_ar"),
            latin["fold"].alias(f"{part}_lat"),
            latin["phonetic"].alias(f"{part}_ph"),
            arabic["skeleton"].fill_null(latin["skeleton"]).alias(f"{part}_sk"),
        ]
    frame = persons.with_columns(*keys, _family_particles(persons)).with_columns(_birth())
    return _with_household_context(frame).select(MATCH_COLUMNS)


def _family_particles(persons: pl.DataFrame) -> pl.Series:
    """The particles of both spellings of the family name, sorted, as one word list. Worked
    out once per distinct pair of spellings and joined back: list operations on a million
    rows of two-item lists cost seconds, a registry holds a few thousand such pairs."""
    spellings = persons.select(ar="family_name_ar", lat="family_name_lat")
    distinct = spellings.unique()
    particles = (
        match_keys_frame(distinct["ar"])["particles"]
        .list.concat(match_keys_frame(distinct["lat"])["particles"])
        .list.unique()
        .list.sort()
        .list.join(" ")
        .replace("", None)
    )
    joined = spellings.join(
        distinct.with_columns(particles.alias("family_particles")),
        on=["ar", "lat"],
        how="left",
        maintain_order="left",
        nulls_equal=True,
    )
    return joined["family_particles"]


def _with_household_context(frame: pl.DataFrame) -> pl.DataFrame:
    members = (
        frame.filter(pl.col("household_id").is_not_null() & pl.col("given_sk").is_not_null())
        .group_by("household_id")
        .agg(pl.col("given_sk").alias("members"))
    )
    return frame.join(members, on="household_id", how="left").with_columns(
        # One's own given name is not context (a namesake sibling's goes with it: rare).
        pl.col("members")
        .list.set_difference(pl.concat_list(pl.col("given_sk")))
        .fill_null(pl.lit([], dtype=pl.List(pl.String)))
        .alias("others")
    )
