"""The import's rules over whole columns: each line typed, normalised and given the first
reason it cannot be used, and the stored document, masked form and account of the good ones,
written exactly as `instrument_details` writes one instrument (the tests hold the two equal).
IBANs, BICs, phones and card check digits go through their libraries once per distinct value;
everything else is a Polars expression."""

import polars as pl
from stdnum import bic, iban, luhn

from sijill.core.ids import verhoeff_check_digits
from sijill.identity.text import TextKind, disallowed_column
from sijill.payments import instrument_details as rules
from sijill.payments.instrument_details import ALL_FIELDS, FIELDS, MASK, REQUIRED
from sijill.payments.models import INSTRUMENT_KINDS

COLUMNS = ("household_id", "household_key", "kind", *ALL_FIELDS, "person_id")


def _blank_is_null(name: str) -> pl.Expr:
    text = pl.col(name).str.strip_chars()
    return pl.when(text != "").then(text).alias(name)


def _registry_ids(column: pl.Series, digits: int) -> pl.Series:
    """The registry ID each text holds (its Verhoeff check digit right), else null."""
    text = column.str.replace_all(r"[\s-]", "")
    shaped = text.str.contains(f"^[0-9]{{{digits}}}$").fill_null(False)
    values = text.cast(pl.Int64, strict=False).fill_null(0).to_numpy()
    valid = shaped.to_numpy() & (verhoeff_check_digits(values // 10, digits - 1) == values % 10)
    both = pl.DataFrame({"id": values, "ok": valid})
    return both.select(pl.when("ok").then("id").alias(column.name)).to_series()


def _by_value(column: pl.Series, work) -> tuple[pl.Series, pl.Series]:
    """(normalised form, problem) of each value, computed once per distinct value."""
    distinct = column.drop_nulls().unique().to_list()
    done = [work(value) for value in distinct]
    lookup = pl.DataFrame(
        {
            "value": distinct,
            "form": [form for form, _ in done],
            "problem": [problem for _, problem in done],
        },
        schema={"value": pl.String, "form": pl.String, "problem": pl.String},
    )
    joined = pl.DataFrame({"value": column}).join(
        lookup, on="value", how="left", maintain_order="left"
    )
    return joined["form"], joined["problem"]


def _iban(value: str) -> tuple[str | None, str | None]:
    problem = rules.iban_problem(value)
    return (None, problem) if problem else (iban.compact(value), None)


def _bic(value: str) -> tuple[str | None, str | None]:
    problem = rules.bic_problem(value)
    return (None, problem) if problem else (bic.compact(value), None)


def _card(value: str) -> tuple[str | None, str | None]:
    digits = rules.compact_card(value)
    if not rules.CARD_DIGITS.fullmatch(digits):
        return None, rules.card_problem(value)
    return (digits, None) if luhn.is_valid(digits) else (None, rules.card_problem(value))


def checked_lines(rows: pl.DataFrame, region: str | None) -> pl.DataFrame:
    """The lines typed and normalised, each with the first reason it cannot be used (null
    when it can)."""
    text = rows.with_columns(_blank_is_null(c) for c in COLUMNS).with_columns(
        pl.col("kind").str.to_lowercase(), pl.col("point").str.to_uppercase()
    )
    kind = pl.col("kind")
    forms, problems = {}, {}
    for name, work in (("iban", _iban), ("bic", _bic), ("card_number", _card)):
        forms[name], problems[name] = _by_value(text[name], work)

    forms["phone"], problems["phone"] = _by_value(
        text["phone"], lambda value: rules.phone_form(value, region)
    )
    typed = text.with_columns(
        _registry_ids(text["household_id"], 10).alias("household_id"),
        _registry_ids(text["person_id"], 12).alias("person_id"),
        *(forms[name].alias(name) for name in forms),
        *(problems[name].alias(f"{name}_problem") for name in problems),
    )
    checks: list[tuple[pl.Expr, str, pl.Expr | str]] = [
        (
            text["household_id"].is_null() & text["household_key"].is_null(),
            "missing_household",
            "household_id is required",
        ),
        (
            pl.col("household_id").is_null() & text["household_id"].is_not_null(),
            "bad_household_id",
            "household_id is not a household registry ID (10 digits, the last a check digit)",
        ),
        (
            ~kind.is_in(INSTRUMENT_KINDS).fill_null(False),
            "bad_kind",
            f"kind must be one of {', '.join(INSTRUMENT_KINDS)}",
        ),
    ]
    for each in INSTRUMENT_KINDS:
        for name in REQUIRED[each]:
            checks.append(
                (
                    (kind == each) & text[name].is_null(),
                    "missing_field",
                    f"{name} is required for a {each} instrument",
                )
            )
        others = [text[name].is_not_null() for name in ALL_FIELDS if name not in FIELDS[each]]
        checks.append(
            (
                (kind == each) & pl.any_horizontal(others),
                "other_kind_field",
                f"a {each} instrument has only these fields: {', '.join(FIELDS[each])}",
            )
        )
    checks += [
        (
            pl.col("holder").str.len_chars() > rules.HOLDER_MAX,
            "bad_holder",
            f"holder must be at most {rules.HOLDER_MAX} characters",
        ),
        (
            disallowed_column(TextKind.NAME, pl.col("holder")),
            "bad_holder",
            "holder may hold only letters, spaces, hyphens and apostrophes",
        ),
        (
            pl.col("operator").str.len_chars() > rules.OPERATOR_MAX,
            "bad_operator",
            f"operator must be at most {rules.OPERATOR_MAX} characters",
        ),
        (
            (kind == "cash") & ~pl.col("point").str.contains(f"^{rules.POINT.pattern}$"),
            "bad_point",
            rules.point_problem(""),
        ),
    ]
    for name in ("iban", "bic", "phone", "card_number"):
        checks.append((pl.col(f"{name}_problem").is_not_null(), f"bad_{name}",
                       pl.col(f"{name}_problem")))  # fmt: skip
    checks.append(
        (
            pl.col("person_id").is_null() & text["person_id"].is_not_null(),
            "bad_person_id",
            "person_id is not a person registry ID (12 digits, the last a check digit)",
        )
    )
    reason, message = pl.lit(None, pl.String), pl.lit(None, pl.String)
    for condition, code, words in reversed(checks):
        hit = condition.fill_null(False)
        reason = pl.when(hit).then(pl.lit(code)).otherwise(reason)
        words = pl.lit(words) if isinstance(words, str) else words
        message = pl.when(hit).then(words).otherwise(message)
    return typed.with_columns(reason=reason, message=message)


def documents(good: pl.DataFrame) -> pl.DataFrame:
    """Each usable line's stored document, masked form and fingerprinted account, written
    as `Details` writes them (one rule, two forms; the tests hold them equal)."""
    kind = pl.col("kind")
    document = pl.lit(None, pl.String)
    for each in INSTRUMENT_KINDS:
        encoded = pl.struct(*FIELDS[each]).struct.json_encode()
        document = pl.when(kind == each).then(encoded).otherwise(document)
    masked = (
        pl.when(kind == "bank")
        .then(
            pl.format(
                "{} {} {}", pl.col("iban").str.head(4), pl.lit(MASK), pl.col("iban").str.tail(4)
            )
        )  # fmt: skip
        .when(kind == "wallet")
        .then(pl.format("{} {}", pl.lit(MASK), pl.col("phone").str.tail(3)))
        .when(kind == "card")
        .then(pl.format("{} {}", pl.lit(MASK), pl.col("card_number").str.tail(4)))
        .otherwise(pl.col("point"))
    )
    account = (
        pl.when(kind == "bank")
        .then(pl.col("iban"))
        .when(kind == "wallet")
        .then(pl.col("phone"))
        .when(kind == "card")
        .then(pl.col("card_number"))
    )
    return good.with_columns(document=document, masked=masked, account=account)
